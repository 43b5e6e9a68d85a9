"""`NotebookSpawner`: KubeSpawner with progress messages people can act on, and prompt start detection.

Every KubeSpawner option keeps its meaning (this is a subclass, configured through `c.KubeSpawner.*` as
usual); only the text of progress events changes, for the events users get stuck on (image pulls,
scheduling, mounts). The raw event stays in `raw_event` for anyone who wants it.

Start detection: KubeSpawner waits for the pod (in its watch-fed reflector, i.e. in memory) and for pod
deletions with JupyterHub's `exponential_backoff`, whose waits grow to 5 s with full jitter. A server that
becomes Ready between two polls was noticed up to seconds late, which was most of the hub's own share of the
spawn time (docs/benchmarks.md). `use_prompt_polling` caps those waits at `POLL_CAP` seconds for KubeSpawner
only; the API calls it retries with the same helper (pod and PVC creation after a conflict, deletion
checks) then retry at that pace too, which is still a handful of requests per spawn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import kubespawner.spawner as kubespawner_module
from jupyterhub.utils import exponential_backoff
from kubespawner import KubeSpawner

from hub_config.messages import SpawnError, explain_event, permanent_start_failure, waiting_on_pull

POLL_START = 0.05
POLL_CAP = 0.25
FAIL_FAST_INTERVAL = 0.5


async def prompt_backoff(pass_func: Any, fail_message: str, start_wait: float = POLL_START,
                         scale_factor: float = 2, max_wait: float = POLL_CAP, *args: Any, **kwargs: Any) -> Any:
    """JupyterHub's backoff with its first wait and its cap lowered (never raised) to ours."""
    return await exponential_backoff(pass_func, fail_message, min(start_wait, POLL_START), scale_factor,
                                     min(max_wait, POLL_CAP), *args, **kwargs)


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
