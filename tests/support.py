"""Helpers for tests (importable as `support`, since pytest puts tests/ on sys.path)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def wait_for(
    predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.2, what: str = ""
) -> object:
    """Polls a predicate in tests only (services use watches); returns its first truthy value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise _timed_out(timeout, what or predicate, last)


async def wait_for_async(
    predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> object:
    """`wait_for` for a predicate on state the test's own event loop updates (a watch): sleeps without
    blocking that loop."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise _timed_out(timeout, what or predicate, last)


def _timed_out(timeout: float, what: object, last: object) -> AssertionError:
    return AssertionError(f"timed out after {timeout}s waiting for {what}; last value {last!r}")


def unique_name(prefix: str) -> str:
    """A DNS-1123 name unlikely to collide across xdist workers and reruns."""
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Cluster:
    """Where the local control plane is: enough for a client, a subprocess or `kubectl`."""

    kubeconfig: Path
    bin_dir: Path

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Runs the pinned kubectl against the cluster (used where the test is about kubectl's behaviour)."""
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=input, capture_output=True, text=True, check=check, timeout=120,
        )


ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPT = ROOT / "hack" / "cluster.sh"
BIN = ROOT / ".local" / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def throwaway_env(state: Path, **extra: str) -> dict[str, str]:
    """Environment for `hack/cluster.sh` that puts a second control plane in `state` on free ports."""
    env = dict(os.environ)
    env.update({
        "NBP_LOCAL": str(state), "NBP_BIN": str(BIN),
        "NBP_APISERVER_PORT": str(free_port()), "NBP_ETCD_CLIENT_PORT": str(free_port()),
        "NBP_ETCD_PEER_PORT": str(free_port()), "NBP_CONTROLLER_MANAGER_PORT": str(free_port()),
        "NBP_SCHEDULER_PORT": str(free_port()),
    })
    env.update(extra)
    return env


def cluster_script(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(CLUSTER_SCRIPT), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@contextmanager
def throwaway_cluster(state: Path) -> Iterator[tuple[Cluster, dict[str, str]]]:
    """A second control plane that a test may stop and restart without disturbing the shared one."""
    env = throwaway_env(state)
    up = cluster_script(env, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield Cluster(state / "kubeconfig", BIN), env
    finally:
        cluster_script(env, "down")


def run_locked(lock: Path, args: list[str], timeout: float, check: bool = True,
               capture: bool = False) -> subprocess.CompletedProcess[str]:
    """Runs a command while holding an exclusive lock on `lock`, so parallel xdist workers start a shared
    thing (cluster, node, platform) once.

    The lock is taken in this process (Python file descriptors are not inherited), not with flock(1): the
    daemons a `make cluster` starts would inherit flock's descriptor and keep the lock held forever.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            return subprocess.run(args, check=check, timeout=timeout, text=True, capture_output=capture)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# Debian's Chromium, headless, with nothing fetched from outside (never a browser downloaded by a test tool).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium_context(height: int) -> Iterator[object]:
    """A Playwright browser context in Debian's Chromium with a fresh profile directory, closed afterwards."""
    import tempfile

    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), "Debian's chromium is needed at /usr/bin/chromium (apt-get install chromium)"
    with tempfile.TemporaryDirectory(prefix="nbp-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": height})
        try:
            yield context
        finally:
            context.close()


@contextmanager
def serve_on_loopback(app: object, port: int = 0) -> Iterator[str]:
    """An ASGI app served by uvicorn on 127.0.0.1 in a thread (for real streaming and real sockets), as
    `http://127.0.0.1:<port>`; stopped on exit."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def add_poddefault(kube_api: Any, ns: str, name: str, selector: dict[str, Any], desc: str = "") -> None:
    """A PodDefault in `ns` (kubernetes client, admin credentials) that injects env var NAME=1."""
    from kubernetes import client

    from hub_config import constants as k

    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        k.PODDEFAULT_GROUP, k.PODDEFAULT_VERSION, ns, k.PODDEFAULT_PLURAL,
        {"apiVersion": k.PODDEFAULT_API_VERSION, "kind": "PodDefault", "metadata": {"name": name},
         "spec": {"desc": desc or name, "selector": selector, "env": [{"name": name.upper().replace("-", "_"),
                                                                      "value": "1"}]}})
