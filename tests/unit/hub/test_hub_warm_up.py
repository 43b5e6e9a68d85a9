"""The hub's warm-up: which watches it starts, that its failures (KubeSpawner's sys.exit included) never end
the hub, that it can be cancelled, and how it starts (or does not) with the hub's config."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub_config import background, warm_up


class Spawner:
    """Records which of KubeSpawner's reflector starts were awaited, in order."""

    def __init__(self, events_enabled: bool = True, fail: BaseException | None = None) -> None:
        self.events_enabled = events_enabled
        self.fail = fail
        self.started: list[str] = []

    async def _start_watching_pods(self) -> None:
        self.started.append("pods")
        if self.fail is not None:
            raise self.fail

    async def _start_watching_events(self) -> None:
        self.started.append("events")


async def no_sleep(_: float) -> None:
    return None


async def test_it_starts_pods_then_events_then_the_poddefault_copy_then_calls_then() -> None:
    spawner = Spawner()
    copies: list[Any] = []
    after: list[list[str]] = []
    assert await warm_up.run(lambda: spawner, copies.append, then=lambda: after.append(list(spawner.started)),
                             sleep=no_sleep) is True
    assert spawner.started == ["pods", "events"]
    assert copies == [spawner]
    assert after == [["pods", "events"]]  # once, after every watch started


async def test_without_events_enabled_the_event_watch_is_left_alone() -> None:
    spawner = Spawner(events_enabled=False)
    assert await warm_up.run(lambda: spawner, lambda s: None, sleep=no_sleep) is True
    assert spawner.started == ["pods"]


@pytest.mark.parametrize("failure", [SystemExit(1), RuntimeError("apiserver away"), PermissionError("rbac")])
async def test_a_failed_start_is_logged_and_never_ends_the_hub(failure: BaseException,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    spawner = Spawner(fail=failure)
    copies: list[Any] = []
    assert await warm_up.run(lambda: spawner, copies.append, then=lambda: copies.append("then"),
                             sleep=no_sleep) is False
    assert copies == []  # nothing after the failure
    assert "did not start ahead of the first spawn" in caplog.text


async def test_a_spawner_that_cannot_be_made_is_a_failed_warm_up_too() -> None:
    def make() -> Any:
        raise TypeError("an operator's spawner_class takes other arguments")

    assert await warm_up.run(make, lambda s: None, sleep=no_sleep) is False


async def test_it_waits_its_delay_first_and_can_be_cancelled_while_waiting() -> None:
    spawner = Spawner()
    task = asyncio.ensure_future(warm_up.run(lambda: spawner, lambda s: None, delay=30))
    await asyncio.sleep(0.05)
    assert spawner.started == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_without_a_running_loop_nothing_starts() -> None:
    assert warm_up.start(lambda: Spawner(), lambda s: None) is None


async def test_started_on_the_running_loop_it_warms_up_once() -> None:
    spawner = Spawner()
    task = warm_up.start(lambda: spawner, lambda s: None)
    assert task is not None and background.held(task)
    task.cancel()  # the real delay is seconds; cancelling shows the task is the loop's and is released
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not background.held(task)


def test_the_real_spawner_class_can_be_made_for_no_user_and_shares_the_class_reflectors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from kubespawner import spawner as kubespawner_module
    from traitlets.config import Config

    from hub_config.config import configure
    from hub_config.settings import HubSettings
    from hub_config.spawner import NotebookSpawner

    monkeypatch.setattr(kubespawner_module, "load_config", lambda **kwargs: None)  # no cluster here
    monkeypatch.setattr(kubespawner_module, "shared_client", lambda name: None)
    spawner = NotebookSpawner(config=configure(Config(), HubSettings()), user=warm_up.NoUser(), hub=None)
    # Per-user namespaces: one reflector per kind for all namespaces, so a real user's start finds these.
    assert spawner.enable_user_namespaces
    assert spawner._get_reflector_key("pods") == ("pods", None)
    assert spawner.events_enabled
