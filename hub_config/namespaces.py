"""Per-user namespaces: what each one contains (pure manifests) and bringing it up to date (one async call).

Every spawn runs `ensure_user_namespace` from the pre-spawn hook. It server-side-applies the whole desired
state, so the first spawn creates it, later spawns bring it up to date with the current settings (a bigger
quota, a new default PodDefault), and two spawns of one user racing each other both succeed: apply is
idempotent and the I/O layer retries the rare 409 of two simultaneous creates.

A namespace gets:
- labels enabling the PodDefault webhook and Pod Security Admission, plus who owns it;
- a ResourceQuota and a LimitRange from settings (the LimitRange gives build Jobs defaults that fit the quota);
- a `notebook` ServiceAccount whose only permission is the builder's `builds` (Role + RoleBinding);
- the operator's default PodDefaults (e.g. the builder URL and registry as env).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubespawner.slugs import is_valid_label, safe_slug

from hub_config import constants as k
from hub_config.settings import DefaultPodDefault, HubSettings

log = logging.getLogger(__name__)

# KubeSpawner's cap for the {username} slug in templates (spawner.py, `_slug_max_length`).
USERNAME_SLUG_MAX = 48
BUILDER_ROLE = "notebook-platform-builder"


# -- names ------------------------------------------------------------------------------------------------

def namespace_template(settings: HubSettings) -> str:
    """`c.KubeSpawner.user_namespace_template`; `{username}` is KubeSpawner's safe slug (<= 48 chars)."""
    return settings.namespace_prefix + "{username}"


def namespace_name(username: str, prefix: str) -> str:
    """The namespace KubeSpawner computes for `username` with our template and the 'safe' slug scheme.

    Valid usernames stay readable ("alice" -> "nbp-alice"); anything else (capitals, dots, unicode, too
    long, '--') becomes a truncated slug plus a hash of the raw name, so two users never share a namespace.
    """
    return prefix + safe_slug(username, max_length=USERNAME_SLUG_MAX)


def user_label_value(username: str) -> str:
    """A label-safe stand-in for the username (the exact name goes in an annotation)."""
    return safe_slug(username, is_valid=is_valid_label)


def managed_labels(component: str) -> dict[str, str]:
    """Labels every object we create carries."""
    return {k.MANAGED_BY_KEY: k.MANAGED_BY, k.PART_OF_KEY: k.PART_OF, k.COMPONENT_KEY: component}


def _meta(name: str, namespace: str | None, component: str, labels: Mapping[str, str] | None = None
          ) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**(labels or {}), **managed_labels(component)}}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


# -- manifests ---------------------------------------------------------------------------------------------

def namespace_manifest(name: str, username: str, settings: HubSettings) -> dict[str, Any]:
    """The namespace, labelled for the PodDefault webhook and Pod Security Admission."""
    psa = settings.pod_security
    labels: dict[str, str] = {
        **settings.namespace_labels,
        k.PODDEFAULTS_LABEL: k.PODDEFAULTS_ENABLED,
        k.PSA_ENFORCE_KEY: psa.enforce,
        k.PSA_ENFORCE_VERSION_KEY: psa.enforce_version,
        k.USER_LABEL: user_label_value(username),
    }
    if psa.warn:
        labels[k.PSA_WARN_KEY] = psa.warn
    if psa.audit:
        labels[k.PSA_AUDIT_KEY] = psa.audit
    meta = _meta(name, None, k.COMPONENT_USER_NAMESPACE, labels)
    meta["annotations"] = {**settings.namespace_annotations, k.USERNAME_ANNOTATION: username}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def resource_quota_manifest(namespace: str, settings: HubSettings) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": _meta("notebook-platform", namespace, k.COMPONENT_QUOTA),
        "spec": {"hard": dict(settings.quota)},
    }


def limit_range_manifest(namespace: str, settings: HubSettings) -> dict[str, Any]:
    lr = settings.limit_range
    item: dict[str, Any] = {
        "type": "Container",
        "default": {"cpu": lr.default_cpu, "memory": lr.default_memory},
        "defaultRequest": {"cpu": lr.default_request_cpu, "memory": lr.default_request_memory},
    }
    maximum = {key: v for key, v in (("cpu", lr.max_cpu), ("memory", lr.max_memory)) if v}
    if maximum:
        item["max"] = maximum
    return {
        "apiVersion": "v1", "kind": "LimitRange",
        "metadata": _meta("notebook-platform", namespace, k.COMPONENT_QUOTA),
        "spec": {"limits": [item]},
    }


def service_account_manifest(namespace: str, settings: HubSettings) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": _meta(settings.notebook_service_account, namespace, k.COMPONENT_NOTEBOOK_IDENTITY),
    }


