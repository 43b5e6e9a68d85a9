"""The hub's watch-fed copy of every PodDefault, so a start reads its namespace's from memory.

Each start labels its pod for the chosen configurations, which needs the namespace's PodDefaults. Read from
the apiserver, that was one list call per start on the path to the pod create: with 50 users starting at once
on a loaded machine the hub sat idle waiting for those lists (py-spy: busy 0.9 s of the first 2.6 s), and the
pod creates came in clumps as the answers did (docs/benchmarks.md).

Here one KubeSpawner reflector (list, then watch, relist on its schedule, as the hub's pod and event
reflectors do) keeps every PodDefault of the cluster, grouped by namespace. The hub already may list and
watch PodDefaults cluster-wide (the chart's ClusterRole). Reads fall back to a live list whenever the copy
cannot be trusted to be complete:
- before its first list, after its watch gave up, or when the CRD is missing (it retries later);
- when a chosen configuration is not in the copy (a PodDefault applied a moment ago);
- when provisioning wrote the namespace's default PodDefaults moments ago (hub_config.hooks decides).
A PodDefault changed or deleted a moment before a start may still be labelled for: the webhook, which has its
own watch-fed copy, decides what is injected either way, as it did when the hub listed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import kubespawner.reflector as kubespawner_reflector
from kubespawner.reflector import MultiNamespaceResourceReflector

from hub_config import constants as k
from hub_config import kube
from hub_config.reflector_store import GroupedStore, TypedStoreReflector

log = logging.getLogger(__name__)

RETRY_AFTER = 30.0  # seconds between attempts to start the reflector after it failed (e.g. no CRD yet)


def namespace_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


class PodDefaultStore(GroupedStore):
    """`namespace/name -> PodDefault`, grouped by namespace."""

    def group_of(self, obj: dict[str, Any]) -> str:
        return namespace_of(obj)


class PodDefaultsApi:
    """CustomObjectsApi for PodDefaults, under the method name KubeSpawner's reflector calls for a kind it
    knows (`list_<kind>_for_all_namespaces`); its list and watch pass their keyword arguments through."""

    def __init__(self, custom: Any) -> None:
        self.custom = custom

    def list_poddefault_for_all_namespaces(self, **kwargs: Any) -> Any:
        return self.custom.list_cluster_custom_object(
            k.PODDEFAULT_GROUP, k.PODDEFAULT_VERSION, k.PODDEFAULT_PLURAL, **kwargs)


class PodDefaultReflector(TypedStoreReflector, MultiNamespaceResourceReflector):
    """KubeSpawner's reflector over every namespace's PodDefaults, its store a PodDefaultStore."""

    kind = "poddefaults"
    api_group_name = "CustomObjectsApi"
    list_method_name = "list_poddefault_for_all_namespaces"
    store_class = PodDefaultStore

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api = PodDefaultsApi(kubespawner_reflector.shared_client(self.api_group_name))  # the same client


class PodDefaultCache:
    """The one PodDefault reflector of the hub process: started by the first start that asks, in the
    background (that start reads live), and started again after it failed, at most every RETRY_AFTER s."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.reflector: PodDefaultReflector | None = None
        self._starting: asyncio.Task[None] | None = None
        self._failed_at: float | None = None
        self._clock = clock

    def ready(self) -> bool:
        """Listed at least once, and its watch loop still running (it stops only when it gave up)."""
        r = self.reflector
        return bool(r is not None and r.first_load_future.done() and not r.first_load_future.exception()
                    and r.watch_task is not None and not r.watch_task.done())

    def start(self, parent: Any) -> None:
        """Starts the reflector unless it runs, is starting, or failed less than RETRY_AFTER s ago."""
        if self.ready() or (self._starting is not None and not self._starting.done()):
            return
        if self._failed_at is not None and self._clock() - self._failed_at < RETRY_AFTER:
            return
        self._starting = asyncio.ensure_future(self._start(parent))

    async def _start(self, parent: Any) -> None:
        old, self.reflector = self.reflector, None
        if old is not None:
            await old.stop()
        try:
            reflector = PodDefaultReflector(parent=parent, on_failure=self._gave_up)
            await reflector.start()
        except Exception as e:  # logged by the reflector; starts read live until a later start succeeds
            self._failed_at = self._clock()
            log.warning("PodDefault cache not started (starts list PodDefaults live): %s", e)
            return
        self._failed_at = None
        self.reflector = reflector

    def _gave_up(self) -> None:
        """The reflector's watch never recovered (it logged why); the next start may try again."""
        self._failed_at = self._clock()

    def in_namespace(self, namespace: str) -> list[dict[str, Any]] | None:
        """The namespace's PodDefaults sorted by name, or None when the copy is not ready."""
        if not self.ready():
            return None
        assert self.reflector is not None
        return kube.by_name(self.reflector.resources.group(namespace))

    async def stop(self) -> None:
        if self._starting is not None:
            self._starting.cancel()
        if self.reflector is not None:
            await self.reflector.stop()
        self.reflector = self._starting = None


POD_DEFAULTS = PodDefaultCache()


async def poddefaults_for_start(api: Any, namespace: str, chosen: Iterable[str],
                                cache: PodDefaultCache = POD_DEFAULTS) -> list[dict[str, Any]]:
    """The namespace's PodDefaults for a start: from the cache when it is ready and has every one the user
    chose, else a live list (kube.list_poddefaults). Pass only names the user chose: an operator's preselected
    name may be absent from a namespace for good (it is then skipped), and should not cost a list per start."""
    cached = cache.in_namespace(namespace)
    if cached is not None:
        names = {(pd.get("metadata") or {}).get("name") for pd in cached}
        if all(c in names for c in chosen):
            return cached
    return await kube.list_poddefaults(api, namespace)
