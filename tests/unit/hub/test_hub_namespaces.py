"""Per-user namespace names and manifests (pure)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from kubespawner import KubeSpawner

from hub_config import constants as k
from hub_config.namespaces import (
    BUILDER_ROLE,
    default_poddefaults,
    namespace_manifests,
    namespace_name,
    namespace_template,
)
from hub_config.settings import DefaultPodDefault, HubSettings

DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

USERNAMES = [
    "alice", "Alice", "ALICE", "alice.smith", "alice@example.com", "bob_1", "1user", "user-", "a--b", "-x",
    "émilie", "李小龙", "ユーザー", "🙂", "x" * 48, "x" * 49, "y" * 64, "very.long.name." * 6, "a", "z" * 200,
]


def kubespawner_namespace(username: str, template: str) -> str:
    """KubeSpawner's own expansion of the namespace template, called on a stand-in spawner."""
    fake = SimpleNamespace(slug_scheme="safe", name="", user=SimpleNamespace(name=username, id=1),
                           _namespace_default=lambda: "hub")
    return KubeSpawner._expand_user_properties(fake, template)


@pytest.mark.parametrize("username", USERNAMES)
def test_namespace_names_are_dns_labels_and_match_kubespawner(username: str) -> None:
    settings = HubSettings()
    name = namespace_name(username, settings.namespace_prefix)
    assert DNS_1123_LABEL.match(name), name
    assert len(name) <= 63
    assert name == kubespawner_namespace(username, namespace_template(settings))


def test_namespace_names_are_distinct_for_distinct_usernames() -> None:
    variants = [*USERNAMES, "alice.smith", "alice-smith", "alice_smith", "Alice.Smith", "x" * 60 + "a",
                "x" * 60 + "b", "émilie", "emilie"]
    names = {u: namespace_name(u, "nbp-") for u in set(variants)}
    assert len(set(names.values())) == len(names), names


def test_longest_prefix_still_fits() -> None:
    prefix = "p" * 15
    for u in USERNAMES:
        assert len(namespace_name(u, prefix)) <= 63


@pytest.mark.parametrize("prefix", ["p" * 16, "Bad-", "1x-", "a_b-"])
def test_prefix_that_could_break_names_is_rejected(prefix: str) -> None:
    with pytest.raises(ValueError):
        HubSettings(namespace_prefix=prefix)


def by_kind(manifests: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for m in manifests:
        out.setdefault(m["kind"], []).append(m)
    return out


def test_namespace_manifest_enables_webhook_and_pod_security() -> None:
    ns = namespace_manifests("nbp-alice", "Alice@example.com", HubSettings())[0]
    labels = ns["metadata"]["labels"]
    assert ns["kind"] == "Namespace" and ns["metadata"]["name"] == "nbp-alice"
    assert labels[k.PODDEFAULTS_LABEL] == "enabled"
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    # '@' is not allowed in label values: the label is a slug, the annotation the exact name.
    assert labels[k.USER_LABEL].startswith("alice-example-com---")
    assert ns["metadata"]["annotations"][k.USERNAME_ANNOTATION] == "Alice@example.com"


def test_every_object_is_managed_and_has_a_component() -> None:
    settings = HubSettings(builder={"url": "http://builder.nbp.svc:8080", "registry": "registry.local:5000"})
    manifests = namespace_manifests("nbp-bob", "bob", settings)
    for m in manifests:
        labels = m["metadata"]["labels"]
        assert labels[k.MANAGED_BY_KEY] == "notebook-platform", m["kind"]
        assert labels[k.COMPONENT_KEY], m["kind"]
        if m["kind"] != "Namespace":
            assert m["metadata"]["namespace"] == "nbp-bob"
    assert manifests[0]["kind"] == "Namespace"


def test_quota_and_limit_range_come_from_settings() -> None:
    settings = HubSettings(quota={"limits.cpu": "3", "requests.nvidia.com/gpu": "1"},
                           limit_range={"default_cpu": "500m", "max_memory": "8Gi"})
    kinds = by_kind(namespace_manifests("ns", "u", settings))
    assert kinds["ResourceQuota"][0]["spec"]["hard"] == {"limits.cpu": "3", "requests.nvidia.com/gpu": "1"}
    item = kinds["LimitRange"][0]["spec"]["limits"][0]
    assert item["type"] == "Container" and item["default"]["cpu"] == "500m" and item["max"] == {"memory": "8Gi"}


def test_notebook_service_account_may_use_builds_and_read_only_its_workspace_claim() -> None:
    kinds = by_kind(namespace_manifests("ns", "u", HubSettings()))
    (role,) = kinds["Role"]
    assert role["rules"] == [
        {"apiGroups": ["builder.notebook-platform.io"], "resources": ["builds"],
         "verbs": ["create", "get", "list", "delete"]},
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "resourceNames": ["workspace"],
         "verbs": ["get"]},
    ]
    (binding,) = kinds["RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": BUILDER_ROLE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "notebook", "namespace": "ns"}]
    assert kinds["ServiceAccount"][0]["metadata"]["name"] == "notebook"
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds


