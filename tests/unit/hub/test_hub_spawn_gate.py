"""The spawn gate: first come first served, a bounded number inside, places given back by key, by the
handler's end or by the timer, and JupyterHub's start routes pointed at the gated handlers."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from jupyterhub import apihandlers, handlers
from jupyterhub.apihandlers.users import UserServerAPIHandler
from jupyterhub.handlers.pages import SpawnHandler

from hub_config import spawn_gate
from hub_config.spawn_gate import GatedSpawnHandler, GatedStart, GatedUserServerAPIHandler, SpawnGate, gate_routes


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_at_most_width_inside_and_the_rest_in_arrival_order() -> None:
    gate = SpawnGate(width=2, hold_max=30)
    order: list[str] = []

    async def start(name: str) -> None:
        await gate.enter((name, ""))
        order.append(name)

    tasks = [asyncio.create_task(start(f"u{i}")) for i in range(5)]
    await settle()
    assert order == ["u0", "u1"] and gate.inside == 2
    gate.leave(("u1", ""))
    await settle()
    assert order == ["u0", "u1", "u2"] and gate.inside == 2
    gate.leave(("u0", ""))
    gate.leave(("u2", ""))
    await settle()
    assert order == ["u0", "u1", "u2", "u3", "u4"]
    gate.leave(("u3", ""))
    gate.leave(("u4", ""))
    assert gate.inside == 0
    await asyncio.gather(*tasks)


async def test_release_is_idempotent_and_unknown_keys_change_nothing() -> None:
    gate = SpawnGate(width=1, hold_max=30)
    ticket = await gate.enter(("alice", ""))
    gate.leave(("bob", ""))
    gate.leave(("alice", "other-server"))
    assert gate.inside == 1
    ticket.release()
    ticket.release()
    gate.leave(("alice", ""))
    assert gate.inside == 0
    again = await asyncio.wait_for(gate.enter(("bob", "")), 1)  # the place really is free, exactly once
    assert gate.inside == 1 and not again.released


async def test_a_start_that_never_sends_its_pod_gives_its_place_up_after_hold_max() -> None:
    gate = SpawnGate(width=1, hold_max=0.05)
    await gate.enter(("stuck", ""))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.wait_for(gate.enter(("next", "")), 2)
    assert loop.time() - t0 >= 0.04
    assert gate.expired == 1


async def test_a_cancelled_waiter_neither_loses_nor_leaks_a_place() -> None:
    gate = SpawnGate(width=1, hold_max=30)
    first = await gate.enter(("a", ""))
    cancelled = asyncio.create_task(gate.enter(("b", "")))
    after = asyncio.create_task(gate.enter(("c", "")))
    await settle()
    cancelled.cancel()
    await settle()
    first.release()
    ticket = await asyncio.wait_for(after, 1)
    assert ticket.key == ("c", "") and gate.inside == 1
    ticket.release()
    assert gate.inside == 0


async def test_a_waiter_cancelled_after_being_handed_the_place_passes_it_on() -> None:
    gate = SpawnGate(width=1, hold_max=30)
    first = await gate.enter(("a", ""))
    handed = asyncio.create_task(gate.enter(("b", "")))
    after = asyncio.create_task(gate.enter(("c", "")))
    await settle()
    first.release()  # hands the place to b's waiter ...
    handed.cancel()  # ... which is cancelled before it runs
    ticket = await asyncio.wait_for(after, 1)
    assert ticket.key == ("c", "") and gate.inside == 1


def test_width_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="width"):
        SpawnGate(width=0, hold_max=1)


@pytest.mark.parametrize(("path_args", "user", "key"), [
    (["alice"], None, ("alice", "")),
    (["alice", "gpu"], None, ("alice", "gpu")),
    ([], "bob", ("bob", "")),
    ([], None, None),
])
def test_gate_key_from_the_route_or_the_logged_in_user(path_args: list[str], user: str | None,
                                                      key: tuple[str, str] | None) -> None:
    handler = SimpleNamespace(path_args=path_args, current_user=SimpleNamespace(name=user) if user else None)
    assert GatedStart.gate_key(handler) == key  # type: ignore[arg-type]


def test_gate_routes_replaces_only_the_mapped_handlers_and_keeps_route_options() -> None:
    class Other:
        pass

    routes = [("/a", UserServerAPIHandler), ("/b", Other, {"x": 1}), ("/c", SpawnHandler, {"y": 2})]
    assert gate_routes(routes, spawn_gate.GATED.get) == 2
    assert routes == [("/a", GatedUserServerAPIHandler), ("/b", Other, {"x": 1}), ("/c", GatedSpawnHandler, {"y": 2})]
    assert gate_routes(routes, spawn_gate.GATED.get) == 0  # installing twice changes nothing


def test_install_routes_jupyterhubs_start_handlers_through_the_gate() -> None:
    try:
        gate = spawn_gate.install(3, 1.5)
        assert gate is spawn_gate.GATE and gate is not None and (gate.width, gate.hold_max) == (3, 1.5)
        api = {pattern: h for pattern, h, *_ in apihandlers.default_handlers}
        pages = {pattern: h for pattern, h, *_ in handlers.default_handlers}
        assert api[r"/api/users/([^/]+)/server"] is GatedUserServerAPIHandler
        assert api[r"/api/users/([^/]+)/servers/([^/]*)"] is GatedUserServerAPIHandler
        assert pages["/spawn"] is pages["/spawn/([^/]+)"] is pages["/spawn/([^/]+)/([^/]+)"] is GatedSpawnHandler
        assert issubclass(GatedUserServerAPIHandler, UserServerAPIHandler)
        assert spawn_gate.install(0, 1.0) is None and spawn_gate.GATE is None
    finally:
        spawn_gate.GATE = None


async def test_the_spawner_gives_its_place_back_by_user_and_server_name() -> None:
    try:
        gate = spawn_gate.GATE = SpawnGate(width=2, hold_max=30)
        await gate.enter(("alice", "gpu"))
        await gate.enter(("alice", ""))
        spawn_gate.leave(SimpleNamespace(user=SimpleNamespace(name="alice"), name="gpu"))
        assert gate.inside == 1
        spawn_gate.leave(SimpleNamespace(user=None, name=""))  # a spawner without a user: nothing to give back
        spawn_gate.leave(SimpleNamespace(user=SimpleNamespace(name="alice"), name=None))
        assert gate.inside == 0
        spawn_gate.GATE = None
        spawn_gate.leave(SimpleNamespace(user=SimpleNamespace(name="alice"), name=""))  # no gate: harmless
    finally:
        spawn_gate.GATE = None
