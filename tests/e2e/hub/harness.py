"""The hub's end-to-end harness: a real `jupyterhub` process (+ configurable-http-proxy) on loopback, and the
few things tests do with it (log in, get an API token, read the progress stream, prepare a user namespace).

Importable as `harness` from the tests in this folder (pytest puts the folder on sys.path).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub_config import constants as k
from hub_config.namespaces import namespace_name

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "e2e-" + secrets.token_hex(8)
NAMESPACE_PREFIX = "nbp-e2e-"
ARTIFACTS = ROOT / "test-artifacts"


def find_chp() -> str | None:
    for candidate in (os.environ.get("NBP_CHP"), shutil.which("configurable-http-proxy"),
                      str(ROOT / "node_modules" / ".bin" / "configurable-http-proxy")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def run_hub(cluster: Any, work: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Starts `jupyterhub -f hub_config/jupyterhub_config.py` on free loopback ports; yields its URL."""
    chp = find_chp()
    if not chp:
        pytest.skip("configurable-http-proxy not installed (npm install configurable-http-proxy)")
    port, hub_port, api_port = free_port(), free_port(), free_port()
    env = {
        **{key: v for key, v in os.environ.items() if not key.startswith("HUB_")},
        "PATH": f"{Path(chp).parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "KUBECONFIG": str(cluster.kubeconfig),
        "HUB_SHARED_PASSWORD": PASSWORD,
        "HUB_BIND_URL": f"http://127.0.0.1:{port}",
        "HUB_HUB_BIND_URL": f"http://127.0.0.1:{hub_port}",
        "HUB_PROXY_API_URL": f"http://127.0.0.1:{api_port}",
        "HUB_DB_URL": f"sqlite:///{work}/jupyterhub.sqlite",
        "HUB_NAMESPACE_PREFIX": NAMESPACE_PREFIX,
        "HUB_NAMESPACE_LABELS": json.dumps({k.TEST_LABEL: "true"}),
        "HUB_BUILDER__URL": "http://builder:8080",
        "HUB_PREFLIGHT_WEBHOOK_WAIT": "0",
        "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(16),
        **(extra_env or {}),
    }
    config_file = str(ROOT / "hub_config" / "jupyterhub_config.py")
    log_path = work / "hub.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", config_file], cwd=work, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"hub exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
                try:
                    if httpx.get(f"{url}/hub/api", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"hub did not answer in 60 s:\n{log_path.read_text()[-4000:]}")
                time.sleep(0.5)
            yield url
        finally:
            # JupyterHub starts its managed services (the idle culler) in sessions of their own, out of reach of
            # the group signal below: find them as the hub's children first and stop them too.
            services = children(proc.pid)
            os.killpg(proc.pid, signal.SIGTERM)  # the hub and the proxy it started, nothing else
            for pid in services:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


def hub_log(url_or_work: Path) -> str:
    """The tail of a hub's log, for assertion messages."""
    path = url_or_work / "hub.log"
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@contextmanager
def login(url: str, username: str, password: str) -> Iterator[httpx.Client]:
    """A browser-like session after the login form was posted (cookies kept)."""
    with httpx.Client(base_url=url, follow_redirects=True, timeout=60) as c:
        c.get("/hub/login")
        c.post("/hub/login", data={"username": username, "password": password, "_xsrf": c.cookies.get("_xsrf")})
        yield c


def user_token(url: str, username: str, password: str = PASSWORD) -> str:
    """An API token the user makes for themselves after logging in (as a script author would)."""
    with login(url, username, password) as c:
        r = c.post(f"/hub/api/users/{username}/tokens", json={"note": "e2e", "expires_in": 3600},
                   headers={"X-XSRFToken": c.cookies.get("_xsrf") or ""})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


@contextmanager
def api_client(url: str, username: str) -> Iterator[httpx.Client]:
    """A REST client for the hub API, authenticated with a token the user made for themselves."""
    token = user_token(url, username)
    with httpx.Client(base_url=f"{url}/hub/api", headers={"Authorization": f"token {token}"}, timeout=60) as api:
        yield api


def progress_until(api: httpx.Client, username: str, done: Callable[[dict[str, Any]], bool],
                   timeout: float = 90) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Reads the server's progress stream (the events the spawn-pending page shows) until `done(event)`;
    returns that event (None on timeout or end of stream) and everything seen."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        with api.stream("GET", f"/users/{username}/server/progress",
                        timeout=httpx.Timeout(10, read=timeout)) as r:
            assert r.status_code == 200, r.read().decode()
            for line in r.iter_lines():
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    seen.append(event)
                    if done(event):
                        return event, seen
                if time.monotonic() > deadline:
                    break
    except httpx.ReadTimeout:
        pass
    return None, seen


def user_namespace(username: str) -> str:
    return namespace_name(username, NAMESPACE_PREFIX)


def prepare_user_namespace(kube_api: Any, username: str, labels: dict[str, str]) -> str:
    """Creates the user's namespace before the hub first sees the user, so PodDefaults can be put there
    (as an operator or team lead would with kubectl). The hub's provisioning adopts it on the first start."""
    from kubernetes import client

    ns = user_namespace(username)
    client.CoreV1Api(kube_api).create_namespace(
        {"metadata": {"name": ns, "labels": {k.TEST_LABEL: "true", **labels}}})
    return ns


def delete_namespace(kube_api: Any, ns: str) -> None:
    from kubernetes import client

    try:
        client.CoreV1Api(kube_api).delete_namespace(ns, propagation_policy="Background")
    except client.exceptions.ApiException as e:
        if e.status != 404:
            raise


def notebook_pods(kube_api: Any, ns: str) -> list[Any]:
    from kubernetes import client

    return list(client.CoreV1Api(kube_api).list_namespaced_pod(
        ns, label_selector="component=singleuser-server").items)


def scheduling_failures(kube_api: Any, ns: str, pod_name: str) -> list[str]:
    """The scheduler's FailedScheduling messages for one pod, as the apiserver stores them."""
    from kubernetes import client

    events = client.CoreV1Api(kube_api).list_namespaced_event(
        ns, field_selector=f"involvedObject.name={pod_name},reason=FailedScheduling").items
    return [e.message for e in events if e.message]


def children(pid: int) -> list[int]:
    """PIDs whose parent is `pid` (read from /proc; no extra dependency for one lookup)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found
