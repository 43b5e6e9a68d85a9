"""What the platform e2e tests share: where things are, the Platform handle, and a Jupyter kernel driver.

Importable as `platform_e2e` from the tests in this folder (pytest puts the folder on sys.path); other e2e
folders put this folder on sys.path in their conftest and import the `platform` fixture from here.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import Cluster, run_locked

ROOT = Path(__file__).resolve().parents[3]
LOCAL = ROOT / ".local"
ARTIFACTS = ROOT / "test-artifacts"
RELEASE = "notebook-platform"
NAMESPACE = "notebook-platform"


def lib_settings(*names: str) -> list[str]:
    """Values of hack/lib.sh variables, as the scripts see them (environment overrides included)."""
    script = f'. "{ROOT}/hack/lib.sh"; printf "%s\\n" ' + " ".join(f'"${n}"' for n in names)
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()


@dataclass(frozen=True)
class Platform:
    cluster: Cluster
    url: str            # the hub through the proxy, e.g. http://10.250.0.1:30080 (no trailing slash)
    password: str       # the shared password (any user name)
    registry: str       # host:port of the local registry, plain HTTP
    node_ip: str
    up_log: str         # what `make up` printed

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, input=input, check=check)

    def crane_digest(self, ref: str) -> str:
        out = subprocess.run([str(LOCAL / "bin" / "crane"), "digest", "--insecure", ref],
                             capture_output=True, text=True, check=True, timeout=60)
        return out.stdout.strip()


# Set to 1 to use the installation as it runs instead of running `make up` first: for a cluster other people
# use, where `make up` would upgrade the release to this checkout's chart and images.
REUSE_ENV = "NBP_E2E_REUSE_PLATFORM"


def make_up() -> str:
    """`make up` under the cluster-start lock; returns its output (failing the session with it if it fails)."""
    lock = LOCAL / "cluster-start.lock"
    LOCAL.mkdir(exist_ok=True)
    run = run_locked(lock, ["make", "-s", "-C", str(ROOT), "up"], timeout=3600, check=False, capture=True)
    if run.returncode != 0:
        pytest.fail(f"make up failed ({run.returncode}):\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}")
    return run.stdout


@functools.cache
def platform_handle(cluster: Cluster) -> Platform:
    """`make up` (once per process), then what a user needs to reach the platform: the hub's URL (the proxy's
    NodePort on the node address) and the shared password (from the hub's Secret)."""
    if os.environ.get(REUSE_ENV) == "1":
        up_log = ""
        cluster.kubectl("-n", NAMESPACE, "rollout", "status", f"deployment/{RELEASE}-builder", "--timeout=60s")
    else:
        up_log = make_up()
    node_ip, port = lib_settings("NODE_IP", "REGISTRY_PORT")
    svc = cluster.kubectl("-n", NAMESPACE, "get", "service", f"{RELEASE}-proxy-public",
                          "-o", "jsonpath={.spec.type} {.spec.ports[0].nodePort}").stdout.split()
    assert svc[0] == "NodePort", svc
    secret = cluster.kubectl("-n", NAMESPACE, "get", "secret", f"{RELEASE}-hub",
                             "-o", "jsonpath={.data.shared-password}").stdout
    return Platform(cluster=cluster, url=f"http://{node_ip}:{svc[1]}", password=base64.b64decode(secret).decode(),
                    registry=f"{node_ip}:{port}", node_ip=node_ip, up_log=up_log)


@pytest.fixture(scope="session")
def platform(cluster: Cluster) -> Platform:
    """The platform as `make up` leaves it, with what a user needs to reach it."""
    return platform_handle(cluster)


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


# -- a Jupyter kernel, driven through the proxy with the user's hub token -----------------------------------

@dataclass
class CellResult:
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    # Rich outputs in order, display updates included (the builder's phase line is one updating display).
    outputs: list[dict[str, Any]] = field(default_factory=list)


class Kernel:
    """One kernel of the user's server, reached as JupyterLab reaches it: the server's REST API and the
    kernel's websocket channel, both through configurable-http-proxy, authenticated with a hub API token."""

    def __init__(self, hub_url: str, user: str, token: str) -> None:
        self.base = f"{hub_url}/user/{user}"
        self.user, self.token = user, token
        self.headers = {"Authorization": f"token {token}"}
        resp = httpx.post(f"{self.base}/api/kernels", headers=self.headers, json={"name": "python3"}, timeout=60)
        resp.raise_for_status()
        self.id = resp.json()["id"]
        self.session = uuid.uuid4().hex

    def run(self, code: str, timeout: float = 600, on_stream: Any = None) -> CellResult:
        """Executes `code` like a notebook cell and collects what the cell shows until the kernel is idle."""
        from websockets.sync.client import connect

        msg_id = uuid.uuid4().hex
        request = {
            "header": {"msg_id": msg_id, "username": self.user, "session": self.session,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }
        ws_url = self.base.replace("http://", "ws://", 1) + f"/api/kernels/{self.id}/channels"
        result = CellResult()
        deadline = time.monotonic() + timeout
        with connect(ws_url, additional_headers=self.headers, open_timeout=30, max_size=None) as ws:
            ws.send(json.dumps(request))
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"cell still running after {timeout} s; output so far:\n{result.stdout}")
                msg = json.loads(ws.recv(timeout=left))
                if msg.get("parent_header", {}).get("msg_id") != msg_id or msg.get("channel") != "iopub":
                    continue
                kind, content = msg["header"]["msg_type"], msg["content"]
                if kind == "stream":
                    if content["name"] == "stdout":
                        result.stdout += content["text"]
                    else:
                        result.stderr += content["text"]
                    if on_stream:
                        on_stream(content["text"])
                elif kind == "error":
                    result.error = f"{content['ename']}: {content['evalue']}"
                elif kind in ("execute_result", "display_data", "update_display_data"):
                    result.outputs.append(content["data"])
                elif kind == "status" and content["execution_state"] == "idle":
                    return result

    def close(self) -> None:
        httpx.delete(f"{self.base}/api/kernels/{self.id}", headers=self.headers, timeout=30)
