"""GPU scheduling through the real hub, on a simulated GPU node (kwok).

A fake node with `nvidia.com/gpu: 4` and the conventional `nvidia.com/gpu=present:NoSchedule` taint joins the
real control plane; kwok keeps it Ready and runs whatever is bound to it. Servers are started through the
hub's REST API with `user_options`, as a script or the form would:

- a GPU profile (the `nvidia.com/gpu` limit) plus the PodDefault that adds the toleration: the pod lands on
  the GPU node and runs;
- the same profile without it: the pod stays Pending, and the scheduler's FailedScheduling message is what
  the hub's progress stream (the spawn-pending page) shows;
- a GPU profile left to its default (the hub adds the toleration itself): lands on the GPU node.

Profiles pin this module's node with a node selector, so GPU pods of parallel test runs never meet. The
workspace claim binds to a PersistentVolume made for it (a StorageClass of this module's own), so the test
does not depend on a storage provisioner running; nothing is ever mounted on a fake node.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from harness import (
    api_client,
    delete_namespace,
    notebook_pods,
    prepare_user_namespace,
    progress_until,
    run_hub,
    scheduling_failures,
)
from kwok_nodes import Kwok, gpu_node_manifest, node_ready_for_pods, run_kwok
from support import wait_for
from webhook_it import MODULE_LABEL, Rest, poddefault

from hub_config import constants as k

GPU = "nvidia.com/gpu"
GPU_NODE_LABEL = f"{k.DOMAIN}/e2e-gpu-node"
TOLERATION = {"key": GPU, "operator": "Equal", "value": "present", "effect": "NoSchedule"}
TOLERATION_PODDEFAULT = "gpu-nodes"


def profiles(token: str) -> list[dict[str, Any]]:
    size = {"cpu_guarantee": 0.1, "cpu_limit": 1, "mem_guarantee": "256Mi", "mem_limit": "1Gi",
            "node_selector": {GPU_NODE_LABEL: token}}
    return [
        {"slug": "small", "display_name": "Small", "default": True, **size},
        # The toleration is left to a configuration (PodDefault): KubeSpawner's own override empties it.
        {"slug": "gpu", "display_name": "One GPU", "gpus": 1, **size, "kubespawner_override": {"tolerations": []}},
        # The hub's default for a GPU profile: it tolerates `<gpu_resource>:NoSchedule` itself.
        {"slug": "gpu-auto", "display_name": "One GPU (tolerates GPU nodes)", "gpus": 1, **size},
    ]


@pytest.fixture(scope="module")
def token() -> str:
    return secrets.token_hex(4)


@pytest.fixture(scope="module")
def kwok(cluster: Any, token: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kwok]:
    with run_kwok(cluster.kubeconfig, tmp_path_factory.mktemp("kwok"), token) as controller:
        yield controller


@pytest.fixture(scope="module")
def gpu_node(kube_api: Any, kwok: Kwok, token: str) -> Iterator[str]:
    """The fake GPU node, Ready for pods; deleted (before kwok stops) at the end of the module."""
    from kubernetes import client

    core = client.CoreV1Api(kube_api)
    name = f"nbp-e2e-gpu-{token}"
    core.create_node(gpu_node_manifest(name, kwok, {GPU_NODE_LABEL: token, k.TEST_LABEL: "true"}))
    try:
        wait_for(lambda: node_ready_for_pods(core.read_node(name)), timeout=90, interval=0.5,
                 what=f"fake node {name} Ready; kwok log:\n{kwok.log_tail()}")
        assert core.read_node(name).status.allocatable[GPU] == "4"
        yield name
    finally:
        core.delete_node(name)


@pytest.fixture(scope="module")
def storage_class(kube_api: Any, token: str) -> Iterator[str]:
    """A class with no provisioner: workspace claims bind to PersistentVolumes the tests make."""
    from kubernetes import client

    storage = client.StorageV1Api(kube_api)
    name = f"nbp-e2e-static-{token}"
    storage.create_storage_class({
        "metadata": {"name": name, "labels": {k.TEST_LABEL: "true"}},
        "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "Immediate",
        "reclaimPolicy": "Retain"})
    yield name
    storage.delete_storage_class(name)


@pytest.fixture(scope="module")
def gpu_hub(cluster: Any, webhook: Any, gpu_node: str, storage_class: str, token: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        "HUB_NAMESPACE_LABELS": json.dumps({k.TEST_LABEL: "true", MODULE_LABEL: webhook.token}),
        "HUB_PROFILES": json.dumps(profiles(token)),
        "HUB_STORAGE__STORAGE_CLASS": storage_class,
        "HUB_PREFLIGHT_WEBHOOK_WAIT": "20",
    }
    with run_hub(cluster, tmp_path_factory.mktemp("gpu-hub"), env) as url:
        yield url


@pytest.fixture
def gpu_user(kube_api: Any, rest: Rest, webhook: Any, storage_class: str) -> Iterator[tuple[str, str]]:
    """A user whose namespace has the toleration PodDefault and a volume waiting for the workspace claim."""
    from kubernetes import client

    user = f"e2e-{secrets.token_hex(4)}"
    ns = prepare_user_namespace(kube_api, user, webhook.labels)
    pv = f"nbp-e2e-ws-{secrets.token_hex(4)}"
    core = client.CoreV1Api(kube_api)
    try:
        rest.ok("POST", rest.poddefaults(ns), poddefault(TOLERATION_PODDEFAULT, {
            "desc": "Run on the GPU nodes (tolerates their taint)",
            "selector": {"matchLabels": {f"{k.DOMAIN}/{TOLERATION_PODDEFAULT}": "true"}},
            "tolerations": [TOLERATION]}))
        core.create_persistent_volume({
            "metadata": {"name": pv, "labels": {k.TEST_LABEL: "true"}},
            "spec": {"storageClassName": storage_class, "capacity": {"storage": "10Gi"},
                     "accessModes": ["ReadWriteMany"], "persistentVolumeReclaimPolicy": "Retain",
                     "hostPath": {"path": f"/nonexistent/nbp-e2e/{pv}"},  # a fake node never mounts it
                     "claimRef": {"namespace": ns, "name": "workspace"}}})
        yield user, ns
    finally:
        delete_namespace(kube_api, ns)
        try:
            core.delete_persistent_volume(pv)
        except client.exceptions.ApiException as e:
            if e.status != 404:
                raise


def start(api: Any, user: str, options: dict[str, Any]) -> None:
    r = api.post(f"/users/{user}/server", json=options)
    assert r.status_code in (201, 202), r.text


def stop(api: Any, kube_api: Any, user: str, ns: str) -> None:
    """Stops the server through the hub and waits until its pod is gone (kwok finishes the deletion)."""
    r = api.delete(f"/users/{user}/server")
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: not notebook_pods(kube_api, ns), timeout=90, interval=0.5, what=f"notebook pod in {ns} gone")


def the_pod(kube_api: Any, ns: str) -> Any:
    pods = wait_for(lambda: notebook_pods(kube_api, ns), timeout=60, what=f"notebook pod in {ns}")
    (pod,) = pods  # type: ignore[misc]
    return pod


def running_on(kube_api: Any, ns: str, node: str) -> Any:
    def placed() -> Any:
        pods = notebook_pods(kube_api, ns)
        return pods[0] if pods and pods[0].spec.node_name == node and pods[0].status.phase == "Running" else None

    return wait_for(placed, timeout=90, interval=0.5, what=f"notebook pod Running on {node}")


def gpu_limit(pod: Any) -> str:
    main = next(c for c in pod.spec.containers if c.name == "notebook")
    return str(main.resources.limits.get(GPU))


def test_gpu_profile_with_toleration_configuration_runs_on_the_gpu_node(
    gpu_hub: str, gpu_node: str, gpu_user: tuple[str, str], kube_api: Any, kwok: Kwok,
) -> None:
    user, ns = gpu_user
    with api_client(gpu_hub, user) as api:
        start(api, user, {"profile": "gpu", "configurations": [TOLERATION_PODDEFAULT]})
        try:
            pod = running_on(kube_api, ns, gpu_node)
            assert gpu_limit(pod) == "1"
            assert pod.metadata.labels[f"{k.DOMAIN}/{TOLERATION_PODDEFAULT}"] == "true"
            assert k.PODDEFAULT_APPLIED_PREFIX + TOLERATION_PODDEFAULT in pod.metadata.annotations
            tolerations = [t.to_dict() for t in pod.spec.tolerations or []]
            assert any({key: t[key] for key in TOLERATION} == TOLERATION for t in tolerations), tolerations
            assert pod.status.pod_ip.startswith("127.77.0."), "kwok's loopback pod range"
        finally:
            stop(api, kube_api, user, ns)


def test_gpu_profile_without_toleration_stays_pending_and_the_hub_shows_the_scheduler_reason(
    gpu_hub: str, gpu_node: str, gpu_user: tuple[str, str], kube_api: Any,
) -> None:
    user, ns = gpu_user
    with api_client(gpu_hub, user) as api:
        start(api, user, {"profile": "gpu", "configurations": []})
        try:
            shown, seen = progress_until(api, user, lambda e: "untolerated taint" in e.get("message", ""))
            assert shown is not None, f"no scheduling failure in the progress stream: {seen}"
            pod = the_pod(kube_api, ns)
            assert pod.spec.node_name is None and pod.status.phase == "Pending"
            assert gpu_limit(pod) == "1" and not [t for t in pod.spec.tolerations or [] if t.key == GPU]
            scheduled = next(c for c in pod.status.conditions or [] if c.type == "PodScheduled")
            assert (scheduled.status, scheduled.reason) == ("False", "Unschedulable")
            # The user reads the scheduler's own words (the FailedScheduling event as stored), explained.
            reasons = scheduling_failures(kube_api, ns, pod.metadata.name)
            assert any(r in shown["message"] for r in reasons), (shown, reasons)
            # Other nodes may come and go in a shared cluster; the GPU node is always among the tainted ones.
            assert "had untolerated taint" in shown["message"], shown
            assert shown["message"].startswith("Waiting for a node this server may use"), shown
            assert "free GPU" not in shown["message"]  # the GPU node has four free; the taint is the reason
            print(f"\nprogress message: {shown['message']}")
        finally:
            stop(api, kube_api, user, ns)


def test_gpu_profile_by_default_tolerates_the_gpu_taint(
    gpu_hub: str, gpu_node: str, gpu_user: tuple[str, str], kube_api: Any,
) -> None:
    user, ns = gpu_user
    with api_client(gpu_hub, user) as api:
        start(api, user, {"profile": "gpu-auto", "configurations": []})
        try:
            pod = running_on(kube_api, ns, gpu_node)
            assert gpu_limit(pod) == "1"
        finally:
            stop(api, kube_api, user, ns)

