"""A watch-fed, in-memory index of all PodDefaults, so admission makes no apiserver call.

List once (then `ready`), watch from the list's resourceVersion, resume the watch from the last
resourceVersion seen when it ends, list again on 410 Gone and every `resync_period` as a safety net.
Objects are indexed by namespace; each is compiled (shape check, selector) once per resourceVersion.
The watch loop is the only writer and admission the only reader, both on one event loop, so no locks.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from webhook import constants as c
from webhook.logs import log
from webhook.model import CompiledPodDefault, compile_poddefault

logger = logging.getLogger("webhook.cache")

LIST_TIMEOUT = 60.0
LIST_PAGE_SIZE = 500  # as client-go's reflector
WATCH_SECONDS = 300  # server-side timeout of one watch request; the watch is resumed after it
MAX_BACKOFF = 30.0


# Metadata admission never reads, dropped before an object is cached: managedFields is about as large as a
# PodDefault's spec, and kubectl's last-applied annotation repeats the whole object as a string.
_UNUSED_METADATA = ("managedFields",)
_UNUSED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def _slim(value: Any) -> Any:
    """A copy of JSON data with dict keys interned (watch events are parsed one by one, so every object
    would otherwise hold its own copy of "name", "value", "mountPath", ...)."""
    if isinstance(value, dict):
        return {sys.intern(k) if type(k) is str else k: _slim(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_slim(v) for v in value]
    return value


def slim_poddefault(obj: dict[str, Any]) -> dict[str, Any]:
    """The PodDefault as the cache keeps it: without metadata admission never reads, keys interned."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in _UNUSED_METADATA}
        annotations = meta.get("annotations")
        if isinstance(annotations, dict) and any(a in annotations for a in _UNUSED_ANNOTATIONS):
            meta["annotations"] = {k: v for k, v in annotations.items() if k not in _UNUSED_ANNOTATIONS}
        obj = {**obj, "metadata": meta}
    return _slim(obj)  # type: ignore[no-any-return]


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class PodDefaultCache:
    """PodDefaults by namespace. Fill it by hand in tests (`replace`, `upsert`, `delete`) or run `run()`."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._by_ns: dict[str, dict[str, CompiledPodDefault]] = {}
        self._snapshot: dict[str, tuple[CompiledPodDefault, ...]] = {}
        self._clock = clock
        self.ready = False
        self.last_sync: float | None = None
        self.resource_version: str | None = None

    # --- reading (admission) ---------------------------------------------------------------------------

    def for_namespace(self, namespace: str) -> tuple[CompiledPodDefault, ...]:
        """The namespace's PodDefaults; an immutable snapshot, safe to use while the watch updates."""
        snap = self._snapshot.get(namespace)
        if snap is None:
            snap = tuple(self._by_ns.get(namespace, {}).values())
            self._snapshot[namespace] = snap
        return snap

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_ns.values())

    # --- writing (watch) -------------------------------------------------------------------------------

    def replace(self, items: Iterable[dict[str, Any]], resource_version: str | None = None) -> None:
        """Takes a full list as the truth (first list, resync, after 410); marks the cache ready."""
        old = self._by_ns
        self._by_ns = {}
        for obj in items:
            ns, name = _key(obj)
            self._by_ns.setdefault(ns, {})[name] = self._compiled(obj, old.get(ns, {}).get(name))
        self._snapshot = {}
        self.resource_version = resource_version
        self.ready = True
        self.touch()

    def upsert(self, obj: dict[str, Any]) -> None:
        ns, name = _key(obj)
        bucket = self._by_ns.setdefault(ns, {})
        bucket[name] = self._compiled(obj, bucket.get(name))
        self._snapshot.pop(ns, None)

    def delete(self, obj: dict[str, Any]) -> None:
        ns, name = _key(obj)
        bucket = self._by_ns.get(ns, {})
        bucket.pop(name, None)
        if not bucket:
            self._by_ns.pop(ns, None)
        self._snapshot.pop(ns, None)

    def touch(self) -> None:
        """Records that the apiserver was heard from (the cache-age metric)."""
        self.last_sync = self._clock()

    def _unchanged(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The cached object if `obj` is the version already cached (resyncs reuse it as it is)."""
        ns, name = _key(obj)
        previous = self._by_ns.get(ns, {}).get(name)
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        return previous.obj if previous is not None and rv and previous.resource_version == rv else None

    def _compiled(self, obj: dict[str, Any], previous: CompiledPodDefault | None) -> CompiledPodDefault:
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if previous is not None and rv and previous.resource_version == rv:
            return previous
        compiled = compile_poddefault(obj)
        if compiled.error:
            log(logger, "poddefault_invalid", logging.WARNING, namespace=compiled.namespace,
                name=compiled.name, resource_version=rv, error=compiled.error)
        return compiled

    def apply_event(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("raw_object") or event.get("object")
        if isinstance(obj, dict):
            if kind in ("ADDED", "MODIFIED"):
                self.upsert(slim_poddefault(obj))
            elif kind == "DELETED":
                self.delete(obj)
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.resource_version = rv
        self.touch()

    # --- the loop --------------------------------------------------------------------------------------

    async def run(self, api_client: Any, resync_period: float = 600.0) -> None:
        """List, then watch until the resync period is over or the watch is gone; forever, with backoff."""
        from kubernetes_asyncio.client import CustomObjectsApi

        api = CustomObjectsApi(api_client)
        backoff = 1.0
        while True:
            try:
                await self._list(api)
                backoff = 1.0
                await self._watch(api, time.monotonic() + resync_period)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log(logger, "poddefault_cache_error", logging.WARNING, error=f"{type(e).__name__}: {e}",
                    retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _list(self, api: Any) -> None:
        """Lists in pages (as client-go's reflector does): only one page of raw objects is alive at a time,
        so a large cluster does not leave the process at the high-water mark of the whole list. All pages
        come from one consistent snapshot; the cache switches to it after the last page."""
        start = time.monotonic()
        kept: list[dict[str, Any]] = []
        token = None
        while True:
            result = await api.list_cluster_custom_object(c.GROUP, c.VERSION, c.PLURAL, limit=LIST_PAGE_SIZE,
                                                          _continue=token, _request_timeout=LIST_TIMEOUT)
            for obj in result.get("items") or []:
                kept.append(self._unchanged(obj) or slim_poddefault(obj))
            meta = result.get("metadata") or {}
            token = meta.get("continue")
            del result
            if not token:
                break
        self.replace(kept, meta.get("resourceVersion"))
        count = len(kept)
        log(logger, "poddefault_cache_listed", count=count, resource_version=self.resource_version,
            duration_ms=round((time.monotonic() - start) * 1000, 1))

    async def _watch(self, api: Any, deadline: float) -> None:
        """Watches from the current resourceVersion, resuming after each server-side timeout; returns at
        the deadline (time to resync) or on 410 Gone (the resourceVersion is too old: list again)."""
        from kubernetes_asyncio import watch
        from kubernetes_asyncio.client.exceptions import ApiException

        while (remaining := deadline - time.monotonic()) > 0:
            seconds = max(1, min(WATCH_SECONDS, int(remaining)))
            try:
                async with watch.Watch() as w:
                    stream = w.stream(api.list_cluster_custom_object, c.GROUP, c.VERSION, c.PLURAL,
                                      resource_version=self.resource_version, allow_watch_bookmarks=True,
                                      timeout_seconds=seconds, _request_timeout=seconds + 30)
                    async for event in stream:
                        self.apply_event(event)
                        if event.get("type") != "BOOKMARK":
                            obj = event.get("raw_object") or {}
                            ns, name = _key(obj)
                            log(logger, "poddefault_cache_event", logging.DEBUG, type=event.get("type"),
                                namespace=ns, name=name, resource_version=self.resource_version)
                self.touch()  # a watch that ran to its timeout proves the apiserver was reachable
            except ApiException as e:
                if e.status == 410:
                    log(logger, "poddefault_cache_expired", resource_version=self.resource_version)
                    return
                raise
