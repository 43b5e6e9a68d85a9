"""A second release of the chart through its life: install, upgrade, rollback, uninstall.

The release `make up` installed keeps running untouched: this test installs its own release (unique name and
namespace) from the same chart, local values and image tags, with the proxy Service as ClusterIP (the first
release holds NodePort 30080) and a webhook `namespaceSelector` that matches only this test's namespace label,
so neither release's webhook touches the other's namespaces. Pod creations (server-side dry runs: the full
admission chain, nothing stored) run throughout in that namespace:

1. install: every Deployment Ready; each dry-run pod gets the PodDefault's env;
2. `helm upgrade --wait` with new requests/limits: the Deployments roll to them, no admission fails;
3. `helm rollback` to revision 1: the resources are back, no admission fails;
4. `helm uninstall`: the release's objects are gone, and what docs/install.md promises stays (the CRD,
   PodDefaults, user namespaces, the hub database PVC); pods in the namespace are still created, unmutated.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from platform_e2e import LOCAL, NAMESPACE, RELEASE, ROOT, lib_settings
from support import Cluster, unique_name, wait_for

CHART = ROOT / "charts" / "notebook-platform"
LOCAL_VALUES = ROOT / "hack" / "local-values.yaml"
IMAGES_VALUES = LOCAL / "images-values.yaml"  # written by hack/up.sh: the tags `make up` built
SELECTOR_LABEL = "notebook-platform.io/upgrade-test"
HELM_TIMEOUT = "6m"

# Step 2 changes these; step 3 must bring back what the install had. Small steps: two shared cores.
UPGRADED = {
    "webhook": {"requests": {"cpu": "60m", "memory": "112Mi"}, "limits": {"cpu": "600m", "memory": "320Mi"}},
    "builder": {"requests": {"cpu": "60m", "memory": "160Mi"}, "limits": {"cpu": "1", "memory": "640Mi"}},
    "hub": {"requests": {"cpu": "110m", "memory": "288Mi"}, "limits": {"cpu": "1", "memory": "1280Mi"}},
}


def helm(*args: str, timeout: float = 480, check: bool = True) -> str:
    env = {**os.environ, "KUBECONFIG": str(LOCAL / "kubeconfig"),
           "HELM_CACHE_HOME": str(LOCAL / "helm" / "cache"), "HELM_CONFIG_HOME": str(LOCAL / "helm" / "config"),
           "HELM_DATA_HOME": str(LOCAL / "helm" / "data")}
    run = subprocess.run([str(LOCAL / "bin" / "helm"), *args], capture_output=True, text=True, env=env,
                         timeout=timeout)
    assert run.returncode == 0 or not check, \
        f"helm {' '.join(args[:2])} failed ({run.returncode}):\n{run.stdout}\n{run.stderr}"
    return run.stdout


class Release:
    def __init__(self, kube_api: Any, name: str, values: list[Path]) -> None:
        from kubernetes import client

        self.name = self.namespace = name
        self.values = [a for v in values for a in ("-f", str(v))]
        self.apps = client.AppsV1Api(kube_api)
        self.core = client.CoreV1Api(kube_api)
        self.rbac = client.RbacAuthorizationV1Api(kube_api)
        self.admission = client.AdmissionregistrationV1Api(kube_api)
        self.selector = f"app.kubernetes.io/instance={name}"

    def deployments(self) -> list[Any]:
        return self.apps.list_namespaced_deployment(self.namespace, label_selector=self.selector).items

    def resources(self) -> dict[str, dict[str, dict[str, str]]]:
        """component -> the container's requests/limits, as the Deployments say."""
        out = {}
        for d in self.deployments():
            r = d.spec.template.spec.containers[0].resources
            out[d.metadata.labels["app.kubernetes.io/component"]] = {"requests": r.requests, "limits": r.limits}
        return out

    def rolled_out(self) -> list[str]:
        """Deployments not yet fully rolled out (updated, ready, and no old pods left); empty when all are."""
        waiting = []
        for d in self.deployments():
            s, want = d.status, d.spec.replicas
            if not (s.observed_generation == d.metadata.generation and s.updated_replicas == want
                    and s.ready_replicas == want and s.replicas == want):
                waiting.append(f"{d.metadata.name}: {s.ready_replicas}/{want} ready, {s.updated_replicas} updated, "
                               f"{s.replicas} total")
        return waiting

    def pod_resources(self, component: str) -> list[dict[str, Any]]:
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"{self.selector},app.kubernetes.io/component={component}").items
        return [{"requests": p.spec.containers[0].resources.requests, "limits": p.spec.containers[0].resources.limits}
                for p in pods if p.metadata.deletion_timestamp is None]

    def wait_rolled_out(self, what: str) -> None:
        wait_for(lambda: not self.rolled_out() or None, timeout=240, interval=1,
                 what=f"every Deployment of {self.name} rolled out {what} (last: {self.rolled_out()})")

    def revision(self) -> int:
        return int(json.loads(helm("status", self.name, "-n", self.namespace, "-o", "json"))["version"])


