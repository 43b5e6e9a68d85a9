"""`NotebookSpawner`: KubeSpawner with progress messages people can act on, and prompt start detection.

Every KubeSpawner option keeps its meaning (this is a subclass, configured through `c.KubeSpawner.*` as
usual); only the text of progress events changes, for the events users get stuck on (image pulls,
scheduling, mounts). The raw event stays in `raw_event` for anyone who wants it.

Start detection: KubeSpawner waits for the pod (in its watch-fed reflector, i.e. in memory) and for pod
deletions with JupyterHub's `exponential_backoff`, whose waits grow to 5 s with full jitter: a server that
became Ready between two polls was noticed up to seconds late. `use_prompt_polling` makes KubeSpawner use
`prompt_backoff` instead: the same arguments and deadline, waits capped at `POLL_CAP`, and each wait ended by
the next change of the pod reflector (hub_config.pod_changes), so a Ready pod is noticed when the watch
delivers it without polling four times a second. The API calls KubeSpawner retries with the same helper (pod
and PVC creation after a conflict) retry at that pace, at least `POLL_START` apart.

Fewer calls and less work per spawn, which is what counts when many users start at once:
- `events` reads this pod's events from the shared event reflector's per-pod index (hub_config.event_index)
  and sorts only those. KubeSpawner sorts every Pod event of the cluster, on every progress poll of every
  spawn (once a second each); with 50 spawns and a thousand events that was a third of the hub's busy time,
  and a scan without the sort was still a seventh.
- The namespace create KubeSpawner sends on every start is skipped when the pre-spawn hook has just made sure
  the namespace exists (`namespace_ready`), and its first claim create when the login made the claim
  (`workspace_ready`, hub_config.provisioner.create_workspace): in a burst of first starts, 50 claim creates
  (each through quota admission, answered 409) took the apiserver up to 1.9 s.
- A pod create the apiserver refuses (quota, LimitRange, Pod Security, the PodDefault webhook) fails the spawn
  with the same readable message the preflight dry run gives, so the dry run is only needed to wait for the
  webhook to learn new PodDefaults (hub_config.hooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Iterable
from typing import Any, ClassVar

import kubespawner.spawner as kubespawner_module
from jupyterhub.utils import exponential_backoff, maybe_future
from kubernetes_asyncio.client.exceptions import ApiException
from kubespawner import KubeSpawner
from traitlets import default

from hub_config import kube, spawn_gate
from hub_config.event_index import IndexedEventReflector, PodEventIndex
from hub_config.messages import SpawnError, explain_event, permanent_start_failure, waiting_on_pull
from hub_config.pod_changes import POD_CHANGES, NotifyingPodReflector

POLL_START = 0.05  # the first wait, and the least time between two checks
POLL_CAP = 1.0  # the longest wait without a pod change; a change wakes the wait at once
FAIL_FAST_INTERVAL = 0.5


async def prompt_backoff(pass_func: Any, fail_message: str, start_wait: float = POLL_START,
                         scale_factor: float = 2, max_wait: float = POLL_CAP, timeout: float = 10,
                         timeout_tolerance: float = 0.1, *args: Any, **kwargs: Any) -> Any:
    """JupyterHub's `exponential_backoff` (same arguments, jittered waits, deadline and TimeoutError), with
    its first wait and its cap lowered (never raised) to ours, and each wait cut short by the next change of
    the pod reflector (hub_config.pod_changes). Written out because JupyterHub's helper sleeps a fixed time.

    KubeSpawner also retries API calls with this helper (a pod or claim create after a conflict); a pod change
    then retries sooner, but never sooner than POLL_START after the previous try.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    if timeout_tolerance:
        tolerance = timeout_tolerance * timeout
        deadline = random.uniform(deadline - tolerance, deadline + tolerance)
    limit, cap = min(start_wait, POLL_START), min(max_wait, POLL_CAP)
    while True:
        tried = loop.time()
        result = await maybe_future(pass_func(*args, **kwargs))
        if result:
            return result
        remaining = deadline - loop.time()
        if remaining < 0:
            raise TimeoutError(fail_message)
        await POD_CHANGES.wait(min(remaining, random.uniform(limit / 2, limit)))
        if (gap := tried + POLL_START - loop.time()) > 0:
            await asyncio.sleep(gap)
        limit = min(cap, limit * scale_factor)


def use_prompt_polling() -> None:
    """Makes KubeSpawner's module use `prompt_backoff` (idempotent). KubeSpawner calls the helper by the name
    it imported, so this is where it can be changed without copying KubeSpawner's start and stop."""
    current = getattr(kubespawner_module, "exponential_backoff", None)
    if current is prompt_backoff:
        return
    if current is not exponential_backoff:
        raise RuntimeError("kubespawner no longer uses jupyterhub.utils.exponential_backoff by that name; "
                           "review hub_config.spawner.use_prompt_polling for this KubeSpawner version")
    kubespawner_module.exponential_backoff = prompt_backoff  # type: ignore[attr-defined]


def pod_events(events: Iterable[dict[str, Any]], namespace: str, pod_name: str,
               last_event_uid: str | None) -> list[dict[str, Any]]:
    """The events of one pod, oldest first, after the `last_event_uid` marker (KubeSpawner's rule: events of an
    earlier pod of the same name, seen before this start, are left out). Same order as KubeSpawner's: a stable
    sort by `lastTimestamp`, else `eventTime`, of the events in reflector order."""
    def about_this_pod(e: dict[str, Any]) -> bool:
        obj = e.get("involvedObject") or {}
        return bool(obj.get("name") == pod_name and obj.get("namespace", namespace) == namespace)

    mine = [e for e in events if about_this_pod(e)]
    mine.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    out: list[dict[str, Any]] = []
    for e in mine:
        if last_event_uid and (e.get("metadata") or {}).get("uid") == last_event_uid:
            out = []
        else:
            out.append(e)
    return out


