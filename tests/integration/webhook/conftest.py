"""Fixtures for the webhook's integration tests against the local kube-apiserver.

Webhook configurations are cluster-scoped and test modules may run in parallel, so each module starts its
own webhook process and registers it under a unique name, for namespaces that carry both the platform's
label and a label unique to the module.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import wait_for
from webhook_it import (
    MODULE_LABEL,
    ROOT,
    Rest,
    Webhook,
    make_pod,
    poddefault,
    registered,
    start_webhook,
    stop,
    webhook_configuration,
)

from webhook import constants as c

CRD_FILE = ROOT / "charts" / "notebook-platform" / "crds" / "poddefaults.yaml"


@pytest.fixture(scope="session")
def rest(kube_api: Any) -> Iterator[Rest]:
    r = Rest(kube_api)
    yield r
    r.http.close()


@pytest.fixture(scope="session")
def poddefault_crd(cluster: Any, rest: Rest) -> str:
    """The generated CRD, applied with kubectl (as users do) and established."""
    cluster.kubectl("apply", "-f", str(CRD_FILE))

    def established() -> bool:
        crd = rest.ok("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{c.CRD_NAME}")
        conds = {x["type"]: x["status"] for x in (crd.get("status") or {}).get("conditions") or []}
        return conds.get("Established") == "True" and conds.get("NonStructuralSchema") != "True"

    wait_for(established, timeout=30, what="PodDefault CRD established")
    # The schema must be the generated one (another test may have installed a permissive stand-in).
    crd = rest.ok("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{c.CRD_NAME}")
    assert "properties" in crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return c.CRD_NAME


@pytest.fixture(scope="module")
def webhook(cluster: Any, rest: Rest, poddefault_crd: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    """This module's webhook process, registered and proven to inject (so tests never race the apiserver
    picking up the configuration)."""
    token = secrets.token_hex(4)
    workdir: Path = tmp_path_factory.mktemp(f"webhook-{token}")
    proc, port, ca, log = start_webhook(workdir, cluster.kubeconfig)
    # Only the module's own label: the platform's label would also bring in the webhook that `make up`
    # installed, and two webhooks racing over one PodDefault edit is a test artefact, not a product case.
    labels = {MODULE_LABEL: token}
    name = f"nbp-test-poddefaults-{token}"
    hook = Webhook(port, ca, workdir, token, name, proc, log, labels)
    try:
        with registered(rest, webhook_configuration(name, port, ca.cert_pem, labels)):
            probe_ns = f"wh-probe-{token}"
            rest.ok("POST", "/api/v1/namespaces", {"metadata": {"name": probe_ns, "labels": {
                **labels, "notebook-platform.io/test": "true"}}})
            try:
                wait_for_service_account(rest, probe_ns)
                rest.ok("POST", rest.poddefaults(probe_ns), poddefault("probe", {
                    "selector": {}, "env": [{"name": "PROBE", "value": "1"}]}))

                def injected() -> bool:
                    status, pod = rest.create_pod(probe_ns, make_pod())
                    return status == 201 and any(
                        e.get("name") == "PROBE" for e in pod["spec"]["containers"][0].get("env", []))

                wait_for(injected, timeout=60, interval=0.3, what=f"webhook active; log:\n{hook.log_tail()}")
            finally:
                rest.call("DELETE", f"/api/v1/namespaces/{probe_ns}")
            yield hook
    finally:
        stop(proc)


def wait_for_service_account(rest: Rest, namespace: str) -> None:
    """Pods are refused until the controller-manager has created the namespace's default account."""
    wait_for(lambda: rest.call("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default")[0] == 200,
             timeout=60, what=f"default service account in {namespace}")


@pytest.fixture
def enabled_namespace(namespace_factory: Callable[..., str], rest: Rest, webhook: Webhook) -> Callable[..., str]:
    """Makes namespaces this module's webhook serves (deleted after the test)."""
    def make(prefix: str = "wh") -> str:
        ns = namespace_factory(prefix, labels=webhook.labels)
        wait_for_service_account(rest, ns)
        return ns

    return make


@pytest.fixture
def plain_namespace(namespace_factory: Callable[..., str], rest: Rest) -> str:
    """A namespace without the platform's label: the webhook must never see its pods."""
    ns = namespace_factory("wh-off")
    wait_for_service_account(rest, ns)
    return ns
