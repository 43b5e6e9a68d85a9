"""A KubeSpawner reflector whose `resources` store is always a given dict subclass.

KubeSpawner's reflectors keep `namespace/name -> object` in the `resources` dict and replace the whole dict on
every relist. The hub keeps extra state in that store (an event index, a change signal); this base makes sure
the store is of its `store_class` however it is placed: the empty default before the first list, and every
relist, which `store_replaced` is told about.
"""

from __future__ import annotations

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
