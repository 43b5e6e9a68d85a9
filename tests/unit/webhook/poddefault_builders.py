"""Small builders for pods, PodDefaults and AdmissionReviews, shaped as the apiserver sends them."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from typing import Any

NS = "team-a"


def pod(name: str = "nb", namespace: str | None = NS, labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None, containers: list[dict[str, Any]] | None = None,
        **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": containers if containers is not None else [container("main")], **spec},
    }


def container(name: str, image: str = "jupyter/base:1", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **fields}


def poddefault(name: str, namespace: str = NS, selector: dict[str, Any] | None = None, rv: str = "1",
               **spec: Any) -> dict[str, Any]:
    """A PodDefault selecting `name: "true"` pods (Kubeflow's convention) unless a selector is given."""
    return {
        "apiVersion": "kubeflow.org/v1alpha1",
        "kind": "PodDefault",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv, "uid": f"uid-{name}"},
        "spec": {"selector": selector if selector is not None else {"matchLabels": {name: "true"}}, **spec},
    }


def review(obj: dict[str, Any] | None, namespace: str = NS, operation: str = "CREATE",
           resource: tuple[str, str, str] = ("", "v1", "pods"), dry_run: bool = False,
           uid: str | None = None) -> dict[str, Any]:
    group, version, plural = resource
    request: dict[str, Any] = {
        "uid": uid or str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": "Pod"},
        "resource": {"group": group, "version": version, "resource": plural},
        "requestKind": {"group": group, "version": version, "kind": "Pod"},
        "requestResource": {"group": group, "version": version, "resource": plural},
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": copy.deepcopy(obj) if obj is not None else None,
        "oldObject": None,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def decode_patch(response: dict[str, Any]) -> list[dict[str, Any]]:
    assert response.get("patchType") == "JSONPatch"
    return json.loads(base64.b64decode(response["patch"]))


def apiserver_roundtrip(obj: Any) -> Any:
    """What the apiserver does to injected entries before a webhook sees them again: defaulting of
    volume modes and fieldRef apiVersion, and Go's omitempty dropping "", plain false and empty lists/maps."""
    def walk(value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                w = walk(v, k)
                dropped_false = w is False and k == "readOnly"  # a plain bool; *bool fields keep false
                if w is None or dropped_false or w == "" or w == [] or (w == {} and k not in ("emptyDir", "resources")):
                    continue
                out[k] = w
            if key in ("secret", "configMap") and "defaultMode" not in out:
                out["defaultMode"] = 420
            if key == "fieldRef" and "apiVersion" not in out:
                out["apiVersion"] = "v1"
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(copy.deepcopy(obj))
