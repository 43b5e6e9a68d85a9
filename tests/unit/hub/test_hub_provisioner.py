"""When namespaces are provisioned: at login in the background, shared with a spawn, skipped while fresh.

The provisioning pass itself is replaced by a recorder (it is tested against the real apiserver in
tests/integration/hub); what is tested here is the scheduling around it.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes_asyncio.client.exceptions import ApiException
from traitlets.config import Config

from hub_config.config import configure
from hub_config.namespaces import ProvisionResult, namespace_name
from hub_config.provisioner import Provisioner, create_workspace, make_post_auth_hook
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


class Claims:
    """Stands in for KubeSpawner's CoreV1Api and its PVC manifest: records creates, answers 409 for a second."""

    def __init__(self, fail: ApiException | None = None) -> None:
        self.created: list[tuple[str, Any]] = []
        self.fail = fail
        self.api_client = "client"

    async def create_namespaced_persistent_volume_claim(self, namespace: str, body: Any) -> Any:
        if self.fail is not None:
            raise self.fail
        if any(ns == namespace for ns, _ in self.created):
            raise ApiException(status=409, reason="AlreadyExists")
        self.created.append((namespace, body))
        return body


def spawner_of(namespace: str, claims: Claims, ensure: bool = True) -> SimpleNamespace:
    return SimpleNamespace(active=False, namespace=namespace, api=claims, storage_pvc_ensure=ensure,
                           get_pvc_manifest=lambda: {"kind": "PersistentVolumeClaim", "for": namespace})


async def test_the_workspace_claim_is_kubespawners_manifest_created_once() -> None:
    claims = Claims()
    spawner = spawner_of("nbp-alice", claims)
    assert await create_workspace(spawner) is True
    assert spawner.workspace_ready, "its next start skips KubeSpawner's create"
    spawner.workspace_ready = False
    assert await create_workspace(spawner) is False, "409: it exists, which is what was wanted"
    assert spawner.workspace_ready
    assert claims.created == [("nbp-alice", {"kind": "PersistentVolumeClaim", "for": "nbp-alice"})]
    assert await create_workspace(spawner_of("nbp-bob", claims, ensure=False)) is False
    assert len(claims.created) == 1, "an operator who turned off KubeSpawner's claim gets none from us"
    refused = spawner_of("nbp-carol", Claims(fail=ApiException(status=403, reason="quota")))
    with pytest.raises(ApiException):
        await create_workspace(refused)
    assert not getattr(refused, "workspace_ready", False), "the start tries again and reports the refusal"


async def test_the_login_hook_starts_the_pass_for_a_returning_users_own_spawner_and_never_fails_the_login(
) -> None:
    p, passes, _ = provisioner()
    claims = Claims()
    spawner = spawner_of("nbp-alice", claims)
    handler = SimpleNamespace(find_user=lambda name: SimpleNamespace(name=name, spawner=spawner))
    hook = make_post_auth_hook(p)
    auth = {"name": "alice", "admin": False}
    assert hook(SimpleNamespace(config=Config()), handler, auth) is auth
    await asyncio.sleep(0.01)
    assert passes.calls == ["nbp-alice"]
    assert [ns for ns, _ in claims.created] == ["nbp-alice"], "the workspace claim follows the namespace pass"

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
    handler = SimpleNamespace(find_user=lambda name: None, users={},
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


async def test_a_new_users_claim_is_made_once_the_hub_has_created_them_and_only_after_a_good_pass(caplog) -> None:
    caplog.set_level(logging.INFO, logger="hub_config.provisioner")
    p, passes, _ = provisioner()
    passes.gate = asyncio.Event()
    claims, users = Claims(), {}
    config = configure(Config(), HubSettings())
    handler = SimpleNamespace(find_user=lambda name: None, users=users)
    hook = make_post_auth_hook(p, new_user_client=lambda config: "client")
    hook(SimpleNamespace(config=config), handler, {"name": "dora"})
    ns = namespace_name("dora", HubSettings().namespace_prefix)
    users["dora"] = SimpleNamespace(spawner=spawner_of(ns, claims))  # JupyterHub creates the user meanwhile
    passes.gate.set()
    await asyncio.sleep(0.01)
    assert [n for n, _ in claims.created] == [ns]

    # Not created (yet) when the pass ends: nothing is guessed, the first start makes the claim.
    hook(SimpleNamespace(config=config), handler, {"name": "eve"})
    await asyncio.sleep(0.01)
    assert len(claims.created) == 1 and "first start makes their workspace claim" in caplog.text

    # A failed namespace pass: no claim, and the login still succeeds.
    passes.fail = RuntimeError("forbidden")
    users["fay"] = SimpleNamespace(spawner=spawner_of("nbp-fay", claims))
    assert hook(SimpleNamespace(config=config), handler, {"name": "fay"}) == {"name": "fay"}
    await asyncio.sleep(0.01)
    assert len(claims.created) == 1 and "forbidden" in caplog.text
