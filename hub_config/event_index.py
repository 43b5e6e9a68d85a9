"""KubeSpawner's shared event reflector, with its events also indexed by the pod they are about.

With user namespaces KubeSpawner keeps one reflector of every Pod event in the cluster (thousands on a busy
cluster: events live an hour). A spawner asks for its pod's events when it starts and on every progress poll
(once a second per spawn), and KubeSpawner answers by scanning all of them; with 50 spawns that scan was a
seventh of the hub's busy time in the burst. Here the reflector's store is a dict that also keeps, per
(namespace, pod name), the events about that pod, updated on every write the reflector makes (a full relist
replaces the store, which re-indexes it), so a spawner reads only its own handful.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubespawner.spawner import EventReflector

from hub_config.reflector_store import TypedStoreReflector

PodKey = tuple[str, str]


def pod_key(event: dict[str, Any]) -> PodKey:
    """(namespace, name) of the object an event is about; the event's own namespace when it does not say."""
    obj = event.get("involvedObject") or {}
    namespace = obj.get("namespace") or (event.get("metadata") or {}).get("namespace") or ""
    return namespace, obj.get("name") or ""


class PodEventIndex(dict[str, dict[str, Any]]):
    """The reflector's `namespace/name -> event` dict, plus `about(namespace, pod)`.

    Only the writes ResourceReflector makes are indexed (item assignment, `pop`, `del`, construction);
    `update`/`setdefault`/`clear` are refused rather than silently leaving the index stale."""

    def __init__(self, items: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__()
        self._by_pod: dict[PodKey, dict[str, dict[str, Any]]] = {}
        for key, event in (items or {}).items():
            self[key] = event

    def __setitem__(self, key: str, event: dict[str, Any]) -> None:
        self._unindex(key)
        super().__setitem__(key, event)
        self._by_pod.setdefault(pod_key(event), {})[key] = event

    def __delitem__(self, key: str) -> None:
        self._unindex(key)
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        self._unindex(key)
        return super().pop(key, *default)

    def _unindex(self, key: str) -> None:
        old = self.get(key)
        if old is None:
            return
        bucket = self._by_pod.get(pod_key(old))
        if bucket is not None:
            bucket.pop(key, None)
            if not bucket:
                del self._by_pod[pod_key(old)]

    def about(self, namespace: str, pod_name: str) -> Iterable[dict[str, Any]]:
        """The events about one pod, in the order the reflector stored them."""
        return list(self._by_pod.get((namespace, pod_name), {}).values())

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("PodEventIndex only supports item assignment, pop and del (the reflector's writes)")

    update = setdefault = clear = popitem = _refuse  # type: ignore[assignment]


class IndexedEventReflector(TypedStoreReflector, EventReflector):
    """EventReflector whose store is a PodEventIndex, whichever way the store is (re)placed."""

    store_class = PodEventIndex
