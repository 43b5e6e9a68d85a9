"""The local control plane is a real Kubernetes: schema validation, dry run and RBAC behave as upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from support import Cluster, unique_name, wait_for

GROUP = "widgets.test.notebook-platform.io"


@pytest.fixture(scope="module")
def widget_crd(kube_api: client.ApiClient) -> Iterator[str]:
    """A throwaway CRD with a structural schema: `spec.size` must be an integer, `spec.name` is required."""
    plural = unique_name("widgets").replace("-", "")
    name = f"{plural}.{GROUP}"
    ext = client.ApiextensionsV1Api(kube_api)
    ext.create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": "Widget" + plural[-8:].capitalize()},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object", "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "size": {"type": "integer", "default": 3},
                        },
                    }},
                }},
            }],
        },
    })

    def established() -> bool:
        crd = ext.read_custom_resource_definition(name)
        return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))

    wait_for(established, what=f"CRD {name} established")
    yield plural
    ext.delete_custom_resource_definition(name)


def test_object_violating_crd_schema_is_rejected_naming_the_field(
    kube_api: client.ApiClient, namespace: str, widget_crd: str
) -> None:
    objs = client.CustomObjectsApi(kube_api)
    kind = objs.get_api_resources(GROUP, "v1").resources[0].kind
    bad = {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": "w"},
           "spec": {"name": "w", "size": "big"}}
    with pytest.raises(ApiException) as err:
        objs.create_namespaced_custom_object(GROUP, "v1", namespace, widget_crd, bad)
    assert err.value.status == 422
    assert "spec.size" in err.value.body
    missing = {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": "w"}, "spec": {}}
    with pytest.raises(ApiException) as err:
        objs.create_namespaced_custom_object(GROUP, "v1", namespace, widget_crd, missing)
    assert err.value.status == 422
    assert "spec.name" in err.value.body


def test_server_side_dry_run_returns_defaulted_object_and_persists_nothing(
    kube_api: client.ApiClient, namespace: str, widget_crd: str
) -> None:
    objs = client.CustomObjectsApi(kube_api)
    kind = objs.get_api_resources(GROUP, "v1").resources[0].kind
    body = {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": "dry"}, "spec": {"name": "dry"}}
    got = objs.create_namespaced_custom_object(GROUP, "v1", namespace, widget_crd, body, dry_run="All")
    assert got["spec"]["size"] == 3, "the schema default is applied by the server"
    assert got["metadata"].get("uid"), "the server filled in metadata"
    listed = objs.list_namespaced_custom_object(GROUP, "v1", namespace, widget_crd)
    assert listed["items"] == []
    # Core objects too: a dry-run pod gets the defaults the apiserver and admission plugins add.
    pod = client.CoreV1Api(kube_api).create_namespaced_pod(
        namespace,
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "example.invalid/x:1"}]}},
        dry_run="All",
    )
    assert pod.spec.containers[0].termination_message_path == "/dev/termination-log"
    assert pod.spec.service_account_name == "default"
    assert client.CoreV1Api(kube_api).list_namespaced_pod(namespace).items == []


def _token_for(kube_api: client.ApiClient, namespace: str, sa: str) -> str:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": sa}})
    req = core.create_namespaced_service_account_token(
        sa, namespace, {"spec": {"audiences": ["https://kubernetes.default.svc.cluster.local"],
                                 "expirationSeconds": 600}})
    return req.status.token


def _job_api_as(cluster: Cluster, token: str) -> client.BatchV1Api:
    cfg = client.Configuration()
    admin = client.Configuration.get_default_copy()
    from kubernetes import config as kconfig

    kconfig.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=admin)
    cfg.host = admin.host
    cfg.ssl_ca_cert = admin.ssl_ca_cert
    cfg.api_key = {"authorization": token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    return client.BatchV1Api(client.ApiClient(cfg))


JOB = {"metadata": {"name": "j"}, "spec": {"template": {"spec": {
    "restartPolicy": "Never", "containers": [{"name": "c", "image": "example.invalid/x:1"}]}}}}


def test_service_account_without_binding_gets_403_and_with_rolebinding_can_create_job(
    kube_api: client.ApiClient, cluster: Cluster, namespace: str
) -> None:
    token = _token_for(kube_api, namespace, "builder-sa")
    jobs = _job_api_as(cluster, token)
    with pytest.raises(ApiException) as err:
        jobs.create_namespaced_job(namespace, JOB, dry_run="All")
    assert err.value.status == 403
    assert f"system:serviceaccount:{namespace}:builder-sa" in json.loads(err.value.body)["message"]

    rbac = client.RbacAuthorizationV1Api(kube_api)
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "jobs"}, "rules": [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}]})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "jobs"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "jobs"},
        "subjects": [{"kind": "ServiceAccount", "name": "builder-sa", "namespace": namespace}]})

    def allowed() -> bool:
        try:
            jobs.create_namespaced_job(namespace, JOB, dry_run="All")
            return True
        except ApiException as e:
            assert e.status == 403
            return False

    wait_for(allowed, timeout=10, what="the RoleBinding to take effect")
    # The grant is namespaced: another namespace stays forbidden.
    with pytest.raises(ApiException) as err:
        jobs.create_namespaced_job("default", JOB, dry_run="All")
    assert err.value.status == 403


def test_namespace_fixture_survives_a_test_deleting_its_namespace(
    kube_api: client.ApiClient, namespace_factory
) -> None:
    core = client.CoreV1Api(kube_api)
    ns = namespace_factory("gone")
    core.delete_namespace(ns)
    # The fixture's cleanup must tolerate this (404 or Terminating); a fresh namespace still works.
    other = namespace_factory("after")
    assert core.read_namespace(other).status.phase == "Active"
