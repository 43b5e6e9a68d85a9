"""A KubeSpawner reflector whose `resources` store is always a given dict subclass, and a store that groups.

KubeSpawner's reflectors keep `namespace/name -> object` in the `resources` dict and replace the whole dict on
every relist. The hub keeps extra state in that store (an index, a change signal); this base makes sure the
store is of its `store_class` however it is placed: the empty default before the first list, and every
relist, which `store_replaced` is told about.

`GroupedStore` is such a store that also keeps the objects grouped by a key of their own (the pod an event is
about, the namespace of a PodDefault), so a reader gets its handful without scanning the whole cluster's.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar

from kubespawner.reflector import ResourceReflector
from traitlets import default, validate


class TypedStoreReflector(ResourceReflector):
    """Mix in before KubeSpawner's reflector class: `class R(TypedStoreReflector, PodReflector)`."""

    store_class: ClassVar[type[dict[str, Any]]] = dict

    @default("resources")
    def _empty_store(self) -> dict[str, Any]:
        return self.store_class()

    @validate("resources")
    def _typed_store(self, proposal: Any) -> dict[str, Any]:
        value = proposal["value"]
        store = value if isinstance(value, self.store_class) else self.store_class(value)
        self.store_replaced(store)
        return store

    def store_replaced(self, store: dict[str, Any]) -> None:
        """Called whenever the store is (re)placed, e.g. by a relist; nothing by default."""


class GroupedStore(dict[str, dict[str, Any]]):
    """The reflector's `namespace/name -> object` dict, plus `group(key)`: the objects whose `group_of` is key.

    Only the writes ResourceReflector makes are followed (item assignment, `pop`, `del`, construction);
    `update`/`setdefault`/`clear` are refused rather than silently leaving the groups stale."""

    def group_of(self, obj: dict[str, Any]) -> Hashable:
        raise NotImplementedError

    def __init__(self, items: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__()
        self._groups: dict[Hashable, dict[str, dict[str, Any]]] = {}
        for key, obj in (items or {}).items():
            self[key] = obj

    def __setitem__(self, key: str, obj: dict[str, Any]) -> None:
        self._ungroup(key)
        super().__setitem__(key, obj)
        self._groups.setdefault(self.group_of(obj), {})[key] = obj

    def __delitem__(self, key: str) -> None:
        self._ungroup(key)
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        self._ungroup(key)
        return super().pop(key, *default)

    def _ungroup(self, key: str) -> None:
        old = self.get(key)
        if old is None:
            return
        group = self.group_of(old)
        bucket = self._groups.get(group)
        if bucket is not None:
            bucket.pop(key, None)
            if not bucket:
                del self._groups[group]

    def group(self, group: Hashable) -> list[dict[str, Any]]:
        """The objects of one group, in the order the reflector stored them (a copy: safe while it writes)."""
        return list(self._groups.get(group, {}).values())

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{type(self).__name__} only supports item assignment, pop and del (the reflector's writes)")

    update = setdefault = clear = popitem = _refuse  # type: ignore[assignment]