def builder_role_manifest(namespace: str, settings: HubSettings) -> dict[str, Any]:
    """The builder's `builds`, and `get` on this user's workspace claim, nothing else.

    The builder checks that a caller may read the claim it names as a build context (so one token
    cannot build from a volume it could not mount); granting `get` on exactly that claim keeps a
    notebook token from reading or changing anything else in the cluster.
    """
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": _meta(BUILDER_ROLE, namespace, k.COMPONENT_BUILDER_ACCESS),
        "rules": [
            {"apiGroups": [k.BUILDER_API_GROUP], "resources": [k.BUILDER_RESOURCE],
             "verbs": list(k.BUILDER_VERBS)},
            {"apiGroups": [""], "resources": ["persistentvolumeclaims"],
             "resourceNames": [settings.storage.pvc_name], "verbs": ["get"]},
        ],
    }


def builder_role_binding_manifest(namespace: str, settings: HubSettings) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": _meta(BUILDER_ROLE, namespace, k.COMPONENT_BUILDER_ACCESS),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": BUILDER_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": settings.notebook_service_account,
                      "namespace": namespace}],
    }


def default_poddefaults(settings: HubSettings) -> list[DefaultPodDefault]:
    """The operator's default PodDefaults, plus the builder one when a builder URL is configured."""
    out = list(settings.default_poddefaults)
    b = settings.builder
    if b.url and all(d.name != b.poddefault_name for d in out):
        env = [{"name": k.ENV_BUILDER_URL, "value": b.url}]
        if b.registry:
            env.append({"name": k.ENV_REGISTRY, "value": b.registry})
        out.append(DefaultPodDefault(
            name=b.poddefault_name,
            spec={"desc": "Build images from this notebook (builder endpoint and registry)",
                  "selector": {"matchLabels": {f"{k.DOMAIN}/builder": "true"}},
                  "env": env},
        ))
    return out


def poddefault_manifest(namespace: str, pd: DefaultPodDefault) -> dict[str, Any]:
    """A Kubeflow PodDefault; a spec without selector selects `<name>: "true"`, Kubeflow's convention."""
    spec = copy.deepcopy(pd.spec)
    spec.setdefault("selector", {"matchLabels": {pd.name: "true"}})
    spec.setdefault("desc", pd.name)
    return {
        "apiVersion": k.PODDEFAULT_API_VERSION, "kind": k.PODDEFAULT_KIND,
        "metadata": _meta(pd.name, namespace, k.COMPONENT_DEFAULT_PODDEFAULT),
        "spec": spec,
    }


def namespace_manifests(namespace: str, username: str, settings: HubSettings) -> list[dict[str, Any]]:
    """Everything a user namespace contains, the Namespace first (the rest needs it)."""
    return [
        namespace_manifest(namespace, username, settings),
        resource_quota_manifest(namespace, settings),
        limit_range_manifest(namespace, settings),
        service_account_manifest(namespace, settings),
        builder_role_manifest(namespace, settings),
        builder_role_binding_manifest(namespace, settings),
        *(poddefault_manifest(namespace, pd) for pd in default_poddefaults(settings)),
    ]


def apply_phases(manifests: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Groups that can be applied concurrently, in order: the Namespace; everything in it; RoleBindings.

    RoleBindings go last because RBAC's escalation check reads the bound Role: binding a Role that does not
    exist yet fails with NotFound for any hub that is not cluster-admin.
    """
    first = [m for m in manifests if m["kind"] == "Namespace"]
    last = [m for m in manifests if m["kind"] == "RoleBinding"]
    middle = [m for m in manifests if m["kind"] not in ("Namespace", "RoleBinding")]
    return [p for p in (first, middle, last) if p]


# -- the thin I/O edge -----------------------------------------------------------------------------------

@dataclass
class ProvisionResult:
    """What one provisioning pass did, for logs and tests."""

    namespace: str
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)

    def applied_any(self, kind: str) -> bool:
        """Whether the pass applied an object of this kind (`applied` holds `kube.ref` strings: `Kind ns/name`)."""
        return any(ref.split(" ", 1)[0] == kind for ref in self.applied)


async def ensure_user_namespace(api: Any, username: str, namespace: str, settings: HubSettings
                                ) -> ProvisionResult:
    """Creates or updates the user's namespace and everything in it; safe to call concurrently.

    `api` is a `kubernetes_asyncio.client.ApiClient`. Default PodDefaults we made earlier but the operator
    has since removed from settings are deleted; PodDefaults made by others are never touched.
    """
    from hub_config import kube  # the I/O layer, imported late so pure users never load the client

    manifests = namespace_manifests(namespace, username, settings)
    result = ProvisionResult(namespace)
    for phase in apply_phases(manifests):
        outcomes = await kube.apply_all(api, phase)
        for manifest, outcome in zip(phase, outcomes, strict=True):
            (result.applied if outcome else result.skipped).append(kube.ref(manifest))
    wanted = {m["metadata"]["name"] for m in manifests if m["kind"] == k.PODDEFAULT_KIND}
    result.pruned = await kube.prune_default_poddefaults(api, namespace, keep=wanted)
    log.info("namespace provisioned", extra={"namespace": namespace, "applied": len(result.applied),
                                              "skipped": result.skipped, "pruned": result.pruned})
    return result
