""""What will my choices inject?": a server-side dry run of the notebook pod, summarised for the form.

The apiserver is the authority on what a pod looks like after admission (DESIGN.md), so instead of
re-implementing the webhook's merge in the hub, we render the pod exactly as a spawn would, create it with
dryRun=All (the real webhook, quota, LimitRange and Pod Security all run, nothing is stored) and show the
difference. `describe_injection` is the pure part; `SpawnPreviewHandler` is the hub endpoint the form's
button calls (POST /hub/spawn-preview[/<server>], same form data as the spawn itself).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from hub_config.selectors import applied_poddefaults

NOTEBOOK_CONTAINER = "notebook"  # KubeSpawner's container name


def _by_name(items: Sequence[Mapping[str, Any]] | None) -> dict[str, Mapping[str, Any]]:
    return {str(i.get("name")): i for i in (items or [])}


def _added(before: Sequence[Any] | None, after: Sequence[Any] | None) -> list[Any]:
    b = list(before or [])
    return [x for x in (after or []) if x not in b]


def _env_as_stored(var: Mapping[str, Any]) -> dict[str, Any]:
    """An env entry as the apiserver stores it: an empty `value` is omitted, so `{"name": "X", "value": ""}`
    before admission and `{"name": "X"}` after are the same variable, not an injected one."""
    return {key: v for key, v in var.items() if not (key == "value" and v in ("", None))}


def _env_summary(var: Mapping[str, Any]) -> dict[str, Any]:
    """Name and value, or where the value comes from (a secret's key, never its content)."""
    if "value" in var:
        return {"name": var["name"], "value": var["value"]}
    return {"name": var["name"], "valueFrom": var.get("valueFrom")}


def _main_container(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    containers = (pod.get("spec") or {}).get("containers") or []
    return _by_name(containers).get(NOTEBOOK_CONTAINER) or (containers[0] if containers else {})


def describe_injection(before: Mapping[str, Any], after: Mapping[str, Any],
                       poddefaults: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What admission added to the pod (env, mounts, volumes, tolerations, sidecars...) and which
    PodDefaults match its final labels."""
    b_spec, a_spec = before.get("spec") or {}, after.get("spec") or {}
    b_meta, a_meta = before.get("metadata") or {}, after.get("metadata") or {}
    b_main, a_main = _main_container(before), _main_container(after)
    b_env = {e["name"]: _env_as_stored(e) for e in b_main.get("env") or []}
    labels = a_meta.get("labels") or {}
    out: dict[str, Any] = {
        "poddefaults": applied_poddefaults(poddefaults, labels),
        "labels": {key: v for key, v in labels.items() if (b_meta.get("labels") or {}).get(key) != v},
        "annotations": {key: v for key, v in (a_meta.get("annotations") or {}).items()
                        if (b_meta.get("annotations") or {}).get(key) != v},
        "env": [_env_summary(e) for e in a_main.get("env") or [] if b_env.get(e["name"]) != _env_as_stored(e)],
        "envFrom": _added(b_main.get("envFrom"), a_main.get("envFrom")),
        "volumeMounts": [{"name": m.get("name"), "mountPath": m.get("mountPath")}
                         for m in _added(b_main.get("volumeMounts"), a_main.get("volumeMounts"))],
        "volumes": [v.get("name") for v in _added(b_spec.get("volumes"), a_spec.get("volumes"))],
        "tolerations": _added(b_spec.get("tolerations"), a_spec.get("tolerations")),
        "imagePullSecrets": _added(b_spec.get("imagePullSecrets"), a_spec.get("imagePullSecrets")),
        "containers": [n for n in _by_name(a_spec.get("containers")) if n not in _by_name(b_spec.get("containers"))],
        "initContainers": [n for n in _by_name(a_spec.get("initContainers"))
                           if n not in _by_name(b_spec.get("initContainers"))],
        "resources": a_main.get("resources") or {},
    }
    if a_spec.get("serviceAccountName") != b_spec.get("serviceAccountName"):
        out["serviceAccountName"] = a_spec.get("serviceAccountName")
    return out


async def preview_pod(spawner: Any, settings: Any, provisioner: Any) -> dict[str, Any]:
    """Renders the pod as a spawn would, dry-runs it, returns `describe_injection`'s summary.

    `spawner` must be a throwaway instance (its traits get the profile's overrides); `provisioner` is the
    hub's `Provisioner` (the namespace must exist and hold the default PodDefaults for the dry run).
    """
    from hub_config import kube
    from hub_config.hooks import label_pod_for_configurations

    api = spawner.api.api_client
    await provisioner.ensure(api, spawner.user.name, spawner.namespace)
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    pod, poddefaults = await label_pod_for_configurations(spawner, pod, settings)
    before = api.sanitize_for_serialization(pod)
    pod.metadata.name = None
    pod.metadata.generate_name = "preview-"  # never collides with a running server's pod
    after = await kube.dry_run_pod(api, spawner.namespace, pod)
    return describe_injection(before, after, poddefaults)


def make_preview_handler(settings: Any, provisioner: Any) -> type:
    """The tornado handler class, bound to settings (imported lazily: jupyterhub is only in the hub)."""
    from jupyterhub.handlers.base import BaseHandler
    from jupyterhub.utils import maybe_future
    from kubernetes_asyncio.client.exceptions import ApiException
    from tornado import web

    from hub_config import kube
    from hub_config.messages import SpawnError

    class SpawnPreviewHandler(BaseHandler):  # type: ignore[misc]
        """POST the spawn form here: JSON of what the pod would get. Own servers only."""

        @web.authenticated
        async def post(self, server_name: str | None = None) -> None:
            user = self.current_user
            name = server_name or ""
            form = {key: [v.decode("utf8") for v in vals] for key, vals in self.request.body_arguments.items()}
            self.set_header("Content-Type", "application/json")
            try:
                real = user.get_or_create_spawner(name, name)
                options = await maybe_future(real.run_options_from_form(form))
                # A fresh spawner, so the profile's overrides never touch a running server's spawner.
                probe = user._new_spawner(name, user_options=options)
                result = await preview_pod(probe, settings, provisioner)
            except SpawnError as e:
                self.set_status(400)
                result = {"detail": e.jupyterhub_message}
            except ApiException as e:
                self.set_status(422 if e.status in (400, 403, 422) else 502)
                result = {"detail": kube.explain_refusal(e)}
            except ValueError as e:  # bad profile / server name from the form
                self.set_status(400)
                result = {"detail": str(e)}
            self.finish(json.dumps(result))

    return SpawnPreviewHandler


PREVIEW_ROUTE = r"/spawn-preview(?:/([^/]+))?"