def improve_progress_event(event: dict[str, Any]) -> dict[str, Any]:
    """Replaces the message of a known-bad event with an explanation; other events pass unchanged."""
    raw = event.get("raw_event")
    if not isinstance(raw, dict):
        return event
    better = explain_event(raw)
    return {**event, "message": better} if better else event


class NotebookSpawner(KubeSpawner):
    """KubeSpawner whose progress stream explains image-pull, scheduling and mount failures, and whose start
    gives up as soon as the pod can never start (a missing image, a missing Secret) instead of after
    `start_timeout`. JupyterHub then stops the server (the pod is deleted; the workspace stays) and shows the
    reason on the spawn page."""

    # The hub's own namespace, read once per process (see `_namespace_default`).
    _hub_namespace: ClassVar[str | None] = None
    # Set by the pre-spawn hook once it has made sure the namespace exists; consumed by the next start.
    namespace_ready: bool = False
    # Set when the login made (or found) the workspace claim; the next start then skips its create.
    workspace_ready: bool = False

    @default("namespace")
    def _namespace_default(self) -> str:
        """KubeSpawner's answer (the service account's namespace file, else "default"), read once per process.

        KubeSpawner also calls this on every template expansion (`hub_namespace` is one of the fields), and it
        expands every env var, label, annotation, volume and mount of a pod one string at a time: with 50
        starts at once, re-reading that file was an eighth of the hub's wall time in the burst (py-spy,
        docs/benchmarks.md). The hub's namespace cannot change while it runs."""
        cls = NotebookSpawner
        if cls._hub_namespace is None:
            cls._hub_namespace = str(KubeSpawner._namespace_default.func(self))  # type: ignore[attr-defined]
        return cls._hub_namespace

    @property
    def events(self) -> list[dict[str, Any]]:  # type: ignore[override]
        reflector = self.event_reflector
        if not reflector:
            return []
        store = reflector.resources
        candidates = (store.about(self.namespace, self.pod_name) if isinstance(store, PodEventIndex)
                      else list(store.values()))
        return pod_events(candidates, self.namespace, self.pod_name, self._last_event)

    async def _start_watching_events(self, replace: bool = False) -> Any:
        """KubeSpawner's event reflector (same kind, field selector and scope), with the per-pod index."""
        return await self._start_reflector(kind="events", reflector_class=IndexedEventReflector,
                                           fields={"involvedObject.kind": "Pod"},
                                           omit_namespace=self.enable_user_namespaces, replace=replace)

    async def _start_watching_pods(self, replace: bool = False) -> Any:
        """KubeSpawner's pod reflector (same kind, labels and scope), whose changes wake `prompt_backoff`."""
        return await self._start_reflector(kind="pods", reflector_class=NotifyingPodReflector,
                                           labels={"component": self.component_label},
                                           omit_namespace=self.enable_user_namespaces, replace=replace)

    async def _ensure_namespace(self) -> None:
        if self.namespace_ready:
            self.namespace_ready = False
            return
        await super()._ensure_namespace()

    async def _make_create_pvc_request(self, pvc: Any, request_timeout: float) -> bool:
        if self.workspace_ready:  # KubeSpawner then records it exists and skips the create on later starts too
            self.workspace_ready = False
            return True
        return bool(await super()._make_create_pvc_request(pvc, request_timeout))

    async def _make_create_pod_request(self, pod: Any, request_timeout: float) -> bool:
        spawn_gate.leave(self)  # the pod create is on its way: the next start may go
        try:
            return bool(await super()._make_create_pod_request(pod, request_timeout))
        except ApiException as e:  # KubeSpawner handles 409 itself; any other refusal ends the spawn
            raise SpawnError(kube.explain_refusal(e)) from e

    async def progress(self) -> AsyncIterator[dict[str, Any]]:  # type: ignore[override]
        async for event in super().progress():
            yield improve_progress_event(event)

    def start(self) -> asyncio.Future[Any]:
        started = super().start()  # KubeSpawner keeps this future: progress() ends when it does
        return asyncio.ensure_future(self._start_unless_hopeless(started))

    async def _start_unless_hopeless(self, started: asyncio.Future[Any]) -> Any:
        hopeless = asyncio.ensure_future(self._first_permanent_failure())
        try:
            await asyncio.wait({started, hopeless}, return_when=asyncio.FIRST_COMPLETED)
            if started.done():
                return started.result()
            started.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # its own failure is moot now
                await started
            self.log.warning("giving up on %s's server: %s", self.user.name, hopeless.result())
            raise SpawnError(hopeless.result())
        except asyncio.CancelledError:
            started.cancel()
            raise
        finally:
            hopeless.cancel()

    async def _first_permanent_failure(self) -> str:
        """Polls the watch-fed pod and event caches (memory, no API calls) until the pod cannot start."""
        key = f"{self.namespace}/{self.pod_name}"
        while True:
            await asyncio.sleep(FAIL_FAST_INTERVAL)
            pod = self.pod_reflector.pods.get(key) if self.pod_reflector else None
            events = list(self.events) if self.event_reflector and waiting_on_pull(pod) else []
            reason = permanent_start_failure(pod, events)
            if reason:
                return reason


use_prompt_polling()
