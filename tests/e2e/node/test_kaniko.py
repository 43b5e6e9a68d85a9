"""Kaniko on the node: a Job builds a Dockerfile from a folder of an RWX claim and pushes to the local registry."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from conftest import MANAGED, ROOT, Node, claim_volume, elapsed, logs
from support import wait_for


def crane_digest(ref: str) -> str:
    out = subprocess.run([str(ROOT / ".local" / "bin" / "crane"), "--insecure", "digest", ref],
                         capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip()


def test_kaniko_job_builds_from_rwx_folder_pushes_and_the_image_runs(
    node: Node, kube_api: Any, core: Any, namespace: str, run_pod: Any, rwx_claim: Any
) -> None:
    from kubernetes import client

    batch: Any = client.BatchV1Api(kube_api)
    claim = rwx_claim()
    data = {"volumes": [claim_volume(claim)], "mounts": {"data": "/data"}}
    token = namespace.rsplit("-", 1)[-1]
    # The context: a folder on the claim, written by a pod as a notebook would. A two-line Dockerfile.
    run_pod(node.base_image, ["bash", "-c",
            f"mkdir -p /data/ctx && printf 'FROM %s\\nCOPY hello.txt /hello.txt\\n' {node.base_image} "
            f"> /data/ctx/Dockerfile && echo 'built by kaniko {token}' > /data/ctx/hello.txt"],
            prefix="context", **data)

    repo = f"{node.registry}/e2e/kaniko-{token}"
    t0 = time.monotonic()
    batch.create_namespaced_job(namespace, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "build", "labels": MANAGED},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": MANAGED}, "spec": {
            "restartPolicy": "Never",
            "volumes": [claim_volume(claim)],
            "containers": [{
                "name": "kaniko", "image": node.kaniko_image,
                # The registry speaks plain HTTP: --insecure to push, --insecure-pull for FROM.
                "args": ["--context=dir:///workspace/ctx", "--dockerfile=/workspace/ctx/Dockerfile",
                         f"--destination={repo}:v1", "--digest-file=/workspace/ctx/digest",
                         "--insecure", "--insecure-pull", "--verbosity=info"],
                "volumeMounts": [{"name": "data", "mountPath": "/workspace"}],
            }]}}},
    })

    def job_done() -> bool:
        status = batch.read_namespaced_job("build", namespace).status
        if status.failed:
            pods = core.list_namespaced_pod(namespace, label_selector="job-name=build").items
            raise AssertionError("kaniko failed:\n" + "\n".join(logs(core, namespace, p.metadata.name) for p in pods))
        return bool(status.succeeded)

    wait_for(job_done, timeout=300, interval=1, what="the kaniko job")
    print(f"kaniko build (Job created -> succeeded): {elapsed(t0)} s")

    digest = logs(core, namespace, run_pod(node.base_image, ["cat", "/data/ctx/digest"], prefix="digest", **data))
    assert digest.startswith("sha256:"), digest
    assert crane_digest(f"{repo}:v1") == digest

    built = run_pod(f"{repo}@{digest}", ["cat", "/hello.txt"], prefix="built")
    assert logs(core, namespace, built).strip() == f"built by kaniko {token}"
