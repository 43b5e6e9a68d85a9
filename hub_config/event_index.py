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

from hub_config.reflector_store import GroupedStore, TypedStoreReflector

PodKey = tuple[str, str]


def pod_key(event: dict[str, Any]) -> PodKey:
    """(namespace, name) of the object an event is about; the event's own namespace when it does not say."""
    obj = event.get("involvedObject") or {}
    namespace = obj.get("namespace") or (event.get("metadata") or {}).get("namespace") or ""
    return namespace, obj.get("name") or ""


class PodEventIndex(GroupedStore):
    """The reflector's `namespace/name -> event` dict, plus `about(namespace, pod)`."""

    def group_of(self, event: dict[str, Any]) -> PodKey:
        return pod_key(event)

    def about(self, namespace: str, pod_name: str) -> Iterable[dict[str, Any]]:
        """The events about one pod, in the order the reflector stored them."""
        return self.group((namespace, pod_name))


class IndexedEventReflector(TypedStoreReflector, EventReflector):
    """EventReflector whose store is a PodEventIndex, whichever way the store is (re)placed."""

    store_class = PodEventIndex
