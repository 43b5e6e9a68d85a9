"""`hack/cluster.sh` lifecycle on a throwaway control plane of its own (temp state dir, other ports).

The shared cluster that other tests use is never stopped here: these tests start a second one so
that `down` can be checked for leaving nothing behind.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import BIN, cluster_script, throwaway_env


def _pids(state: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in (state / "run").glob("*.pid")}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def second_cluster(cluster: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    """A second control plane; depends on `cluster` only so the binaries are known to be built."""
    state = tmp_path_factory.mktemp("cluster")
    env = throwaway_env(state)
    up = cluster_script(env, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    yield state, env
    cluster_script(env, "down")


def test_second_up_on_a_running_cluster_is_a_no_op(second_cluster: tuple[Path, dict]) -> None:
    state, env = second_cluster
    before = _pids(state)
    again = cluster_script(env, "up")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert _pids(state) == before, "no process was restarted"
    assert all(_alive(p) for p in before.values())


def test_kubeconfig_written_for_the_second_cluster_reaches_its_apiserver(second_cluster: tuple[Path, dict]) -> None:
    state, env = second_cluster
    out = subprocess.run([str(BIN / "kubectl"), "--kubeconfig", str(state / "kubeconfig"), "get", "--raw", "/readyz"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
    assert env["NBP_APISERVER_PORT"] in (state / "kubeconfig").read_text()


def test_down_leaves_no_process_of_ours_running(second_cluster: tuple[Path, dict]) -> None:
    state, env = second_cluster
    pids = _pids(state)
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
    down = cluster_script(env, "down")
    assert down.returncode == 0, down.stderr
    assert not any(_alive(p) for p in pids.values()), "every recorded component has exited"
    assert _pids(state) == {}
    status = cluster_script(env, "status")
    assert status.returncode != 0 and "not running" in status.stdout


def test_missing_binary_is_a_clear_message(tmp_path: Path) -> None:
    env = throwaway_env(tmp_path / "state", NBP_BIN=str(tmp_path / "empty-bin"))
    out = cluster_script(env, "up", timeout=30)
    assert out.returncode != 0
    assert "missing binaries" in out.stderr and "kube-apiserver" in out.stderr
    assert "hack/build.sh" in out.stderr
    assert "Traceback" not in out.stderr


def test_port_already_in_use_is_a_clear_message_naming_the_port(cluster: object, tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        state = tmp_path / "state"
        out = cluster_script(throwaway_env(state, NBP_ETCD_CLIENT_PORT=str(port)), "up", timeout=60)
    assert out.returncode != 0
    assert f"port {port} needed by etcd is already in use" in out.stderr
    assert not any(_alive(p) for p in _pids(state).values()), "nothing is left running after the refusal"


def test_stale_pid_file_is_removed_and_the_start_goes_on(cluster: object, tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "run").mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (state / "run" / "etcd.pid").write_text(str(dead.pid))
    env = throwaway_env(state)
    try:
        out = cluster_script(env, "up")
        assert out.returncode == 0, out.stderr
        assert "removing stale PID file for etcd" in out.stdout
        assert _pids(state)["etcd"] != dead.pid
    finally:
        cluster_script(env, "down")
