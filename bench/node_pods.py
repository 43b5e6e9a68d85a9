"""Pod start latency on the local node: create -> Running for N pods of our base image (created one by one).

    .venv/bin/python bench/node_pods.py [--pods 20] [--kubeconfig .local/kubeconfig]

Needs the node (`make node`). Each pod is created, then timed until its phase is Running (watch events, not
polling); pods run one after another so the figure is the latency of one start, not of a burst. The image is
already on the node (the first pod pulls it if not; that pod is reported apart). Prints figures, then one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client as kc
from kubernetes import config as kconfig
from kubernetes import watch

ROOT = Path(__file__).resolve().parent.parent


def lib(*names: str) -> list[str]:
    script = (f'. "{ROOT}/hack/lib.sh"; . "{ROOT}/hack/versions.env"; printf "%s\\n" '
              + " ".join(f'"${n}"' for n in names))
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()


def start_one(core: Any, namespace: str, image: str, name: str) -> float:
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "notebook-platform",
                                                  "app.kubernetes.io/component": "bench"}},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "600"]}]}}
    w = watch.Watch()
    t0 = time.monotonic()
    core.create_namespaced_pod(namespace, body)
    for event in w.stream(core.list_namespaced_pod, namespace, field_selector=f"metadata.name={name}",
                          timeout_seconds=120):
        if event["object"].status.phase == "Running":
            w.stop()
            return time.monotonic() - t0
    raise RuntimeError(f"pod {name} not Running within 120 s")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=20)
    parser.add_argument("--kubeconfig", default=str(ROOT / ".local" / "kubeconfig"))
    args = parser.parse_args()
    registry_ip, port, suite = lib("NODE_IP", "REGISTRY_PORT", "DEBIAN_SUITE")
    image = f"{registry_ip}:{port}/nbp/base:{suite}"
    api = kconfig.new_client_from_config(config_file=args.kubeconfig)
    core = kc.CoreV1Api(api)
    namespace = f"bench-pods-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": namespace, "labels": {"notebook-platform.io/test": "true"}}})
    try:
        first = start_one(core, namespace, image, "warm")
        times = [start_one(core, namespace, image, f"p{i}") for i in range(args.pods)]
    finally:
        core.delete_namespace(namespace, propagation_policy="Background")
    p50 = statistics.median(times)
    p90 = statistics.quantiles(times, n=10)[-1] if len(times) >= 2 else times[0]
    print(f"first pod (may pull the image): {first:.2f} s")
    print(f"pod start create->Running over {len(times)} pods: p50 {p50:.2f} s, p90 {p90:.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s")
    print(json.dumps({"bench": "node_pods", "pods": len(times), "first_s": round(first, 3),
                      "p50_s": round(p50, 3), "p90_s": round(p90, 3), "max_s": round(max(times), 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
