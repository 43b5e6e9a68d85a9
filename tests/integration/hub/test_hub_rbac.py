"""The hub's ClusterRole is enough to provision, list and watch PodDefaults and dry-run pods, and no more is
needed."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from hub_config import constants as k
from hub_config import kube
from hub_config.namespaces import ensure_user_namespace
from hub_config.rbac import hub_cluster_role
from hub_config.settings import HubSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def hub_identity(kube_api: Any, namespace: str) -> Any:
    """A ServiceAccount bound to exactly `hub_cluster_role()`; cluster objects removed afterwards."""
    rbac = client.RbacAuthorizationV1Api(kube_api)
    name = f"nbp-test-hub-{secrets.token_hex(4)}"
    client.CoreV1Api(kube_api).create_namespaced_service_account(namespace, {"metadata": {"name": "hub"}})
    role = hub_cluster_role(name)
    role["metadata"]["labels"][k.TEST_LABEL] = "true"
    rbac.create_cluster_role(role)
    rbac.create_cluster_role_binding({
        "metadata": {"name": name, "labels": {k.TEST_LABEL: "true"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": namespace}],
    })
    yield f"system:serviceaccount:{namespace}:hub"
    rbac.delete_cluster_role_binding(name)
    rbac.delete_cluster_role(name)


async def test_hub_cluster_role_suffices_for_provisioning_and_dry_run(
    cluster: Any, hub_identity: str, poddefault_crd: str, hub_settings: Callable[..., HubSettings],
    user_factory: Callable[..., tuple[str, str]],
) -> None:
    from kubernetes_asyncio import config as aconfig
    from kubernetes_asyncio.client import CustomObjectsApi, V1Container, V1ObjectMeta, V1Pod, V1PodSpec

    from hub_config.poddefault_cache import PodDefaultsApi

    api = await aconfig.new_client_from_config(config_file=str(cluster.kubeconfig))
    api.set_default_header("Impersonate-User", hub_identity)
    try:
        settings = hub_settings(builder={"url": "http://builder:8080"})
        username, ns = user_factory()
        result = await ensure_user_namespace(api, username, ns, settings)
        assert not result.skipped
        await ensure_user_namespace(api, username, ns, settings)  # update path too
        assert [p["metadata"]["name"] for p in await kube.list_poddefaults(api, ns)] == ["builder"]
        pod = V1Pod(metadata=V1ObjectMeta(name="probe"),
                    spec=V1PodSpec(containers=[V1Container(name="notebook", image="x")]))
        assert (await kube.dry_run_pod(api, ns, pod))["metadata"]["namespace"] == ns
        # the hub's PodDefault copy lists, then watches, every namespace's (hub_config.poddefault_cache)
        pds = PodDefaultsApi(CustomObjectsApi(api))
        listed = await pds.list_poddefault_for_all_namespaces(label_selector="", field_selector="")
        assert (ns, "builder") in {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in listed["items"]}
        watched = await pds.list_poddefault_for_all_namespaces(
            watch=True, timeout_seconds=1, resource_version=listed["metadata"]["resourceVersion"],
            _preload_content=False)
        assert watched.status == 200
        watched.release()
    finally:
        await api.close()
