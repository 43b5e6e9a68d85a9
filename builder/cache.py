"""Watch-fed, in-memory copies of every build Job and build pod in the cluster, so a request reads memory.

Without it each POST made five to seven apiserver calls (reuse lookup, the namespace limit before and after
the create, each with a pod list), and a list of 1,000 builds read 1,000 full Jobs. With it a POST makes one
call (the create), and the limit check after it waits only for the watch to deliver that Job.

Each `Reflector` lists once (then it is ready), watches from the list's resourceVersion, resumes the watch
after each server-side timeout, lists again on 410 Gone, and backs off on errors. Only objects carrying the
build labels are listed and watched, across all namespaces (the builder's ClusterRole already allows it).
The watch loops are the only writers and the request handlers the only readers, on one event loop: no locks.

Read-your-writes: a replica that created a Job waits until its own watch has delivered it (`wait_for`)
before it answers, so its next read sees the build. Another replica may see it a few milliseconds later; a
single GET of a build not yet in the cache falls back to the apiserver (see `builds.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from . import constants as c

log = logging.getLogger("builder.cache")
Obj = dict[str, Any]
Key = tuple[str, str]

WATCH_SECONDS = 300  # one watch request's server-side timeout; the watch resumes after it
LIST_TIMEOUT = 60.0
MAX_BACKOFF = 30.0
# Metadata no read of the builder uses: managedFields is about as large as the rest of a Job.
_UNUSED_METADATA = ("managedFields",)

Lister = Callable[[], Awaitable[tuple[list[Obj], str]]]
Watcher = Callable[[str, int], AsyncIterator[Obj]]
Predicate = Callable[[Obj | None], bool]


def present(obj: Obj | None) -> bool:
    return obj is not None


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


def slim(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and any(k in meta for k in _UNUSED_METADATA):
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k not in _UNUSED_METADATA}}
    return obj


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Reflector:
    """One kind of object, indexed by namespace; fill by hand in tests (`replace`, `apply_event`) or `run()`."""

    def __init__(self, kind: str, lister: Lister | None = None, watcher: Watcher | None = None) -> None:
        self.kind, self.lister, self.watcher = kind, lister, watcher
        self.by_ns: dict[str, dict[str, Obj]] = {}
        self.resource_version = ""
        self.ready = False
        self.last_event: float | None = None
        self._waiters: dict[Key, list[tuple[Predicate, asyncio.Future[None]]]] = {}
        # Arrival order of each object's first appearance: a watch delivers events in commit order, so this
        # orders creations as etcd did, without comparing resourceVersions (which clients must not do).
        self._seq = 0
        self._arrival: dict[Key, int] = {}

    # --- reading ---------------------------------------------------------------------------------------

    def in_namespace(self, namespace: str) -> list[Obj]:
        return list(self.by_ns.get(namespace, {}).values())

    def get(self, namespace: str, name: str) -> Obj | None:
        return self.by_ns.get(namespace, {}).get(name)

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_ns.values())

    def arrival(self, namespace: str, name: str) -> int | None:
        """When the object first appeared, in watch order (objects of one list share the list's turn)."""
        return self._arrival.get((namespace, name))

    async def wait_until(self, namespace: str, name: str, timeout: float, until: Predicate = present) -> bool:
        """Whether the cached object (None once deleted) satisfies `until` now or within `timeout` seconds:
        how a replica waits for the watch to deliver its own write before it answers."""
        if until(self.get(namespace, name)):
            return True
        entry: tuple[Predicate, asyncio.Future[None]] = (until, asyncio.get_running_loop().create_future())
        waiters = self._waiters.setdefault((namespace, name), [])
        waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(entry[1]), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            waiters.remove(entry)
            if not waiters:
                self._waiters.pop((namespace, name), None)

    # --- writing ---------------------------------------------------------------------------------------

    def replace(self, items: list[Obj], resource_version: str) -> None:
        """A full list is the truth (first list, after 410): objects not in it are gone."""
        self.by_ns = {}
        self._seq += 1
        kept = {}
        for obj in items:
            key = key_of(obj)
            kept[key] = self._arrival.get(key, self._seq)
            self._put(slim(obj))
        self._arrival = kept
        self.resource_version = resource_version
        self.ready = True
        self.last_event = time.monotonic()

    def apply_event(self, event: Obj) -> None:
        kind, obj = event.get("type"), event.get("object")
        if kind == "ERROR":
            if isinstance(obj, dict) and obj.get("code") == 410:
                raise Gone(obj.get("message", "resourceVersion too old"))
            raise RuntimeError(f"watch error: {obj}")
        if not isinstance(obj, dict):
            return
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED"):
            self._put(slim(obj))
        elif kind == "DELETED":
            ns, name = key_of(obj)
            bucket = self.by_ns.get(ns, {})
            bucket.pop(name, None)
            if not bucket:
                self.by_ns.pop(ns, None)
            self._arrival.pop((ns, name), None)
            self._notify((ns, name), None)
        if rv:
            self.resource_version = rv
        self.last_event = time.monotonic()

    def _put(self, obj: Obj) -> None:
        key = key_of(obj)
        self.by_ns.setdefault(key[0], {})[key[1]] = obj
        if key not in self._arrival:
            self._seq += 1
            self._arrival[key] = self._seq
        self._notify(key, obj)

    def _notify(self, key: Key, obj: Obj | None) -> None:
        for until, future in self._waiters.get(key, []):
            if not future.done() and until(obj):
                future.set_result(None)

    # --- the loop --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """List, then watch until the watch is gone; forever, with backoff on errors."""
        assert self.lister is not None and self.watcher is not None
        backoff = 1.0
        while True:
            try:
                start = time.monotonic()
                items, rv = await self.lister()
                self.replace(items, rv)
                log.info("build cache listed", extra={"kind": self.kind, "count": len(items),
                                                      "duration_ms": round((time.monotonic() - start) * 1000, 1)})
                backoff = 1.0
                while True:  # resume after each server-side timeout, from the last resourceVersion seen
                    async for event in self.watcher(self.resource_version, WATCH_SECONDS):
                        self.apply_event(event)
            except asyncio.CancelledError:
                raise
            except Gone:
                log.info("build cache watch expired; listing again", extra={"kind": self.kind})
            except Exception as e:
                log.warning("build cache error", extra={"kind": self.kind, "error": f"{type(e).__name__}: {e}",
                                                        "retry_in": backoff})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)