class Admissions:
    """Dry-run pod creations in a loop on one thread; each outcome is 'ok' (mutated) or what went wrong."""

    def __init__(self, create: Callable[[], str]) -> None:
        self.create = create
        self.outcomes: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            t = time.monotonic()
            result = self.create()
            self.outcomes.append((t, result))
            time.sleep(0.05)

    def between(self, t0: float, t1: float) -> tuple[int, list[tuple[float, str]]]:
        window = [(t, r) for t, r in list(self.outcomes) if t0 <= t <= t1]
        return len(window), [(round(t - t0, 2), r[-400:]) for t, r in window if r != "ok"]

    def __enter__(self) -> Admissions:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


@pytest.fixture
def release(cluster: Cluster, kube_api: Any, platform: Any) -> Iterator[Release]:
    """A second release (not installed yet), its namespace, and whatever it leaves behind removed afterwards.

    It depends on `platform` (an idempotent `make up`) for the images the first release runs; the first
    release itself is never upgraded, rolled back or uninstalled here."""
    from kubernetes.client.exceptions import ApiException

    if not (IMAGES_VALUES.is_file() and RELEASE in helm("list", "-n", NAMESPACE, "-q", check=False).split()):
        pytest.fail(f"run `make up` first: this test installs beside release {RELEASE} with its image tags "
                    f"({IMAGES_VALUES})")
    name = unique_name("nbp-up")
    with tempfile.TemporaryDirectory(prefix="nbp-upgrade-") as tmp:
        overrides = Path(tmp) / "overrides.yaml"
        overrides.write_text(yaml.safe_dump({
            "proxy": {"service": {"type": "ClusterIP", "nodePort": None}},
            "webhook": {"namespaceSelector": {"matchLabels": {SELECTOR_LABEL: name}}},
        }))
        rel = Release(kube_api, name, [LOCAL_VALUES, IMAGES_VALUES, overrides])
        try:
            yield rel
        finally:
            if name in helm("list", "-n", name, "-q", check=False).split():
                helm("uninstall", name, "-n", name, "--wait", "--timeout", HELM_TIMEOUT, check=False)
            for pvc in rel.core.list_namespaced_persistent_volume_claim(name).items:
                rel.core.delete_namespaced_persistent_volume_claim(pvc.metadata.name, name)
            try:
                rel.core.delete_namespace(name, propagation_policy="Background")
            except ApiException as e:
                if e.status != 404:
                    raise


