"""The volume agent's verdicts on a real folder tree with hostile symlinks, its token, and the builder's side:
the agent pod it renders and how it starts, waits for and asks an agent (the agent app served on loopback)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from support import serve_on_loopback

from builder import constants as c
from builder.agents import AGENT_MOUNT, VolumeAgents, agent_gone, agent_pod_name, agent_ready, render_agent_pod
from builder.cache import Reflector
from builder.kube import Kube, KubeError
from builder.settings import Settings
from builder.validate import RequestRejected
from builder.volume_agent import TOKEN_ENV, create_agent_app, inspect_context

TOKEN = "t" * 43


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    """A workspace volume with good folders and every kind of escape."""
    root = tmp_path / "volume"
    (root / "real").mkdir(parents=True)
    (root / "real" / "Dockerfile").write_text("FROM scratch\n")
    (root / "real" / "docker").mkdir()
    (root / "real" / "docker" / "Dockerfile").write_text("FROM scratch\n")
    (root / "nodockerfile").mkdir()
    (root / "afile").write_text("x")
    links = root / "links"
    links.mkdir()
    (links / "evil").symlink_to("/etc")
    (links / "sneaky").symlink_to("../../")  # the folder holding the volume
    (links / "good").symlink_to("../real")
    (links / "loop").symlink_to("loop")
    (links / "dangling").symlink_to("nowhere")
    (root / "real" / "OutDockerfile").symlink_to("/etc/hostname")
    (root / "real" / "UpDockerfile").symlink_to("../nodockerfile/../afile")
    (tmp_path / "outside").mkdir()
    return root


@pytest.mark.parametrize(("path", "dockerfile", "field", "words"), [
    ("real", "Dockerfile", "", ""),
    ("real", "docker/Dockerfile", "", ""),
    ("links/good", "Dockerfile", "", ""),
    ("", "real/Dockerfile", "", ""),
    ("links/evil", "Dockerfile", "context.path", "resolves outside the volume"),
    ("links/evil/ssl", "Dockerfile", "context.path", "resolves outside the volume"),
    ("links/sneaky", "Dockerfile", "context.path", "resolves outside the volume"),
    ("links/loop", "Dockerfile", "context.path", "does not exist"),
    ("links/dangling", "Dockerfile", "context.path", "does not exist"),
    ("missing", "Dockerfile", "context.path", "does not exist"),
    ("afile", "Dockerfile", "context.path", "is not a folder"),
    ("nodockerfile", "Dockerfile", "dockerfile", "is not a file"),
    ("real", "docker", "dockerfile", "is not a file"),
    ("real", "OutDockerfile", "dockerfile", "resolves outside the context folder"),
    ("real", "UpDockerfile", "dockerfile", "resolves outside the context folder"),
])
def test_contexts_that_do_not_resolve_inside_the_volume_are_refused_naming_the_field(
    volume: Path, path: str, dockerfile: str, field: str, words: str
) -> None:
    verdict = inspect_context(volume, path, dockerfile)
    assert verdict.field == field and words in verdict.message
    assert str(volume) not in verdict.message and "/etc" not in verdict.message  # no host paths leak


def test_the_volume_mounted_through_a_symlink_still_confines_to_itself(volume: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(volume)
    assert inspect_context(alias, "real", "Dockerfile").ok
    assert inspect_context(alias, "links/sneaky", "Dockerfile").field == "context.path"


async def test_the_agent_answers_only_with_its_token_and_tracks_idleness(volume: Path) -> None:
    app = create_agent_app(volume, TOKEN, idle_seconds=60)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = await http.get("/resolve", params={"path": "real"}, headers=headers)
            assert r.status_code == 401 and "token" in r.json()["detail"]
        assert app.state.idle() > 0
        r = await http.get("/resolve", params={"path": "links/evil"}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and r.json()["ok"] is False and r.json()["field"] == "context.path"
        assert app.state.idle() < 1
        r = await http.get("/resolve", params={"path": "x" * 5000}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 422
        assert (await http.get("/healthz")).status_code == 200


# -- the builder's side ---------------------------------------------------------------------------------------

def test_the_agent_pod_mounts_the_claim_read_only_with_no_credentials_and_the_token_from_its_annotation() -> None:
    pod = render_agent_pod("alice", "workspace", TOKEN, Settings(volume_agent_image="reg/builder:1"))
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["name"] == agent_pod_name("workspace") and len(meta["name"]) <= 63
    assert agent_pod_name("workspace") != agent_pod_name("workspace2")
    assert meta["labels"][c.LABEL_COMPONENT] == c.COMPONENT_VOLUME_AGENT
    assert meta["annotations"] == {c.ANNOTATION_AGENT_CLAIM: "workspace", c.ANNOTATION_AGENT_TOKEN: TOKEN}
    assert spec["automountServiceAccountToken"] is False and spec["restartPolicy"] == "Never"
    [container] = spec["containers"]
    assert container["image"] == "reg/builder:1"
    assert container["volumeMounts"] == [{"name": "volume", "mountPath": AGENT_MOUNT, "readOnly": True}]
    assert spec["volumes"][0]["persistentVolumeClaim"] == {"claimName": "workspace", "readOnly": True}
    assert container["env"][0]["name"] == TOKEN_ENV and TOKEN not in str(container)
    sc = container["securityContext"]
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["DAC_OVERRIDE"]}
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]


def _pod(phase: str = "Running", ready: bool = True, ip: str = "127.0.0.1", deleting: bool = False,
         token: str = TOKEN) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": agent_pod_name("workspace"), "namespace": "alice",
                            "annotations": {c.ANNOTATION_AGENT_TOKEN: token}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": phase, "podIP": ip,
                                         "conditions": [{"type": "Ready", "status": str(ready)}]}}


def test_ready_and_gone() -> None:
    assert agent_ready(_pod()) and not agent_gone(_pod())
    assert not agent_ready(_pod(ready=False)) and not agent_ready(_pod(ip="")) and not agent_ready(None)
    assert agent_gone(_pod(phase="Succeeded")) and agent_gone(_pod(deleting=True)) and agent_gone(None)


@pytest.fixture
def agent_port(volume: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The agent app on a loopback port, as the pod would serve it, with the token the builder will put on
    the pod it creates (the real pod reads it from its annotation)."""
    monkeypatch.setattr("builder.agents.secrets.token_urlsafe", lambda n: TOKEN)
    with serve_on_loopback(create_agent_app(volume, TOKEN, 60)) as url:
        yield int(url.rsplit(":", 1)[1])


