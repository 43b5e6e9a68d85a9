"""The installed webhook keeps admitting while one of its pods goes away.

A burst of pod creations (server-side dry runs: the full admission chain, nothing stored) in a namespace
labelled for PodDefaults, while one of the two webhook replicas is deleted. Every pod must be admitted, and
mutated (the PodDefault's env is in each answer), so none was let through unchanged either. The replica being
deleted drains first (webhook/drain.py): without that, about one run in ten lost one request with EOF when the
server closed a keep-alive connection the apiserver was just writing on.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from platform_e2e import NAMESPACE, RELEASE, Platform
from support import wait_for

WEBHOOK_SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=poddefault-webhook"


def ready_webhook_pods(core: Any) -> list[str]:
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=WEBHOOK_SELECTOR).items
    return sorted(p.metadata.name for p in pods if p.metadata.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in p.status.conditions or []))


def test_deleting_a_webhook_pod_during_a_burst_of_pod_creations_rejects_none(
    platform: Platform, kube_api: Any, namespace_factory: Any
) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(kube_api)
    ns = namespace_factory("ha", labels={"notebook-platform.io/poddefaults": "enabled"})
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        "kubeflow.org", "v1alpha1", ns, "poddefaults",
        {"apiVersion": "kubeflow.org/v1alpha1", "kind": "PodDefault", "metadata": {"name": "everyone"},
         "spec": {"desc": "every pod", "selector": {}, "env": [{"name": "HA", "value": "yes"}]}})
    before = wait_for(lambda: len(ready_webhook_pods(core)) >= 2 and ready_webhook_pods(core), timeout=120,
                      what="two ready webhook pods")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "burst-"},
           "spec": {"containers": [{"name": "c", "image": f"{platform.registry}/nbp/base:bookworm"}]}}

    def mutated() -> bool:  # the cache has seen the PodDefault
        out = core.create_namespaced_pod(ns, pod, dry_run="All")
        return any(e.name == "HA" for e in out.spec.containers[0].env or [])

    wait_for(mutated, timeout=30, what="the webhook applying the new PodDefault")

    stop = threading.Event()
    outcomes: list[tuple[float, str]] = []
    lock = threading.Lock()

    def create_until_stopped() -> None:
        while not stop.is_set():
            t = time.monotonic()
            try:
                out = core.create_namespaced_pod(ns, pod, dry_run="All")
                ok = any(e.name == "HA" and e.value == "yes" for e in out.spec.containers[0].env or [])
                result = "ok" if ok else "admitted without the PodDefault"
            except ApiException as e:
                result = f"{e.status}: {e.body}"
            with lock:
                outcomes.append((t, result))

    victim = before[0]
    with ThreadPoolExecutor(max_workers=8) as pool:
        workers = [pool.submit(create_until_stopped) for _ in range(8)]
        time.sleep(3)
        deleted_at = time.monotonic()
        core.delete_namespaced_pod(victim, NAMESPACE)
        # Until the replacement is Ready, the victim has drained, stopped and is gone, and a while after: the
        # burst spans the whole change-over, the moment the old server closes its connections included.
        wait_for(lambda: len(ready_webhook_pods(core)) >= 2 and victim not in ready_webhook_pods(core),
                 timeout=180, interval=0.5, what="a replacement webhook pod Ready")
        replaced_at = time.monotonic()
        wait_for(lambda: victim not in [p.metadata.name for p in core.list_namespaced_pod(
            NAMESPACE, label_selector=WEBHOOK_SELECTOR).items], timeout=120, interval=0.5,
            what=f"{victim} gone")
        gone_at = time.monotonic()
        time.sleep(3)
        stop.set()
        for w in workers:
            w.result()

    failures = [(round(t - deleted_at, 2), r) for t, r in outcomes if r != "ok"]
    during = sum(1 for t, _ in outcomes if deleted_at <= t <= replaced_at)
    print(f"\n{len(outcomes)} dry-run creations, {during} while {victim} went away and its replacement started "
          f"({replaced_at - deleted_at:.1f} s), the victim gone after {gone_at - deleted_at:.1f} s; "
          f"failures: {len(failures)}")
    assert during > 0 and gone_at > deleted_at
    assert not failures, [(t, r[-600:]) for t, r in failures[:5]]
