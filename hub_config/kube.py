"""The hub's few Kubernetes calls, async (`kubernetes_asyncio`, the client KubeSpawner already runs on).

Writes are server-side apply with one field manager: the request states the whole desired object, so the
same call creates, updates and is harmless to repeat, and fields other managers own (labels someone added
by hand) survive. Two applies of a not-yet-existing object can race to create it; the loser gets 409 and
simply applies again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from hub_config import constants as k
from hub_config.messages import explain_api_error

log = logging.getLogger(__name__)

# JSON is YAML, but the client would json.dumps() the body with \uXXXX escapes, and the apiserver's YAML
# parser rejects the surrogate pairs that characters outside the BMP become (an emoji in a username). With a
# charset parameter the client passes our own UTF-8 bytes through untouched; the apiserver ignores it.
APPLY_CONTENT_TYPE = "application/apply-patch+yaml; charset=utf-8"
_CONFLICT_RETRIES = 5

# (apiVersion, kind) -> (typed API class, patch method, namespaced?)
_TYPED: dict[tuple[str, str], tuple[str, str, bool]] = {
    ("v1", "Namespace"): ("CoreV1Api", "patch_namespace", False),
    ("v1", "ResourceQuota"): ("CoreV1Api", "patch_namespaced_resource_quota", True),
    ("v1", "LimitRange"): ("CoreV1Api", "patch_namespaced_limit_range", True),
    ("v1", "ServiceAccount"): ("CoreV1Api", "patch_namespaced_service_account", True),
    ("v1", "PersistentVolumeClaim"): ("CoreV1Api", "patch_namespaced_persistent_volume_claim", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("RbacAuthorizationV1Api", "patch_namespaced_role", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"):
        ("RbacAuthorizationV1Api", "patch_namespaced_role_binding", True),
}


def ref(manifest: Mapping[str, Any]) -> str:
    """`Kind namespace/name`, for logs and results."""
    meta = manifest["metadata"]
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{manifest['kind']} {where}{meta['name']}"


def apply_body(manifest: Mapping[str, Any]) -> bytes:
    """The apply request body: JSON as UTF-8, no escapes."""
    return json.dumps(manifest, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def _apply_once(api: client.ApiClient, manifest: Mapping[str, Any]) -> object:
    meta = manifest["metadata"]
    body = apply_body(manifest)
    opts: dict[str, Any] = {"field_manager": k.FIELD_MANAGER, "force": True, "_content_type": APPLY_CONTENT_TYPE}
    if manifest["kind"] == k.PODDEFAULT_KIND:
        return await client.CustomObjectsApi(api).patch_namespaced_custom_object(
            k.PODDEFAULT_GROUP, k.PODDEFAULT_VERSION, meta["namespace"], k.PODDEFAULT_PLURAL, meta["name"],
            body, **opts)
    api_cls, method, namespaced = _TYPED[(manifest["apiVersion"], manifest["kind"])]
    typed = getattr(client, api_cls)(api)
    if namespaced:
        return await getattr(typed, method)(meta["name"], meta["namespace"], body, **opts)
    return await getattr(typed, method)(meta["name"], body, **opts)


async def apply(api: client.ApiClient, manifest: Mapping[str, Any]) -> object:
    """Server-side apply of one object (create or update), retrying the create race."""
    for attempt in range(_CONFLICT_RETRIES):
        try:
            return await _apply_once(api, manifest)
        except ApiException as e:
            if e.status != 409 or attempt == _CONFLICT_RETRIES - 1:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


async def apply_all(api: client.ApiClient, manifests: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Applies namespaced objects concurrently; a PodDefault without its CRD is skipped (False), not fatal.

    Without the CRD the hub still spawns plain notebooks, which beats refusing every user because the
    PodDefault webhook is not installed yet.
    """
    async def one(m: Mapping[str, Any]) -> bool:
        try:
            await apply(api, m)
            return True
        except ApiException as e:
            if e.status == 404 and m["kind"] == k.PODDEFAULT_KIND:
                log.warning("PodDefault CRD missing; default PodDefault not created", extra={"object": ref(m)})
                return False
            raise

    return list(await asyncio.gather(*(one(m) for m in manifests)))


async def list_poddefaults(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    """The PodDefaults in one namespace, as plain dicts sorted by name ([] if the CRD or namespace is absent)."""
    try:
        resp = await client.CustomObjectsApi(api).list_namespaced_custom_object(
            k.PODDEFAULT_GROUP, k.PODDEFAULT_VERSION, namespace, k.PODDEFAULT_PLURAL)
    except ApiException as e:
        if e.status == 404:
            return []
        raise
    return by_name(resp.get("items", []))


def by_name(poddefaults: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """PodDefaults sorted by name: the order the form and a start see, from a live list or the hub's copy."""
    return sorted(poddefaults, key=lambda pd: (pd.get("metadata") or {}).get("name", ""))


async def prune_default_poddefaults(api: client.ApiClient, namespace: str, keep: set[str]) -> list[str]:
    """Deletes default PodDefaults we created that settings no longer list; returns their names."""
    selector = f"{k.MANAGED_BY_KEY}={k.MANAGED_BY},{k.COMPONENT_KEY}={k.COMPONENT_DEFAULT_PODDEFAULT}"
    objects = client.CustomObjectsApi(api)
    try:
        resp = await objects.list_namespaced_custom_object(
            k.PODDEFAULT_GROUP, k.PODDEFAULT_VERSION, namespace, k.PODDEFAULT_PLURAL, label_selector=selector)
    except ApiException as e:
        if e.status == 404:
            return []
        raise
    gone: list[str] = []
    for pd in resp.get("items", []):
        name = pd["metadata"]["name"]
        if name in keep:
            continue
        try:
            await objects.delete_namespaced_custom_object(
                k.PODDEFAULT_GROUP, k.PODDEFAULT_VERSION, namespace, k.PODDEFAULT_PLURAL, name)
            gone.append(name)
        except ApiException as e:
            if e.status != 404:
                raise
    return gone


async def dry_run_pod(api: client.ApiClient, namespace: str, pod: Any) -> dict[str, Any]:
    """Creates the pod with dryRun=All: the full admission chain runs (webhook, quota, LimitRange, PSA)
    and the apiserver returns the pod as it would be stored, nothing is persisted.

    `pod` is a V1Pod or a dict; the result is a plain dict (camelCase, as the API returns it).
    """
    core = client.CoreV1Api(api)
    # Raw JSON keeps every field the webhook may add; without preloading the client skips its status check.
    resp: Any = await core.create_namespaced_pod(namespace, pod, dry_run="All", _preload_content=False)
    data = await resp.read()
    if not 200 <= resp.status <= 299:
        error = ApiException(status=resp.status, reason=resp.reason)
        error.body = data
        raise error
    return dict(json.loads(data))


def api_error_detail(e: ApiException) -> tuple[int, str, str]:
    """(status, reason, message) from an ApiException whose body is a Kubernetes `Status`."""
    message, reason = "", ""
    body = e.body.decode() if isinstance(e.body, bytes) else e.body
    if body:
        try:
            status = json.loads(body)
            message = str(status.get("message", ""))
            reason = str(status.get("reason", ""))
        except (ValueError, AttributeError):
            message = str(body)[:2000]
    return int(e.status or 0), reason or str(e.reason or ""), message


def explain_refusal(e: ApiException) -> str:
    """The readable sentence (plus the apiserver's detail) for a refused request; see `explain_api_error`."""
    return explain_api_error(*api_error_detail(e))
