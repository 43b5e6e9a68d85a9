"""Simulated nodes for scheduling tests: the `kwok` controller (built by `hack/build.sh kwok`) against the real
apiserver, and fake Node objects it keeps Ready.

Each kwok process manages only the nodes annotated `kwok.x-k8s.io/node=fake` *and* carrying its own run
token, so parallel test modules never fight over each other's nodes. Its stages are the least that makes
scheduling observable: a node becomes Ready, a pod bound to it becomes Running (pod IPs from a loopback
range, so anything that tries to reach the "server" stays on this machine), a deleted pod goes away.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from harness import ROOT, free_port
from support import run_locked

KWOK_BIN = ROOT / ".local" / "bin" / "kwok"
FAKE_ANNOTATION = "kwok.x-k8s.io/node"
RUN_ANNOTATION = "notebook-platform.io/kwok-run"
# kwok hands out pod IPs from here: loopback, never a real network.
POD_CIDR = "127.77.0.0/24"

STAGES = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: nbp-node-ready
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ["True"]
  next:
    statusTemplate: |
      conditions:
      - type: Ready
        status: "True"
        reason: KwokReady
        message: simulated by kwok for notebook-platform tests
        lastHeartbeatTime: {{ Now | Quote }}
        lastTransitionTime: {{ Now | Quote }}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: nbp-pod-running
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - key: .metadata.deletionTimestamp
      operator: DoesNotExist
    - key: .status.phase
      operator: In
      values: [Pending]
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: ContainersReady, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: Ready, status: "True", lastTransitionTime: {{ $now | Quote }}}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: true
        started: true
        restartCount: 0
        state: {running: {startedAt: {{ $now | Quote }}}}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIP | Quote }}
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: nbp-pod-delete
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - key: .metadata.deletionTimestamp
      operator: Exists
  next:
    delete: true
"""


@dataclass(frozen=True)
class Kwok:
    token: str
    pid: int
    log: Path

    @property
    def annotations(self) -> dict[str, str]:
        """What a Node needs to be managed by this kwok process."""
        return {FAKE_ANNOTATION: "fake", RUN_ANNOTATION: self.token}

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def ensure_kwok_binary() -> Path:
    """`hack/build.sh kwok`: instant when the stamp matches, a copy from the binary cache on a fresh clone,
    a Go build (minutes) only when neither has it. A lock keeps parallel workers from building twice."""
    lock = ROOT / ".local" / "build-kwok.lock"
    lock.parent.mkdir(exist_ok=True)
    out = run_locked(lock, [str(ROOT / "hack" / "build.sh"), "kwok"], timeout=1800, check=False, capture=True)
    assert out.returncode == 0, f"hack/build.sh kwok failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    assert KWOK_BIN.is_file()
    return KWOK_BIN


@contextlib.contextmanager
def run_kwok(kubeconfig: Path, work: Path, token: str) -> Iterator[Kwok]:
    """Starts the kwok controller for nodes with this run's annotations; stops it (only it) afterwards."""
    binary = ensure_kwok_binary()
    stages = work / "kwok-stages.yaml"
    stages.write_text(STAGES)
    port = free_port()
    log = work / "kwok.log"
    args = [
        str(binary), f"--kubeconfig={kubeconfig}", f"--config={stages}",
        f"--manage-nodes-with-annotation-selector={FAKE_ANNOTATION}=fake,{RUN_ANNOTATION}={token}",
        f"--cidr={POD_CIDR}", "--node-ip=127.0.0.1", f"--server-address=127.0.0.1:{port}",
        "--node-lease-duration-seconds=40",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=work)
    kwok = Kwok(token, proc.pid, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"kwok exited with {proc.returncode}:\n{kwok.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"kwok not healthy within 60 s:\n{kwok.log_tail()}")
            time.sleep(0.3)
        yield kwok
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def gpu_node_manifest(name: str, kwok: Kwok, labels: dict[str, str], gpus: int = 4) -> dict[str, Any]:
    """A node with `gpus` NVIDIA GPUs, tainted the way GPU node pools conventionally are."""
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {**kwok.annotations, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "type": "kwok", **labels},
        },
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
        "status": {"capacity": resources, "allocatable": resources},
    }


def node_ready_for_pods(node: Any) -> bool:
    """Ready, and the node lifecycle controller has lifted its not-ready taint."""
    ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
    startup_taints = [t for t in node.spec.taints or [] if t.key.startswith("node.kubernetes.io/")]
    return ready and not startup_taints
