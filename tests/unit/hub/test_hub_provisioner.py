"""When namespaces are provisioned: at login in the background, shared with a spawn, skipped while fresh.

The provisioning pass itself is replaced by a recorder (it is tested against the real apiserver in
tests/integration/hub); what is tested here is the scheduling around it.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config

from hub_config.config import configure
from hub_config.namespaces import ProvisionResult, namespace_name
from hub_config.provisioner import Provisioner, make_post_auth_hook
from hub_config.settings import HubSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Passes:
    """Stands in for `ensure_user_namespace`: counts passes; can be held open or made to fail."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def __call__(self, api: Any, username: str, namespace: str, settings: Any) -> ProvisionResult:
        self.calls.append(namespace)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return ProvisionResult(namespace, applied=["Namespace/" + namespace])


def provisioner(fresh: float = 300.0) -> tuple[Provisioner, Passes, Clock]:
    passes, clock = Passes(), Clock()
    return Provisioner(HubSettings(), fresh, clock=clock, ensure=passes), passes, clock


async def test_a_start_right_after_login_reuses_the_login_pass() -> None:
    p, passes, clock = provisioner()
    assert (await p.ensure(None, "alice", "nbp-alice")) is not None
    clock.now += 10
    assert await p.ensure(None, "alice", "nbp-alice") is None
    assert passes.calls == ["nbp-alice"]


async def test_after_the_fresh_window_or_a_stop_the_start_provisions_again() -> None:
    p, passes, clock = provisioner(fresh=60)
    await p.ensure(None, "alice", "nbp-alice")
    clock.now += 61
    await p.ensure(None, "alice", "nbp-alice")
    p.forget("nbp-alice")
    await p.ensure(None, "alice", "nbp-alice")
    assert passes.calls == ["nbp-alice"] * 3


async def test_a_window_of_zero_provisions_on_every_start() -> None:
    p, passes, _ = provisioner(fresh=0)
    for _ in range(3):
        await p.ensure(None, "alice", "nbp-alice")
    assert len(passes.calls) == 3


async def test_a_spawn_during_the_login_pass_waits_for_it_instead_of_starting_another() -> None:
    p, passes, _ = provisioner()
    passes.gate = asyncio.Event()
    p.start_early(None, "alice", "nbp-alice")
    await asyncio.sleep(0)
    spawn = asyncio.create_task(p.ensure(None, "alice", "nbp-alice"))
    await asyncio.sleep(0.01)
    assert not spawn.done() and passes.calls == ["nbp-alice"]
    passes.gate.set()
    result = await spawn
    assert result is not None and result.namespace == "nbp-alice" and passes.calls == ["nbp-alice"]


async def test_a_failed_pass_is_not_remembered_and_the_spawn_sees_the_error() -> None:
    p, passes, _ = provisioner()
    passes.fail = RuntimeError("forbidden")
    p.start_early(None, "alice", "nbp-alice")  # logged, never raised into the login
    await asyncio.sleep(0.01)
    with pytest.raises(RuntimeError, match="forbidden"):
        await p.ensure(None, "alice", "nbp-alice")
    passes.fail = None
    assert await p.ensure(None, "alice", "nbp-alice") is not None
    assert passes.calls == ["nbp-alice"] * 3


async def test_a_cancelled_spawn_does_not_cancel_the_shared_pass() -> None:
    p, passes, _ = provisioner()
    passes.gate = asyncio.Event()
    first = asyncio.create_task(p.ensure(None, "alice", "nbp-alice"))
    await asyncio.sleep(0)
    second = asyncio.create_task(p.ensure(None, "alice", "nbp-alice"))
    await asyncio.sleep(0)
    first.cancel()
    passes.gate.set()
    assert (await second) is not None and p.is_fresh("nbp-alice")


async def test_the_login_hook_starts_the_pass_for_a_returning_users_own_spawner_and_never_fails_the_login(
) -> None:
    p, passes, _ = provisioner()
    spawner = SimpleNamespace(active=False, namespace="nbp-alice", api=SimpleNamespace(api_client="client"))
    handler = SimpleNamespace(find_user=lambda name: SimpleNamespace(name=name, spawner=spawner))
    hook = make_post_auth_hook(p)
    auth = {"name": "alice", "admin": False}
    assert hook(SimpleNamespace(config=Config()), handler, auth) is auth
    await asyncio.sleep(0.01)
    assert passes.calls == ["nbp-alice"]

    spawner.active = True  # already running: nothing to prepare
    p.forget("nbp-alice")
    hook(SimpleNamespace(config=Config()), handler, auth)
    await asyncio.sleep(0.01)
    assert passes.calls == ["nbp-alice"]

    def broken(name: str) -> Any:
        raise RuntimeError("database is locked")

    assert hook(SimpleNamespace(config=Config()), SimpleNamespace(find_user=broken), auth) is auth


async def test_the_login_hook_never_creates_a_new_user_and_provisions_their_namespace_by_the_slug_rules() -> None:
    p, passes, _ = provisioner()
    clients: list[Any] = []
    hook = make_post_auth_hook(p, new_user_client=lambda config: clients.append(config) or "client")
    config = configure(Config(), HubSettings())  # KubeSpawner's namespace template is ours
    handler = SimpleNamespace(find_user=lambda name: None,
                              user_from_username=lambda name: pytest.fail("the hook must not create users"))
    hook(SimpleNamespace(config=config), handler, {"name": "Émile.Zola"})
    await asyncio.sleep(0.01)
    assert passes.calls == [namespace_name("Émile.Zola", HubSettings().namespace_prefix)] and clients == [config]

    # An operator who changed the template: the namespace is the spawner's business, nothing is guessed.
    config.KubeSpawner.user_namespace_template = "team-{username}"
    hook(SimpleNamespace(config=config), handler, {"name": "bob"})
    await asyncio.sleep(0.01)
    assert len(passes.calls) == 1


def test_the_hub_config_wires_login_spawn_and_stop_to_one_provisioner() -> None:
    c = configure(Config(), HubSettings())
    hook = c.Authenticator.post_auth_hook
    stop = c.KubeSpawner.post_stop_hook
    # The same Provisioner object is closed over by the login hook, the pre-spawn hook and the stop hook.
    cells = [cell.cell_contents for f in (hook, c.KubeSpawner.pre_spawn_hook, stop)
             for cell in (f.__closure__ or ()) if isinstance(cell.cell_contents, Provisioner)]
    assert len(cells) == 3 and cells[0] is cells[1] is cells[2]
    assert cells[0].fresh_seconds == HubSettings().provision_fresh_seconds
