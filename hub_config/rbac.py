"""The cluster permissions the hub itself needs, as a ClusterRole manifest (pure).

User namespaces are created on demand, so the hub needs cluster-wide rights (KubeSpawner says as much for
`enable_user_namespaces`). This is the least we found to work, verified by an integration test that
provisions and dry-runs as a service account bound to exactly this role. The chart renders the same rules;
keeping them here, next to the code that makes the calls, lets one test catch drift.

Why the `builds` rule: RBAC forbids granting permissions you do not hold (escalation prevention), so the hub
must itself hold what the notebook Role grants before it can create that Role.
"""

from __future__ import annotations

from typing import Any

from hub_config import constants as k
from hub_config.namespaces import managed_labels

HUB_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch", "create", "patch"]},
    # KubeSpawner: the pod and PVC of each server, events for progress (reflectors watch all namespaces).
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "delete"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"],
     "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
    # Provisioning of each user namespace.
    {"apiGroups": [""], "resources": ["resourcequotas", "limitranges", "serviceaccounts"],
     "verbs": ["get", "create", "patch"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
     "verbs": ["get", "create", "patch"]},
    {"apiGroups": [k.BUILDER_API_GROUP], "resources": [k.BUILDER_RESOURCE], "verbs": list(k.BUILDER_VERBS)},
    # The default PodDefaults of each namespace; list/watch in all namespaces for hub_config.poddefault_cache.
    {"apiGroups": [k.PODDEFAULT_GROUP], "resources": [k.PODDEFAULT_PLURAL],
     "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
]


def hub_cluster_role(name: str = "notebook-platform-hub") -> dict[str, Any]:
    """The ClusterRole to bind to the hub's ServiceAccount."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": managed_labels("hub")},
        "rules": [dict(r) for r in HUB_RULES],
    }
