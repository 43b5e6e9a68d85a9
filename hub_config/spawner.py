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

from collections.abc import AsyncIterator
from typing import Any

import kubespawner.spawner as kubespawner_module
from jupyterhub.utils import exponential_backoff
from kubespawner import KubeSpawner

from hub_config.messages import explain_event

POLL_START = 0.05
POLL_CAP = 0.25


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
    """KubeSpawner whose progress stream explains image-pull, scheduling and mount failures."""

    async def progress(self) -> AsyncIterator[dict[str, Any]]:  # type: ignore[override]
        async for event in super().progress():
            yield improve_progress_event(event)


use_prompt_polling()
