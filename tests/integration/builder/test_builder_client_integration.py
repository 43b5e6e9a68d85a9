"""The notebook client over real HTTP (uvicorn in a thread) against the real apiserver.

Without a node no build runs, so these cover the client's side: path mapping, hashing, refusals, reuse of a
recorded result, and following the real SSE stream to a cancellation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from builder_helpers import REG, grant, make_sa
from kubernetes import client as kc
from support import serve_on_loopback

from builder import constants as c
from builder.app import create_app
from builder.client import BuildError, BuildFailed, build
from builder.contexthash import content_hash
from builder.settings import Settings


@pytest.fixture
def server(cluster: Any) -> Iterator[str]:
    """The builder on a real port, so streaming is real (httpx's ASGI transport buffers responses)."""
    settings = Settings(kubeconfig=cluster.kubeconfig, registry=REG, auth_cache_ttl_seconds=0, volume_agent=False,
                        sse_heartbeat_seconds=1)
    with serve_on_loopback(create_app(settings)) as url:
        yield url


@pytest.fixture
def notebook(tmp_path: Path, kube_api: Any, namespace: str) -> dict[str, Any]:
    """A workspace with a project folder and the pod's service-account files, as a notebook would have."""
    home = tmp_path / "home"
    (home / "proj").mkdir(parents=True)
    (home / "proj" / "Dockerfile").write_text("FROM python:3.12-slim\nCOPY . /app\n")
    (home / "proj" / "app.py").write_text("print('hi')\n")
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text(make_sa(kube_api, namespace))
    (sa / "namespace").write_text(namespace)
    grant(kube_api, namespace, namespace)
    return {"home": home, "sa": sa, "namespace": namespace}


def cancel_when_created(server: str, nb: dict[str, Any]) -> threading.Thread:
    """Cancels the first build that appears, as a user pressing stop would."""
    ns, token = nb["namespace"], (nb["sa"] / "token").read_text()
    headers = {"Authorization": f"Bearer {token}"}

    def run() -> None:
        base = f"{server}/api/v1/namespaces/{ns}/builds"
        for _ in range(200):
            items = httpx.get(base, headers=headers).json()["items"]
            if items:
                time.sleep(1.5)  # let the client attach to the stream first
                httpx.delete(f"{base}/{items[0]['metadata']['name']}", headers=headers)
                return
            time.sleep(0.1)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_client_follows_the_stream_and_raises_when_the_build_is_cancelled(
    server: str, notebook: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ns = notebook["namespace"]
    t = cancel_when_created(server, notebook)
    with pytest.raises(BuildFailed) as e:
        build(notebook["home"] / "proj", f"{REG}/{ns}/app:v1", pvc="workspace", workspace_root=notebook["home"],
              url=server, service_account_dir=notebook["sa"])
    t.join(5)
    assert "cancelled" in str(e.value)
    out = capsys.readouterr().out
    assert "builder: waiting" in out and "builder: failed" in out


def test_client_reuses_a_recorded_build_of_identical_content(
    server: str, notebook: dict[str, Any], kube_api: Any
) -> None:
    ns, home = notebook["namespace"], notebook["home"]
    dest = f"{REG}/{ns}/app:v1"
    token = (notebook["sa"] / "token").read_text()
    body = {"context": {"pvc": "workspace", "path": "proj"}, "destination": dest,
            "contentHash": content_hash(home / "proj")}
    r = httpx.post(f"{server}/api/v1/namespaces/{ns}/builds", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201
    # NOT a real build (no node): record the result as the API does after reading Kaniko's digest, to test that
    # the client's hash matches and the API hands back the earlier build.
    digest = "sha256:" + "c0" * 32
    kc.BatchV1Api(kube_api).patch_namespaced_job(r.json()["metadata"]["name"], ns, {"metadata": {
        "annotations": {c.ANNOTATION_PHASE: "Succeeded", c.ANNOTATION_DIGEST: digest},
        "labels": {c.LABEL_ACTIVE: None}}})
    got = build(home / "proj", dest, pvc="workspace", workspace_root=home, url=server,
                service_account_dir=notebook["sa"], quiet=True)
    assert got == digest


def test_client_reports_refusals_with_the_apis_reason(server: str, notebook: dict[str, Any]) -> None:
    home = notebook["home"]
    with pytest.raises(BuildError) as e:
        build(home / "proj", f"{REG}/someone-else/app:v1", pvc="workspace", workspace_root=home, url=server,
              service_account_dir=notebook["sa"], quiet=True)
    assert e.value.status == 403 and "outside the repositories allowed" in str(e.value)


def test_sse_events_arrive_while_the_build_is_still_pending(server: str, notebook: dict[str, Any]) -> None:
    ns = notebook["namespace"]
    headers = {"Authorization": f"Bearer {(notebook['sa'] / 'token').read_text()}"}
    base = f"{server}/api/v1/namespaces/{ns}/builds"
    body = {"context": {"pvc": "workspace", "path": "proj"}, "destination": f"{REG}/{ns}/app:v1"}
    name = httpx.post(base, json=body, headers=headers).json()["metadata"]["name"]
    seen: list[str] = []
    with httpx.stream("GET", f"{base}/{name}/logs", headers=headers, timeout=30) as r:
        for line in r.iter_lines():
            seen.append(line)
            if line == ": heartbeat":
                break
    assert any('"phase":"waiting"' in s for s in seen)
    assert httpx.delete(f"{base}/{name}", headers=headers).status_code == 200