@pytest.mark.timeout(1500)
def test_second_release_upgrades_rolls_back_and_uninstalls_without_failing_an_admission(
    kube_api: Any, namespace_factory: Any, release: Release
) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    rel = release
    registry = ":".join(lib_settings("NODE_IP", "REGISTRY_PORT"))
    t0 = time.monotonic()
    helm("install", rel.name, str(CHART), "-n", rel.namespace, "--create-namespace", *rel.values,
         "--wait", "--timeout", HELM_TIMEOUT)
    rel.wait_rolled_out("after install")
    installed = rel.resources()
    assert set(installed) >= {"poddefault-webhook", "builder", "hub", "proxy"}, installed
    full = f"{rel.name}-notebook-platform"  # the chart's fullname for this release name
    t_install = time.monotonic() - t0

    # -- 1. a namespace only this release's webhook serves, a PodDefault, admissions in a loop ------------------
    ns = namespace_factory("up", labels={SELECTOR_LABEL: rel.name})
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        "kubeflow.org", "v1alpha1", ns, "poddefaults",
        {"apiVersion": "kubeflow.org/v1alpha1", "kind": "PodDefault", "metadata": {"name": "everyone"},
         "spec": {"desc": "every pod", "selector": {}, "env": [{"name": "UPGRADE", "value": "yes"}]}})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "up-"},
           "spec": {"containers": [{"name": "c", "image": f"{registry}/nbp/base:bookworm"}]}}

    def create() -> str:
        try:
            out = rel.core.create_namespaced_pod(ns, pod, dry_run="All")
        except ApiException as e:
            return f"{e.status}: {e.body}"
        env = {e.name: e.value for e in out.spec.containers[0].env or []}
        return "ok" if env.get("UPGRADE") == "yes" else f"admitted without the PodDefault: {env}"

    wait_for(lambda: create() == "ok", timeout=60, interval=0.5, what="the new release's webhook mutating pods")

    with Admissions(create) as admissions:
        time.sleep(2)
        # -- 2. upgrade: new requests/limits -------------------------------------------------------------------
        up_at = time.monotonic()
        sets = [a for component, r in UPGRADED.items() for kind, q in r.items() for res, val in q.items()
                for a in ("--set", f"{component}.resources.{kind}.{res}={val}")]
        helm("upgrade", rel.name, str(CHART), "-n", rel.namespace, *rel.values, *sets,
             "--wait", "--timeout", HELM_TIMEOUT)
        rel.wait_rolled_out("after the upgrade")
        time.sleep(2)
        upgraded_at = time.monotonic()
        assert rel.revision() == 2
        now = rel.resources()
        for component, want in UPGRADED.items():
            key = "poddefault-webhook" if component == "webhook" else component
            assert now[key] == want, (component, now[key])
            pods = rel.pod_resources(key)
            assert pods and all(p == want for p in pods), (component, pods)

        # -- 3. rollback to revision 1 -------------------------------------------------------------------------
        back_at = time.monotonic()
        helm("rollback", rel.name, "1", "-n", rel.namespace, "--wait", "--timeout", HELM_TIMEOUT)
        rel.wait_rolled_out("after the rollback")
        time.sleep(2)
        rolled_back_at = time.monotonic()
        assert rel.revision() == 3
        assert rel.resources() == installed
        for key, want in installed.items():
            pods = rel.pod_resources(key)
            assert pods and all(p == want for p in pods), (key, pods)

    n_up, failed_up = admissions.between(up_at, upgraded_at)
    n_back, failed_back = admissions.between(back_at, rolled_back_at)
    print(f"\n{rel.name}: install {t_install:.0f} s; upgrade {upgraded_at - up_at:.0f} s with {n_up} admissions "
          f"({len(failed_up)} failed); rollback {rolled_back_at - back_at:.0f} s with {n_back} admissions "
          f"({len(failed_back)} failed)")
    assert n_up > 0 and n_back > 0
    assert not failed_up, failed_up[:5]
    assert not failed_back, failed_back[:5]

    # -- 4. uninstall: the release's objects go, what the docs promise stays -----------------------------------
    cluster_roles = [r.metadata.name for r in rel.rbac.list_cluster_role(label_selector=rel.selector).items]
    cluster_bindings = [b.metadata.name for b in
                        rel.rbac.list_cluster_role_binding(label_selector=rel.selector).items]
    mwc = f"{full}-webhook"
    assert cluster_roles and cluster_bindings
    rel.admission.read_mutating_webhook_configuration(mwc)
    hub_db = f"{full}-hub-db"
    helm("uninstall", rel.name, "-n", rel.namespace, "--wait", "--timeout", HELM_TIMEOUT)

    def leftovers() -> list[str]:
        ns_kinds = {
            "Deployment": rel.apps.list_namespaced_deployment, "Service": rel.core.list_namespaced_service,
            "Secret": rel.core.list_namespaced_secret, "ConfigMap": rel.core.list_namespaced_config_map,
            "ServiceAccount": rel.core.list_namespaced_service_account,
            "Role": rel.rbac.list_namespaced_role, "RoleBinding": rel.rbac.list_namespaced_role_binding,
            "PodDisruptionBudget": client.PolicyV1Api(kube_api).list_namespaced_pod_disruption_budget,
        }
        left = [f"{kind}/{o.metadata.name}" for kind, ls in ns_kinds.items()
                for o in ls(rel.namespace, label_selector=rel.selector).items]
        # The webhook's cert controller writes its Secret with managed-by only: it must not outlive the release.
        left += [f"Secret/{s.metadata.name}" for s in rel.core.list_namespaced_secret(rel.namespace).items
                 if s.metadata.name == f"{full}-webhook-tls"]
        left += [f"ClusterRole/{r.metadata.name}" for r in
                 rel.rbac.list_cluster_role(label_selector=rel.selector).items]
        left += [f"ClusterRoleBinding/{r.metadata.name}" for r in
                 rel.rbac.list_cluster_role_binding(label_selector=rel.selector).items]
        left += [f"MutatingWebhookConfiguration/{m.metadata.name}" for m in
                 rel.admission.list_mutating_webhook_configuration().items if m.metadata.name == mwc]
        left += [f"Pod/{p.metadata.name}" for p in
                 rel.core.list_namespaced_pod(rel.namespace, label_selector=rel.selector).items]
        return sorted(set(left))

    wait_for(lambda: not leftovers() or None, timeout=120, interval=1,
             what=f"every object of {rel.name} gone after helm uninstall (left: {leftovers()})")
    time.sleep(3)  # nothing comes back (a webhook pod's last cert-controller pass, say)
    assert leftovers() == []

    kept = rel.core.read_namespaced_persistent_volume_claim(hub_db, rel.namespace)
    assert kept.metadata.annotations.get("helm.sh/resource-policy") == "keep"
    client.ApiextensionsV1Api(kube_api).read_custom_resource_definition("poddefaults.kubeflow.org")
    client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        "kubeflow.org", "v1alpha1", ns, "poddefaults", "everyone")
    assert rel.core.read_namespace(ns).metadata.labels[SELECTOR_LABEL] == rel.name
    out = wait_for(lambda: (r := create()).startswith("admitted without the PodDefault") and r, timeout=30,
                   what="pods in the labelled namespace created, unmutated, after uninstall")
    print(f"after uninstall: kept PVC {hub_db}, CRD, PodDefault {ns}/everyone; a pod there is {out!r}")
