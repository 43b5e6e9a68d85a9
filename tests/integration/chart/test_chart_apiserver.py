"""The rendered chart against the real apiserver: server-side dry runs (namespaced objects in a per-test
namespace, cluster-scoped ones dry-run too), `lookup` on upgrade, and the RBAC the services rely on."""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import Cluster, unique_name, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "chart"))
from chart_support import ALL_ON, CHART, HELM

from webhook import certs

HERE = Path(__file__).resolve().parent
POD_DEFAULT_CRD = CHART / "crds" / "poddefaults.yaml"
THIRD_PARTY_CRDS = Path(__file__).resolve().parents[3] / "hack" / "third-party-crds.sh"


def helm(cluster: Cluster, *args: str, check: bool = True) -> Any:
    import subprocess

    return subprocess.run([str(HELM), "--kubeconfig", str(cluster.kubeconfig), *args], capture_output=True,
                          text=True, check=check, timeout=180)


def template(cluster: Cluster, release: str, namespace: str, *extra: str) -> str:
    return helm(cluster, "template", release, str(CHART), "--namespace", namespace, *extra).stdout


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> None:
    """The PodDefault CRD (it is cluster-scoped and the chart ships it in crds/), and the real CRDs of
    cert-manager and the Prometheus Operator (hack/third-party-crds.sh takes them from the pinned modules), so
    the chart's Certificate, Issuer and ServiceMonitor objects are checked against their owners' schemas."""
    import subprocess

    folder = subprocess.run(["bash", str(THIRD_PARTY_CRDS)], capture_output=True, text=True, check=True,
                            timeout=300).stdout.strip().splitlines()[-1]
    files = [POD_DEFAULT_CRD, *sorted(Path(folder).glob("*.yaml"))]
    assert len(files) == 6, files
    names = []
    for path in files:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
        names += [d["metadata"]["name"] for d in docs(path.read_text())]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names])


def dry_run(cluster: Cluster, manifests: str, namespace: str) -> list[str]:
    out = cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", "-",
                          input=manifests, check=False)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("values", [(), ("-f", str(ALL_ON))], ids=["default", "all-on"])
def test_every_rendered_object_is_accepted_by_the_apiserver(
        cluster: Cluster, crds: None, namespace: str, values: tuple[str, ...]) -> None:
    text = template(cluster, unique_name("rel"), namespace, *values)
    objects = docs(text)
    lines = dry_run(cluster, text, namespace)
    assert len(lines) == len(objects)
    assert all(line.endswith("(server dry run)") for line in lines), lines
    cluster_scoped = [o for o in objects if "namespace" not in o["metadata"]]
    assert {o["kind"] for o in cluster_scoped} >= {"ClusterRole", "ClusterRoleBinding",
                                                    "MutatingWebhookConfiguration"}


def test_the_crd_the_chart_ships_is_served(cluster: Cluster, crds: None) -> None:
    crd = docs(POD_DEFAULT_CRD.read_text())[0]
    out = cluster.kubectl("get", "crd", crd["metadata"]["name"], "-o", "json")
    assert json.loads(out.stdout)["spec"]["group"] == "kubeflow.org"


def test_a_typo_in_a_template_field_would_be_refused(cluster: Cluster, crds: None, namespace: str) -> None:
    """The dry run is strict: unknown fields fail it, so the all-on test above does catch misspelt fields."""
    text = template(cluster, "rel", namespace, "-f", str(ALL_ON), "--show-only",
                    "templates/webhook/certmanager.yaml")
    broken = text.replace("dnsNames:", "dnsName:", 1)
    out = cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", "-",
                          input=broken, check=False)
    assert out.returncode != 0 and "dnsName" in out.stderr


def test_helm_install_dry_run_against_the_cluster_prints_next_steps(cluster: Cluster, crds: None, namespace: str
                                                                    ) -> None:
    release = unique_name("rel")
    out = helm(cluster, "install", release, str(CHART), "--namespace", namespace, "--dry-run=server")
    notes = out.stdout.split("NOTES:", 1)[1]
    assert f"port-forward service/{release}-notebook-platform-proxy-public" in notes
    assert "shared-password" in notes
    assert "kind: PodDefault" in notes and "build(" in notes


def test_upgrade_reuses_the_live_webhook_certificates_and_hub_secrets(
        cluster: Cluster, crds: None, namespace: str) -> None:
    """`helm upgrade` must not mint a new CA (admission would break until pods reload): `lookup` reads the
    Secret the cert controller keeps, and the caBundle is rendered from it."""
    release = unique_name("rel")
    full = f"{release}-notebook-platform"
    data = certs.plan({}, certs.dns_names(f"{full}-webhook", namespace), dt.datetime.now(dt.UTC),
                      dt.timedelta(days=3650), dt.timedelta(days=365), dt.timedelta(days=30)).data
    assert data is not None
    cluster.kubectl("apply", "-n", namespace, "-f", "-",
                    input=json.dumps(certs.secret_manifest(f"{full}-webhook-tls", namespace, data)))
    hub_secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{full}-hub", "namespace": namespace},
                  "stringData": {"proxy-token": "kept-token", "cookie-secret": "ab" * 32,
                                 "shared-password": "kept-password"}}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(hub_secret))

    objects = docs(template(cluster, release, namespace, "--dry-run=server"))
    tls = next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == f"{full}-webhook-tls")
    assert certs.decode_secret_data(tls) == data
    mwc = next(o for o in objects if o["kind"] == "MutatingWebhookConfiguration")
    assert base64.b64decode(mwc["webhooks"][0]["clientConfig"]["caBundle"]) == data[certs.CA_CERT_KEY]
    hub = next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == f"{full}-hub")
    assert base64.b64decode(hub["data"]["proxy-token"]) == b"kept-token"
    assert yaml.safe_load(base64.b64decode(hub["data"]["settings.yaml"]))["shared_password"] == "kept-password"


