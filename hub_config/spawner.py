"""`NotebookSpawner`: KubeSpawner with progress messages people can act on.

Every KubeSpawner option keeps its meaning (this is a subclass, configured through `c.KubeSpawner.*` as
usual); only the text of progress events changes, for the events users get stuck on (image pulls,
scheduling, mounts). The raw event stays in `raw_event` for anyone who wants it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from kubespawner import KubeSpawner

from hub_config.messages import explain_event


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
