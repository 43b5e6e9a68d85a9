"""Per-user namespace provisioning against the real apiserver."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from hub_config import constants as k
from hub_config.namespaces import BUILDER_ROLE, ensure_user_namespace
from hub_config.settings import HubSettings

# kube_async lives on the session loop (asyncio_default_fixture_loop_scope), so the tests must too.
pytestmark = pytest.mark.asyncio(loop_scope="session")

BUILDER = {"url": "http://builder.nbp.svc:8080", "registry": "registry.nbp.svc:5000"}


def read_all(kube_api: Any, ns: str) -> dict[str, Any]:
    core, rbac = client.CoreV1Api(kube_api), client.RbacAuthorizationV1Api(kube_api)
    return {
        "ns": core.read_namespace(ns),
        "quota": core.read_namespaced_resource_quota("notebook-platform", ns),
        "limits": core.read_namespaced_limit_range("notebook-platform", ns),
        "sa": core.read_namespaced_service_account("notebook", ns),
        "role": rbac.read_namespaced_role(BUILDER_ROLE, ns),
        "binding": rbac.read_namespaced_role_binding(BUILDER_ROLE, ns),
    }


def poddefaults(kube_api: Any, ns: str) -> dict[str, dict[str, Any]]:
    items = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        k.PODDEFAULT_GROUP, k.PODDEFAULT_VERSION, ns, k.PODDEFAULT_PLURAL)["items"]
    return {i["metadata"]["name"]: i for i in items}


async def test_first_spawn_creates_namespace_with_labels_quota_rbac_and_default_poddefaults(
    kube_async: Any, kube_api: Any, poddefault_crd: str, hub_settings: Callable[..., HubSettings],
    user_factory: Callable[..., tuple[str, str]],
) -> None:
    username, ns = user_factory("First.User")
    settings = hub_settings(builder=BUILDER, quota={"limits.cpu": "3", "pods": "5"})
    result = await ensure_user_namespace(kube_async, username, ns, settings)
    assert not result.skipped
    objs = read_all(kube_api, ns)
    labels = objs["ns"].metadata.labels
    assert labels[k.PODDEFAULTS_LABEL] == "enabled"
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels[k.TEST_LABEL] == "true" and labels[k.MANAGED_BY_KEY] == "notebook-platform"
    assert objs["ns"].metadata.annotations[k.USERNAME_ANNOTATION] == username
    assert objs["quota"].spec.hard == {"limits.cpu": "3", "pods": "5"}
    assert objs["limits"].spec.limits[0].default == {"cpu": "1", "memory": "2Gi"}
    assert objs["binding"].subjects[0].name == "notebook"
    for name in ("quota", "limits", "sa", "role", "binding"):
        assert objs[name].metadata.labels[k.MANAGED_BY_KEY] == "notebook-platform", name
        assert objs[name].metadata.labels[k.COMPONENT_KEY], name
    pds = poddefaults(kube_api, ns)
    env = {e["name"]: e["value"] for e in pds["builder"]["spec"]["env"]}
    assert env == {k.ENV_BUILDER_URL: BUILDER["url"], k.ENV_REGISTRY: BUILDER["registry"]}


async def test_provisioning_twice_changes_nothing(
    kube_async: Any, kube_api: Any, poddefault_crd: str, hub_settings: Callable[..., HubSettings],
    user_factory: Callable[..., tuple[str, str]],
) -> None:
    username, ns = user_factory()
    settings = hub_settings(builder=BUILDER)
    await ensure_user_namespace(kube_async, username, ns, settings)
    before = {name: o.metadata.resource_version for name, o in read_all(kube_api, ns).items()}
    before_pd = {n: p["metadata"]["resourceVersion"] for n, p in poddefaults(kube_api, ns).items()}
    await ensure_user_namespace(kube_async, username, ns, settings)
    after = {name: o.metadata.resource_version for name, o in read_all(kube_api, ns).items()}
    assert after == before
    assert {n: p["metadata"]["resourceVersion"] for n, p in poddefaults(kube_api, ns).items()} == before_pd


async def test_concurrent_first_spawns_of_one_user_both_succeed(
    kube_async: Any, kube_api: Any, poddefault_crd: str, hub_settings: Callable[..., HubSettings],
    user_factory: Callable[..., tuple[str, str]],
) -> None:
    username, ns = user_factory()
    settings = hub_settings(builder=BUILDER)
    results = await asyncio.gather(*(ensure_user_namespace(kube_async, username, ns, settings) for _ in range(4)))
    assert all(not r.skipped for r in results)
    assert read_all(kube_api, ns)["quota"].spec.hard == settings.quota
    assert set(poddefaults(kube_api, ns)) == {"builder"}


async def test_changed_settings_update_the_namespace_and_prune_only_our_poddefaults(
    kube_async: Any, kube_api: Any, poddefault_crd: str, hub_settings: Callable[..., HubSettings],
    user_factory: Callable[..., tuple[str, str]],
) -> None:
    username, ns = user_factory()
    old = hub_settings(builder=BUILDER, default_poddefaults=[{"name": "old-default", "spec": {"desc": "x"}}])
    await ensure_user_namespace(kube_async, username, ns, old)
    # An operator's own PodDefault, made with kubectl: never ours to delete.
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        k.PODDEFAULT_GROUP, k.PODDEFAULT_VERSION, ns, k.PODDEFAULT_PLURAL,
        {"apiVersion": k.PODDEFAULT_API_VERSION, "kind": "PodDefault", "metadata": {"name": "hand-made"},
         "spec": {"desc": "by hand", "selector": {"matchLabels": {"hand": "made"}}}})
    # Someone also labels the namespace by hand; apply must keep that label.
    client.CoreV1Api(kube_api).patch_namespace(ns, {"metadata": {"labels": {"team": "blue"}}})
    new = hub_settings(builder=BUILDER, quota={"limits.cpu": "16"})
    result = await ensure_user_namespace(kube_async, username, ns, new)
    assert result.pruned == ["old-default"]
    assert set(poddefaults(kube_api, ns)) == {"builder", "hand-made"}
    objs = read_all(kube_api, ns)
    assert objs["quota"].spec.hard == {"limits.cpu": "16"}
    assert objs["ns"].metadata.labels["team"] == "blue"


def can(kube_api: Any, user: str, verb: str, ns: str, group: str, resource: str, name: str | None = None) -> bool:
    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=user, groups=["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
        resource_attributes=client.V1ResourceAttributes(
            namespace=ns, verb=verb, group=group, resource=resource, name=name)))
    return bool(client.AuthorizationV1Api(kube_api).create_subject_access_review(review).status.allowed)


async def test_notebook_service_account_can_build_and_nothing_else(
    kube_async: Any, kube_api: Any, poddefault_crd: str, hub_settings: Callable[..., HubSettings],
    user_factory: Callable[..., tuple[str, str]],
) -> None:
    settings = hub_settings(builder=BUILDER)
    (alice, ns_a), (bob, ns_b) = user_factory("alice"), user_factory("bob")
    await asyncio.gather(ensure_user_namespace(kube_async, alice, ns_a, settings),
                         ensure_user_namespace(kube_async, bob, ns_b, settings))
    sa = f"system:serviceaccount:{ns_a}:notebook"
    group = k.BUILDER_API_GROUP
    for verb in ("create", "get", "list", "delete"):
        assert can(kube_api, sa, verb, ns_a, group, "builds"), verb
    for verb in ("update", "patch", "watch"):
        assert not can(kube_api, sa, verb, ns_a, group, "builds"), verb
    # Not another user's builds, not their namespace's anything.
    assert not can(kube_api, sa, "create", ns_b, group, "builds")
    for resource, api_group in (("pods", ""), ("secrets", ""), ("persistentvolumeclaims", ""),
                                ("poddefaults", k.PODDEFAULT_GROUP), ("jobs", "batch")):
        assert not can(kube_api, sa, "list", ns_b, api_group, resource), resource
        assert not can(kube_api, sa, "get", ns_a, api_group, resource), resource
    assert not can(kube_api, sa, "create", ns_a, "rbac.authorization.k8s.io", "rolebindings")
    # The builder checks the caller may read the claim it builds from: exactly the own workspace claim.
    assert can(kube_api, sa, "get", ns_a, "", "persistentvolumeclaims", "workspace")
    assert not can(kube_api, sa, "get", ns_a, "", "persistentvolumeclaims", "other-claim")
    assert not can(kube_api, sa, "get", ns_b, "", "persistentvolumeclaims", "workspace")


@pytest.mark.parametrize("hostile", ["../kube-system", "Kube-System", "default", "x" * 300, "a--b", "🙂🙂🙂"])
async def test_hostile_usernames_get_their_own_valid_namespace(
    hostile: str, kube_async: Any, kube_api: Any, poddefault_crd: str, hub_settings: Callable[..., HubSettings],
) -> None:
    from hub_config.namespaces import namespace_name

    settings = hub_settings()
    ns = namespace_name(hostile, settings.namespace_prefix)
    assert ns.startswith("nbp-it-") and ns not in ("kube-system", "default")
    try:
        await ensure_user_namespace(kube_async, hostile, ns, settings)
        assert client.CoreV1Api(kube_api).read_namespace(ns).metadata.annotations[k.USERNAME_ANNOTATION] == hostile
    finally:
        client.CoreV1Api(kube_api).delete_namespace(ns, propagation_policy="Background")
