"""The hub's garbage-collector policy: which pass runs when, that frozen objects are really skipped and
reclaimed by a full pass, the pause histogram, and how the policy starts (or does not) with the hub."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from hub_config import gc_policy as gp
from hub_config.settings import HubSettings


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """Other tests must not inherit a frozen heap or a recorder from these."""
    yield
    gc.unfreeze()
    gc.callbacks[:] = [cb for cb in gc.callbacks if not isinstance(cb, gp.PauseRecorder)]


class Node:
    """An object in a reference cycle: only the cycle collector can free it."""

    def __init__(self) -> None:
        self.me = self


def dropped_cycle() -> weakref.ref[Node]:
    return weakref.ref(Node())


def test_the_first_pass_is_full_and_waits_for_a_quiet_hub() -> None:
    policy = gp.GcPolicy(period_seconds=60, full_every=3)
    assert policy.step(None, busy=True) is gp.Step.WAIT
    assert policy.step(None, busy=False) is gp.Step.FULL


def test_ordinary_passes_freeze_even_while_busy_and_every_nth_is_full() -> None:
    policy = gp.GcPolicy(period_seconds=60, full_every=3)
    assert [policy.step(n, busy=True) for n in (0, 1)] == [gp.Step.FREEZE, gp.Step.FREEZE]
    assert policy.step(2, busy=True) is gp.Step.WAIT
    assert policy.step(2, busy=False) is gp.Step.FULL


def test_full_every_zero_never_makes_another_full_pass() -> None:
    policy = gp.GcPolicy(period_seconds=60, full_every=0)
    assert {policy.step(n, busy=False) for n in range(0, 500, 7)} == {gp.Step.FREEZE}


def test_the_policy_follows_the_settings() -> None:
    policy = gp.GcPolicy.from_settings(HubSettings(gc_freeze_seconds=12.5, gc_full_every=4))
    assert policy == gp.GcPolicy(12.5, 4)


def test_a_pass_collects_garbage_first_then_freezes_the_survivors() -> None:
    garbage = dropped_cycle()
    survivor = Node()
    frozen, elapsed = gp.collect_and_freeze(full=False)
    assert garbage() is None  # collected, not frozen
    assert frozen == gc.get_freeze_count() > 0
    assert elapsed >= 0
    assert not any(o is survivor for o in gc.get_objects())  # frozen objects are out of every generation


def test_a_frozen_cycle_survives_ordinary_passes_and_a_full_pass_reclaims_it() -> None:
    node = Node()
    ref = weakref.ref(node)
    gp.collect_and_freeze(full=False)
    del node
    gp.collect_and_freeze(full=False)
    assert ref() is not None  # frozen: the collector skips it
    gp.collect_and_freeze(full=True)
    assert ref() is None


def sample_count(generation: str) -> float:
    for metric in gp.GC_PAUSE.collect():
        for s in metric.samples:
            if s.name.endswith("_count") and s.labels == {"generation": generation}:
                return s.value
    return 0.0


def test_the_recorder_observes_each_collection_by_generation() -> None:
    times = iter([10.0, 10.25])
    recorder = gp.PauseRecorder(clock=lambda: next(times))
    before = sample_count("2")
    recorder("start", {"generation": 2})
    recorder("stop", {"generation": 2, "collected": 0, "uncollectable": 0})
    assert sample_count("2") == before + 1
    buckets = {s.labels["le"]: s.value for m in gp.GC_PAUSE.collect() for s in m.samples
               if s.name.endswith("_bucket") and s.labels.get("generation") == "2"}
    assert buckets["0.1"] < buckets["0.25"]  # the 0.25 s pause landed in the 0.25 bucket


async def test_the_loop_waits_while_busy_then_freezes() -> None:
    state = {"busy": True}
    task = asyncio.create_task(gp.run(gp.GcPolicy(period_seconds=0.01, full_every=0), lambda: state["busy"]))
    await asyncio.sleep(0.1)
    assert gc.get_freeze_count() == 0  # the first (full) pass waited for the quiet hub
    state["busy"] = False
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gc.get_freeze_count() > 0


async def test_a_failing_busy_check_counts_as_busy_and_the_loop_lives_on() -> None:
    calls = {"n": 0}

    def broken() -> bool:
        calls["n"] += 1
        raise RuntimeError("no hub")

    task = asyncio.create_task(gp.run(gp.GcPolicy(period_seconds=0.01, full_every=1), broken))
    await asyncio.sleep(0.1)
    assert not task.done() and calls["n"] >= 3
    assert gc.get_freeze_count() == 0
    task.cancel()


def test_without_a_running_loop_or_with_period_zero_nothing_starts() -> None:
    assert gp.start(gp.GcPolicy(60, 60)) is None
    assert not any(isinstance(cb, gp.PauseRecorder) for cb in gc.callbacks)


async def test_started_in_the_hub_loop_it_runs_and_records_pauses_once() -> None:
    assert gp.start(gp.GcPolicy(0, 60)) is None
    tasks = [gp.start(gp.GcPolicy(60, 60), busy=lambda: False) for _ in range(2)]
    try:
        assert all(t is not None and not t.done() for t in tasks)
        assert sum(isinstance(cb, gp.PauseRecorder) for cb in gc.callbacks) == 1
        before = sample_count("0")
        gc.collect(0)
        assert sample_count("0") == before + 1
    finally:
        for t in tasks:
            assert t is not None
            t.cancel()


def test_hub_busy_reads_pending_servers_of_the_running_hub() -> None:
    from jupyterhub.app import JupyterHub
    from jupyterhub.user import UserDict

    class Spawner:
        def __init__(self, pending: str | None) -> None:
            self.pending, self.active, self.ready = pending, bool(pending), False

    class User:
        def __init__(self, pending: str | None) -> None:
            self.spawners: dict[str, Any] = {"": Spawner(pending)}

    app = JupyterHub.instance()
    try:
        app.users = UserDict(db_factory=lambda: None, settings={})
        dict.__setitem__(app.users, 1, User(None))
        assert gp.hub_busy() is False
        dict.__setitem__(app.users, 2, User("spawn"))
        assert gp.hub_busy() is True
    finally:
        JupyterHub.clear_instance()


def test_freeze_unless_busy_freezes_what_is_new_only_on_a_quiet_hub() -> None:
    def broken() -> bool:
        raise RuntimeError("no hub")

    kept = [Node() for _ in range(100)]
    assert gp.freeze_unless_busy(busy=lambda: True) is False
    assert gp.freeze_unless_busy(busy=broken) is False
    assert gc.get_freeze_count() == 0
    garbage = dropped_cycle()
    assert gp.freeze_unless_busy(busy=lambda: False) is True
    assert garbage() is None  # collected first
    assert gc.get_freeze_count() >= len(kept)  # then the survivors frozen


def gc_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "gc-policy" and not t.done()]


async def test_the_hub_config_file_starts_the_policy_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from traitlets.config import Config

    from hub_config.config import SPAWNER_CLASS, configure_hub

    monkeypatch.delenv("HUB_SETTINGS_FILE", raising=False)
    monkeypatch.setenv("HUB_GC_FREEZE_SECONDS", "0")
    assert configure_hub(Config()).JupyterHub.spawner_class == SPAWNER_CLASS
    assert gc_tasks() == []
    monkeypatch.setenv("HUB_GC_FREEZE_SECONDS", "30")
    configure_hub(Config())
    started = gc_tasks()
    assert len(started) == 1
    started[0].cancel()
    warm_ups = [t for t in asyncio.all_tasks() if t.get_name() == "hub-warm-up"]
    assert len(warm_ups) == 2  # one per configure_hub: the hub loads its config once
    for t in warm_ups:
        t.cancel()
