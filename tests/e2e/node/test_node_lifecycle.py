"""`hack/node.sh up` on a running node is a no-op: same processes, nothing started, pushed or imported."""

from __future__ import annotations

import subprocess

from conftest import LOCAL, ROOT, Node
from support import run_locked

COMPONENTS = ("docker-registry", "containerd", "socat", "kubelet", "kube-proxy")


def pids() -> dict[str, str]:
    return {c: (LOCAL / "run" / f"{c}.pid").read_text().strip() for c in COMPONENTS}


def test_second_up_on_a_running_node_changes_nothing(node: Node) -> None:
    before = pids()
    out = run_locked(LOCAL / "cluster-start.lock", [str(ROOT / "hack" / "node.sh"), "up"], timeout=300,
                     capture=True).stdout
    assert pids() == before
    for word in ("started", "restarting", "pushed", "imported", "created link"):
        assert word not in out, out
    assert "ready in" in out
    status = subprocess.run([str(ROOT / "hack" / "node.sh"), "status"], capture_output=True, text=True)
    assert status.returncode == 0, status.stdout
    assert f"node {node.name} Ready" in status.stdout
