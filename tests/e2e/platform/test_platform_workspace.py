"""A user's workspace outlives their server, on the installed platform (`make up`) and the real node.

Through the hub's REST API with a token the user made for themselves (what a script or the idle culler does):
start a server, write a file into the home directory through the server's contents API, stop the server, check
the pod is gone and the ReadWriteMany claim is not, start again and read the file back. The pod is also checked
for what the hub puts on it: the namespace, the `notebook` service account, the builder configuration's label,
the workspace claim, and the readiness probe that makes Ready mean "the server answers".
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from platform_e2e import Platform
from support import wait_for

from hub_config.namespaces import namespace_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
from harness import user_token  # the hub tests' login helpers

SERVER_SELECTOR = "component=singleuser-server"


@pytest.fixture
def hub_api(platform: Platform) -> Iterator[tuple[str, httpx.Client]]:
    """(user name, a client for the hub with that user's own API token), for a new user."""
    name = f"e2e-ws-{secrets.token_hex(3)}"
    token = user_token(platform.url, name, platform.password)
    with httpx.Client(base_url=platform.url, headers={"Authorization": f"token {token}"}, timeout=60) as api:
        try:
            yield name, api
        finally:
            api.delete(f"/hub/api/users/{name}/server")
            platform.kubectl("delete", "namespace", namespace_name(name, "nbp-"), "--wait=false", check=False)


def start_and_wait(api: httpx.Client, name: str) -> None:
    started = api.post(f"/hub/api/users/{name}/server", json={"profile": "small", "configurations": ["builder"]})
    assert started.status_code in (201, 202), started.text
    wait_for(lambda: (api.get(f"/hub/api/users/{name}").json()["servers"].get("") or {}).get("ready"),
             timeout=300, interval=1, what=f"{name}'s server ready")


def server_pods(core: Any, ns: str) -> list[Any]:
    return [p for p in core.list_namespaced_pod(ns, label_selector=SERVER_SELECTOR).items]


def test_a_stopped_server_keeps_the_workspace_and_the_next_start_sees_its_files(
        platform: Platform, kube_api: Any, hub_api: tuple[str, httpx.Client]) -> None:
    from kubernetes import client

    core = client.CoreV1Api(kube_api)
    name, api = hub_api
    ns = namespace_name(name, "nbp-")
    start_and_wait(api, name)

    (pod,) = server_pods(core, ns)
    assert pod.spec.service_account_name == "notebook"
    assert pod.metadata.labels.get("notebook-platform.io/builder") == "true"
    claim = next(v.persistent_volume_claim.claim_name for v in pod.spec.volumes if v.persistent_volume_claim)
    assert core.read_namespaced_persistent_volume_claim(claim, ns).spec.access_modes == ["ReadWriteMany"]
    (notebook,) = [c for c in pod.spec.containers if c.name == "notebook"]
    assert notebook.readiness_probe.http_get.path == f"/user/{name}/api"

    word = secrets.token_hex(8)
    contents = f"/user/{name}/api/contents/kept.txt"
    put = api.put(contents, json={"type": "file", "format": "text", "content": word})
    assert put.status_code in (200, 201), put.text

    stopped = api.delete(f"/hub/api/users/{name}/server")
    assert stopped.status_code in (202, 204), stopped.text
    wait_for(lambda: not server_pods(core, ns), timeout=120, interval=1, what="the server pod gone")
    assert core.read_namespaced_persistent_volume_claim(claim, ns).metadata.deletion_timestamp is None

    start_and_wait(api, name)
    (again,) = server_pods(core, ns)
    assert again.metadata.uid != pod.metadata.uid
    read = api.get(contents)
    assert read.status_code == 200, read.text
    assert read.json()["content"] == word