# --- RBAC, checked by the apiserver's own escalation rules -------------------------------------------------------

@pytest.fixture
def bound_account(cluster: Cluster, namespace: str) -> Any:
    """Binds the rules of one of the chart's ClusterRoles to a fresh service account (under a unique name);
    deletes the cluster-scoped copies afterwards."""
    made: list[tuple[str, str]] = []

    def bind(component_suffix: str) -> str:
        rendered = docs(template(cluster, "rbac", namespace))
        role = next(o for o in rendered if o["kind"] == "ClusterRole"
                    and o["metadata"]["name"] == f"rbac-notebook-platform{component_suffix}")
        name = unique_name("nbp-test-role")
        sa = unique_name("sa")
        objs = [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": namespace}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": name, "labels": {"notebook-platform.io/test": "true"}}, "rules": role["rules"]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": name, "labels": {"notebook-platform.io/test": "true"}},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
             "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}]},
        ]
        made.extend([("clusterrolebinding", name), ("clusterrole", name)])
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objs))
        return f"system:serviceaccount:{namespace}:{sa}"

    yield bind
    for kind, name in made:
        cluster.kubectl("delete", kind, name, "--ignore-not-found", check=False)


def test_hub_rules_suffice_to_provision_a_user_namespace_without_escalate_or_bind(
        cluster: Cluster, crds: None, bound_account: Callable[[str], str],
        namespace_factory: Callable[..., str]) -> None:
    from hub_config.namespaces import namespace_manifests
    from hub_config.settings import HubSettings

    hub = bound_account("-hub")
    user_ns = namespace_factory("user")
    manifests = namespace_manifests(user_ns, "alice", HubSettings(default_poddefaults=[
        {"name": "greeting", "spec": {"env": [{"name": "GREETING", "value": "hi"}]}}]))
    if not POD_DEFAULT_CRD.exists():
        manifests = [m for m in manifests if m["kind"] != "PodDefault"]

    def can_apply() -> bool:
        # Really applied (the test namespace goes away afterwards): a RoleBinding's escalation check needs
        # the Role to exist, so a dry run of both at once cannot pass.
        out = cluster.kubectl("apply", "--server-side", "--field-manager=notebook-platform-hub",
                              "--as", hub, "-f", "-", input=yaml.safe_dump_all(manifests), check=False)
        return out.returncode == 0  # a fresh binding can take a moment to reach the authorizer's cache

    wait_for(can_apply, timeout=20, interval=1, what="hub applies the user namespace objects")
    # The apiserver's escalation check holds: the hub cannot grant what it does not hold.
    wider = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "wider", "namespace": user_ns},
             "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}
    out = cluster.kubectl("create", "--dry-run=server", "--as", hub, "-f", "-", input=json.dumps(wider), check=False)
    assert out.returncode != 0 and "forbidden" in out.stderr.lower()


@pytest.mark.parametrize(("suffix", "allowed", "denied"), [
    ("-builder",
     # pods create/delete and claims get: the volume agents (builder/agents.py)
     [("create", "jobs.batch"), ("delete", "jobs.batch"), ("get", "pods/log"), ("create", "tokenreviews"),
      ("create", "subjectaccessreviews"), ("create", "pods"), ("delete", "pods"), ("get", "persistentvolumeclaims")],
     [("get", "secrets"), ("update", "pods"), ("patch", "pods"), ("create", "roles"),
      ("create", "persistentvolumeclaims"), ("delete", "persistentvolumeclaims")]),
    ("-webhook",
     [("list", "poddefaults.kubeflow.org"), ("watch", "poddefaults.kubeflow.org"), ("create", "events")],
     [("list", "secrets"), ("create", "pods"), ("update", "poddefaults.kubeflow.org")]),
])
def test_service_accounts_can_do_their_job_and_no_more(
        cluster: Cluster, bound_account: Callable[[str], str], namespace_factory: Callable[..., str],
        suffix: str, allowed: list[tuple[str, str]], denied: list[tuple[str, str]]) -> None:
    who = bound_account(suffix)
    user_ns = namespace_factory("user")

    def can(verb: str, resource: str) -> bool:
        out = cluster.kubectl("auth", "can-i", verb, resource, "-n", user_ns, "--as", who, check=False)
        return out.stdout.strip() == "yes"

    wait_for(lambda: can(*allowed[0]), timeout=20, interval=1, what="binding in effect")
    assert [a for a in allowed if not can(*a)] == []
    assert [d for d in denied if can(*d)] == []
