"""Service accounts, tokens and RBAC for the builder's integration tests (importable: tests put this folder on
sys.path, as pytest does for test modules without __init__.py)."""

from __future__ import annotations

from typing import Any

from kubernetes import client as kc

from builder import constants as c

REG = "registry.local:5000"
HASH = "sha256:" + "5e" * 32


def make_sa(kube_api: Any, namespace: str, name: str = "notebook") -> str:
    """A service account and a token for it from the TokenRequest API (what a notebook pod mounts)."""
    core = kc.CoreV1Api(kube_api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    tr = core.create_namespaced_service_account_token(name, namespace, {"spec": {"expirationSeconds": 3600}})
    return str(tr.status.token)


def grant(kube_api: Any, namespace: str, sa_namespace: str, sa: str = "notebook",
          verbs: tuple[str, ...] = ("create", "get", "list", "delete"), volume: bool = True,
          secrets: bool = False) -> None:
    """A Role on the virtual `builds` resource (plus reading the workspace PVC) bound to the service account."""
    rbac = kc.RbacAuthorizationV1Api(kube_api)
    rules: list[dict[str, Any]] = [{"apiGroups": [c.API_GROUP], "resources": [c.RESOURCE], "verbs": list(verbs)}]
    if volume:
        rules.append({"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get"]})
    if secrets:
        rules.append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
    name = f"builder-{sa_namespace}-{sa}"
    rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": sa_namespace}],
    })