class AgentKube:
    """Records pod and claim calls; a created pod becomes Ready in the watch when `start` says so."""

    def __init__(self, pods: Reflector, claims: set[str], start: bool = True, conflict: bool = False) -> None:
        self.pods, self.claims, self.start, self.conflict = pods, claims, start, conflict
        self.calls: list[str] = []
        self.created: list[dict[str, Any]] = []

    async def get_pvc(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(f"get_pvc {name}")
        return {"metadata": {"name": name}} if name in self.claims else None

    async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("create_pod")
        self.created.append(body)
        if self.conflict:
            raise KubeError(409, "AlreadyExists", "exists")
        if self.start:
            async def becomes_ready() -> None:
                await asyncio.sleep(0.05)
                pod = _pod(token=body["metadata"]["annotations"][c.ANNOTATION_AGENT_TOKEN])
                self.pods.apply_event({"type": "ADDED", "object": pod})
            asyncio.get_running_loop().create_task(becomes_ready())
        return body

    async def delete_pod(self, namespace: str, name: str) -> None:
        self.calls.append("delete_pod")
        self.pods.apply_event({"type": "DELETED", "object": {"metadata": {"name": name, "namespace": namespace}}})


def agents(kube: AgentKube, port: int, **settings: Any) -> VolumeAgents:
    merged = {"volume_agent_wait_seconds": 2, **settings}
    return VolumeAgents(cast(Kube, kube), kube.pods, Settings(**merged), port=port)


async def test_the_first_build_of_a_claim_starts_its_agent_and_later_ones_just_ask(agent_port: int) -> None:
    pods = Reflector("agents")
    pods.replace([], "1")
    kube = AgentKube(pods, {"workspace"})
    va = agents(kube, agent_port)
    try:
        verdict = await va.check("alice", "workspace", "links/evil", "Dockerfile")
        assert verdict is not None and verdict.field == "context.path"
        assert kube.calls == ["get_pvc workspace", "create_pod"]
        verdict = await va.check("alice", "workspace", "real", "Dockerfile")
        assert verdict is not None and verdict.ok
        assert kube.calls == ["get_pvc workspace", "create_pod"]  # no more API calls
        assert len({b["metadata"]["annotations"][c.ANNOTATION_AGENT_TOKEN] for b in kube.created}) == 1
    finally:
        await va.close()


async def test_an_exited_agent_is_replaced_and_a_missing_claim_is_a_400(agent_port: int) -> None:
    pods = Reflector("agents")
    pods.replace([_pod(phase="Succeeded", ready=False)], "1")
    kube = AgentKube(pods, {"workspace"})
    va = agents(kube, agent_port)
    try:
        verdict = await va.check("alice", "workspace", "real", "Dockerfile")
        assert verdict is not None and verdict.ok
        assert kube.calls == ["delete_pod", "get_pvc workspace", "create_pod"]
        with pytest.raises(RequestRejected) as refused:
            await va.check("alice", "nosuchclaim", "real", "Dockerfile")
        assert refused.value.status == 400 and refused.value.field == "context.pvc"
        assert "nosuchclaim" in refused.value.message
    finally:
        await va.close()


async def test_no_agent_in_time_or_a_wrong_token_skips_the_check_instead_of_refusing(agent_port: int) -> None:
    pods = Reflector("agents")
    pods.replace([], "1")
    kube = AgentKube(pods, {"workspace"}, start=False)  # e.g. the namespace's quota has no room for it
    va = agents(kube, agent_port, volume_agent_wait_seconds=0.1)
    try:
        assert await va.check("alice", "workspace", "links/evil", "Dockerfile") is None
        calls = list(kube.calls)  # an agent that did not get Ready is not looked for (or waited for) again
        assert await va.check("alice", "workspace", "links/evil", "Dockerfile") is None
        assert kube.calls == calls and va._silent
        va._silent.clear()
        pods.apply_event({"type": "ADDED", "object": _pod(token="not-the-agents-token")})
        assert await va.check("alice", "workspace", "links/evil", "Dockerfile") is None
        # That agent is not asked again for a while (each build would otherwise wait for its timeout).
        pods.apply_event({"type": "MODIFIED", "object": _pod()})
        assert await va.check("alice", "workspace", "links/evil", "Dockerfile") is None
        va._silent.clear()
        verdict = await va.check("alice", "workspace", "links/evil", "Dockerfile")
        assert verdict is not None and verdict.field == "context.path"
    finally:
        await va.close()


async def test_two_builds_racing_to_start_one_claims_agent_share_it(agent_port: int) -> None:
    pods = Reflector("agents")
    pods.replace([], "1")
    kube = AgentKube(pods, {"workspace"}, conflict=True)  # the other request's create won

    async def the_other_request_started_it() -> None:
        await asyncio.sleep(0.05)
        pods.apply_event({"type": "ADDED", "object": _pod()})

    va = agents(kube, agent_port)
    try:
        _, verdict = await asyncio.gather(the_other_request_started_it(),
                                          va.check("alice", "workspace", "real", "Dockerfile"))
        assert verdict is not None and verdict.ok
    finally:
        await va.close()


def test_the_agent_command_refuses_to_start_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from builder import volume_agent

    monkeypatch.setenv(TOKEN_ENV, "short")
    monkeypatch.setattr("sys.argv", ["notebook-platform-volume-agent", f"--root={os.getcwd()}"])
    with pytest.raises(SystemExit, match=TOKEN_ENV):
        volume_agent.main()
