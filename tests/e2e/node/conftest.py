"""Fixtures for the node's end-to-end tests: the real kubelet, containerd, registry, DNS and RWX storage.

`node` runs `make node` once per session (under the same lock as the `cluster` fixture) and says where the
registry is. Addresses come from hack/lib.sh, the one place that defines them.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import Cluster, run_locked, unique_name, wait_for

ROOT = Path(__file__).resolve().parents[3]
LOCAL = ROOT / ".local"
MANAGED = {"app.kubernetes.io/managed-by": "notebook-platform", "app.kubernetes.io/component": "e2e-node"}


def lib_settings(*names: str) -> list[str]:
    """Values of hack/lib.sh variables, as the scripts see them (environment overrides included)."""
    script = f'. "{ROOT}/hack/lib.sh"; printf "%s\\n" ' + " ".join(f'"${n}"' for n in names)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


@dataclass(frozen=True)
class Node:
    name: str
    ip: str
    registry: str  # host:port, plain HTTP

    @property
    def base_image(self) -> str:
        suite = subprocess.run(["bash", "-c", f'. "{ROOT}/hack/versions.env"; echo "$DEBIAN_SUITE"'],
                               capture_output=True, text=True, check=True).stdout.strip()
        return f"{self.registry}/nbp/base:{suite}"

    @property
    def kaniko_image(self) -> str:
        version = subprocess.run(["bash", "-c", f'. "{ROOT}/hack/versions.env"; echo "$KANIKO_VERSION"'],
                                 capture_output=True, text=True, check=True).stdout.strip()
        return f"{self.registry}/nbp/kaniko-executor:{version}"


@pytest.fixture(scope="session")
def node(cluster: Cluster) -> Node:
    """Starts (or reuses) the node: `make node` is idempotent and quick when everything runs."""
    lock = LOCAL / "cluster-start.lock"
    run_locked(lock, ["make", "-s", "-C", str(ROOT), "node"], timeout=3000)
    name, ip, port = lib_settings("NODE_NAME", "NODE_IP", "REGISTRY_PORT")
    return Node(name=name, ip=ip, registry=f"{ip}:{port}")


@pytest.fixture
def core(kube_api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(kube_api)


def pod_manifest(name: str, image: str, command: list[str], mounts: dict[str, str] | None = None,
                 **spec: Any) -> dict[str, Any]:
    """A one-container pod that does not restart, labelled as ours; `mounts` maps volume name to path."""
    container: dict[str, Any] = {"name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                                 "command": command}
    if mounts:
        container["volumeMounts"] = [{"name": v, "mountPath": path} for v, path in mounts.items()]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {**MANAGED, "e2e-pod": name}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
            **spec,
        },
    }


def pod_phase(core: Any, namespace: str, name: str) -> str:
    return str(core.read_namespaced_pod(name, namespace).status.phase)


def wait_phase(core: Any, namespace: str, name: str, phases: set[str], timeout: float = 120) -> str:
    """Waits until the pod is in one of `phases`; a pod that fails instead shows its events."""
    def done() -> str | None:
        phase = pod_phase(core, namespace, name)
        if phase in phases:
            return phase
        if phase == "Failed" and "Failed" not in phases:
            raise AssertionError(f"pod {namespace}/{name} failed: {describe(core, namespace, name)}")
        return None

    try:
        return str(wait_for(done, timeout=timeout, interval=0.5, what=f"pod {namespace}/{name} in {phases}"))
    except AssertionError as e:
        raise AssertionError(f"{e}\n{describe(core, namespace, name)}") from None


def describe(core: Any, namespace: str, name: str) -> str:
    """Status and events of a pod, for failure messages."""
    pod = core.read_namespaced_pod(name, namespace)
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    lines = [f"phase={pod.status.phase}"]
    for cs in pod.status.container_statuses or []:
        lines.append(f"container {cs.name}: {cs.state}")
    lines += [f"event {e.reason}: {e.message}" for e in events]
    with contextlib.suppress(Exception):  # logs are best effort in a failure message
        lines.append("logs: " + core.read_namespaced_pod_log(name, namespace)[-2000:])
    return "\n".join(lines)


def logs(core: Any, namespace: str, name: str, container: str | None = None) -> str:
    return str(core.read_namespaced_pod_log(name, namespace, container=container))


@pytest.fixture
def run_pod(core: Any, namespace: str) -> Iterator[Callable[..., str]]:
    """Creates a pod in the test's namespace and waits for it to finish (or reach `until`); returns its name."""
    def run(image: str, command: list[str], until: set[str] | None = None, timeout: float = 120,
            prefix: str = "p", mounts: dict[str, str] | None = None, **spec: Any) -> str:
        name = unique_name(prefix)
        core.create_namespaced_pod(namespace, pod_manifest(name, image, command, mounts, **spec))
        wait_phase(core, namespace, name, until or {"Succeeded"}, timeout=timeout)
        return name

    yield run


@pytest.fixture
def rwx_claim(core: Any, namespace: str) -> Callable[[], str]:
    """Creates a ReadWriteMany claim of the node's default (shared-path) class and waits until it is bound."""
    def make() -> str:
        name = unique_name("rwx")
        core.create_namespaced_persistent_volume_claim(namespace, {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "labels": MANAGED},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "64Mi"}}},
        })
        wait_for(lambda: core.read_namespaced_persistent_volume_claim(name, namespace).status.phase == "Bound",
                 timeout=120, interval=0.5, what=f"claim {namespace}/{name} bound")
        return name

    return make


def claim_volume(claim: str) -> dict[str, Any]:
    return {"name": "data", "persistentVolumeClaim": {"claimName": claim}}


def elapsed(t0: float) -> float:
    return round(time.monotonic() - t0, 2)
