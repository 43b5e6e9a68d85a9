"""Keeps CPython's full garbage collections from stalling the hub's one event loop.

Why: a full (oldest-generation) collection walks every object the collector tracks, and while it runs no
request, watch event or start moves. The hub tracks ~270k objects after its imports and ~400-460k once it has
served a few hundred starts: its database rows, KubeSpawner's reflector copies of pods, events and PodDefaults
(re-listed every watch period). A full collection took 100-750 ms, and up to 2.8 s on a busy node; they came
in pairs every 60 s, the reflectors' re-list period (docs/benchmarks.md). Nearly all of those objects live
long, so walking them again and again finds nothing.

The policy: every `gc_freeze_seconds`, collect what is new since the last pass and move the survivors to the
collector's permanent generation (`gc.freeze`), which later collections skip; the automatic collections then
walk only objects from the last period. An object frozen and later dropped is still freed by its reference
count; only a cycle among frozen objects stays until a full pass. Every `gc_full_every` passes, at a moment
without pending starts or stops, a full pass unfreezes everything and collects it once, so such cycles are
reclaimed (at most one long pause per `gc_full_every` periods, never inside a burst of starts).

Each collection's duration is a Prometheus histogram on the hub's `/hub/metrics`, by generation.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from prometheus_client import Histogram

from hub_config import background
from hub_config.settings import HubSettings

log = logging.getLogger(__name__)

GC_PAUSE = Histogram(
    "notebook_platform_hub_gc_pause_seconds",
    "Duration of the hub's garbage collections (each one stops the event loop)",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class Step(Enum):
    """What one pass of the policy does."""

    FREEZE = "freeze"  # collect what is unfrozen, freeze the survivors
    FULL = "full"  # unfreeze, collect everything, freeze the survivors
    WAIT = "wait"  # a full pass is due but starts or stops are pending: try again next period


@dataclass(frozen=True)
class GcPolicy:
    """`full_every` passes make one full pass; 0 never unfreezes (cycles among frozen objects stay)."""

    period_seconds: float
    full_every: int

    def step(self, passes_since_full: int | None, busy: bool) -> Step:
        """The pass after `passes_since_full` ordinary ones (None: no full pass yet; the first pass walks
        everything the hub loaded at startup, so it is a full one). A full pass waits while the hub is busy."""
        due = passes_since_full is None or (self.full_every and passes_since_full + 1 >= self.full_every)
        if due:
            return Step.WAIT if busy else Step.FULL
        return Step.FREEZE

    @classmethod
    def from_settings(cls, settings: HubSettings) -> GcPolicy:
        return cls(settings.gc_freeze_seconds, settings.gc_full_every)


def collect_and_freeze(full: bool) -> tuple[int, float]:
    """Returns (objects frozen afterwards, seconds the collection took)."""
    if full:
        gc.unfreeze()
    start = time.perf_counter()
    gc.collect()
    elapsed = time.perf_counter() - start
    gc.freeze()
    return gc.get_freeze_count(), elapsed


class PauseRecorder:
    """A `gc.callbacks` entry that observes each collection's duration in GC_PAUSE."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock, self.started = clock, 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = self.clock()
        else:
            GC_PAUSE.labels(generation=str(info["generation"])).observe(self.clock() - self.started)


async def run(policy: GcPolicy, busy: Callable[[], bool]) -> None:
    """The policy's loop; runs until cancelled (with the hub's event loop)."""
    passes_since_full: int | None = None
    while True:
        await asyncio.sleep(policy.period_seconds)
        step = policy.step(passes_since_full, busy_or_unknown(busy))
        if step is Step.WAIT:
            continue
        frozen, elapsed = collect_and_freeze(full=step is Step.FULL)
        passes_since_full = 0 if step is Step.FULL else (passes_since_full or 0) + 1
        log.debug("gc %s pass: %.1f ms, %d objects frozen", step.value, elapsed * 1000, frozen)


def hub_busy() -> bool:
    """True while any server of the running hub is starting or stopping."""
    from jupyterhub.app import JupyterHub

    return bool(JupyterHub.instance().users.count_active_users().get("pending"))


def busy_or_unknown(busy: Callable[[], bool]) -> bool:
    """`busy()`, or True when it fails: the policy must outlive a hub state it cannot read, and a pass that
    waits for a quiet hub then waits."""
    try:
        return busy()
    except Exception:
        log.exception("gc policy: could not tell whether starts are pending")
        return True


def freeze_unless_busy(busy: Callable[[], bool] = hub_busy) -> bool:
    """Collects and freezes what is new, now, unless a start or stop is pending (or that cannot be told):
    for a moment the hub knows it has just made many long-lived objects. hub_config/warm_up.py lists every Pod
    event in the cluster (150k objects for 4,000 events); left unfrozen until the policy's first pass, they
    made each automatic full collection of the first burst walk them (three of 0.1-1 s in one burst)."""
    if busy_or_unknown(busy):
        return False
    collect_and_freeze(full=False)
    return True


def start(policy: GcPolicy, busy: Callable[[], bool] = hub_busy) -> asyncio.Task[None] | None:
    """Starts the policy on the running event loop (the hub loads its config inside it). Without a running
    loop (a config loaded by another tool), or with a period of 0, it does nothing and returns None."""
    if policy.period_seconds <= 0:
        return None
    task = background.on_running_loop(lambda: run(policy, busy), name="gc-policy")
    if task is not None and not any(isinstance(cb, PauseRecorder) for cb in gc.callbacks):
        gc.callbacks.append(PauseRecorder())  # before the task's first step: it runs on the loop's next turn
    return task