def test_builder_settings_add_a_default_poddefault_with_endpoint_and_registry() -> None:
    settings = HubSettings(builder={"url": "http://builder:8080", "registry": "reg:5000"})
    (pd,) = by_kind(namespace_manifests("ns", "u", settings))["PodDefault"]
    assert pd["apiVersion"] == "kubeflow.org/v1alpha1"
    assert {"name": k.ENV_BUILDER_URL, "value": "http://builder:8080"} in pd["spec"]["env"]
    assert {"name": k.ENV_REGISTRY, "value": "reg:5000"} in pd["spec"]["env"]
    assert pd["spec"]["selector"]["matchLabels"]


def test_operator_poddefault_without_selector_gets_kubeflow_style_one() -> None:
    settings = HubSettings(default_poddefaults=[{"name": "add-secret", "spec": {"env": [{"name": "A", "value": "1"}]}}])
    (pd,) = by_kind(namespace_manifests("ns", "u", settings))["PodDefault"]
    assert pd["spec"]["selector"] == {"matchLabels": {"add-secret": "true"}}
    assert pd["spec"]["desc"] == "add-secret"


def test_operator_builder_poddefault_replaces_the_generated_one() -> None:
    mine = DefaultPodDefault(name="builder", spec={"desc": "mine", "selector": {}})
    settings = HubSettings(builder={"url": "http://b"}, default_poddefaults=[mine])
    assert default_poddefaults(settings) == [mine]


def test_rendering_is_deterministic_and_does_not_mutate_settings() -> None:
    settings = HubSettings(default_poddefaults=[{"name": "x", "spec": {"desc": "d"}}])
    first = namespace_manifests("ns", "u", settings)
    assert namespace_manifests("ns", "u", settings) == first
    assert "selector" not in settings.default_poddefaults[0].spec


def test_role_bindings_are_applied_after_the_roles_they_bind() -> None:
    from hub_config.namespaces import apply_phases

    manifests = namespace_manifests("ns", "u", HubSettings(builder={"url": "http://b"}))
    phases = apply_phases(manifests)
    assert [m["kind"] for m in phases[0]] == ["Namespace"]
    assert [m["kind"] for m in phases[-1]] == ["RoleBinding"]
    assert "Role" in [m["kind"] for m in phases[1]]
    assert sum(len(p) for p in phases) == len(manifests)


def test_hub_cluster_role_holds_what_the_notebook_role_grants() -> None:
    from hub_config.rbac import hub_cluster_role

    rules = hub_cluster_role()["rules"]
    builds = [r for r in rules if r["apiGroups"] == [k.BUILDER_API_GROUP]]
    assert builds and set(k.BUILDER_VERBS) <= set(builds[0]["verbs"])
    assert not any("*" in r["verbs"] or "*" in r["resources"] for r in rules)
    assert not any("secrets" in r["resources"] for r in rules)