class BuildCache:
    """Build Jobs, build pods and volume-agent pods, cluster-wide. Ready when all have been listed once."""

    def __init__(self, jobs: Reflector, pods: Reflector, agents: Reflector | None = None) -> None:
        self.jobs, self.pods = jobs, pods
        self.agents = agents if agents is not None else Reflector("agents")  # (an empty Reflector is falsy)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ready(self) -> bool:
        return self.jobs.ready and self.pods.ready and (self.agents.lister is None or self.agents.ready)

    def pods_of(self, namespace: str, job_names: set[str]) -> dict[str, list[Obj]]:
        """The namespace's build pods, by the name of the Job that owns them."""
        out: dict[str, list[Obj]] = {}
        for pod in self.pods.in_namespace(namespace):
            job = ((pod.get("metadata") or {}).get("labels") or {}).get(c.LABEL_JOB_NAME)
            if job in job_names:
                out.setdefault(job, []).append(pod)
        return out

    def start(self) -> None:
        self._tasks = [asyncio.create_task(r.run(), name=f"build-cache-{r.kind}")
                       for r in (self.jobs, self.pods, self.agents) if r.lister is not None]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []



def make_build_cache(kube: Any, agents: bool = False) -> BuildCache:
    """A BuildCache over `builder.kube.Kube`'s cluster-wide list and watch of build Jobs and pods (and of
    volume-agent pods, with `agents`)."""
    from .kube import KubeError

    def reflector(name: str, kind: str, selector: str) -> Reflector:
        async def lister() -> tuple[list[Obj], str]:
            return await kube.list_everywhere(kind, selector)  # type: ignore[no-any-return]

        async def watcher(resource_version: str, seconds: int) -> AsyncIterator[Obj]:
            try:
                async for event in kube.watch_everywhere(kind, selector, resource_version, seconds):
                    yield event
            except KubeError as e:
                if e.status == 410:
                    raise Gone(e.message) from e
                raise

        return Reflector(name, lister, watcher)

    return BuildCache(reflector("jobs", "jobs", c.BUILD_SELECTOR), reflector("pods", "pods", c.BUILD_SELECTOR),
                      reflector("agents", "pods", c.AGENT_SELECTOR) if agents else None)
