"""KubeSpawner hooks that tie the pure pieces to a spawn; each is a factory closing over the settings.

Order within one spawn (JupyterHub, then KubeSpawner):
1. `options_from_form` turns the submitted form into `user_options`;
2. `pre_spawn_hook` provisions the user's namespace (create or bring up to date), then, unless the hub's
   watch-fed copy of the PodDefaults can answer (hub_config.poddefault_cache), starts reading the namespace's
   PodDefaults, which runs while KubeSpawner makes the workspace claim;
3. KubeSpawner applies the profile, ensures the workspace PVC and renders the pod;
4. `modify_pod_hook` adds the labels that make the chosen PodDefaults apply and, when the webhook may not know
   the namespace's PodDefaults yet (provisioning wrote them moments ago) or with `preflight_dry_run`,
   dry-runs the pod through admission first;
5. KubeSpawner creates the pod; a refusal becomes a readable message (hub_config.spawner).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from hub_config import constants as k
from hub_config import kube
from hub_config.form import render_options_form
from hub_config.messages import SpawnError
from hub_config.namespaces import default_poddefaults
from hub_config.poddefault_cache import POD_DEFAULTS, PodDefaultCache, poddefaults_for_start
from hub_config.provisioner import Provisioner
from hub_config.selectors import SelectionConflict, applied_poddefaults, labels_for_selection
from hub_config.settings import HubSettings

log = logging.getLogger(__name__)


def preselected_names(settings: HubSettings) -> list[str]:
    """Configurations applied when a spawn request (e.g. the REST API) does not say which it wants."""
    return [*settings.preselected_configurations,
            *(pd.name for pd in default_poddefaults(settings) if pd.preselected)]


def chosen_configurations(user_options: dict[str, Any] | None, settings: HubSettings) -> list[str]:
    """The user's choice; absent (not empty) means the operator's preselection."""
    opts = user_options or {}
    if k.USER_OPTION_CONFIGURATIONS not in opts:
        return preselected_names(settings)
    chosen = opts[k.USER_OPTION_CONFIGURATIONS]
    if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
        raise SpawnError("configurations must be a list of PodDefault names")
    return chosen


PREFETCH_ATTR = "poddefaults_prefetch"


def make_pre_spawn_hook(provisioner: Provisioner, cache: PodDefaultCache | None = None
                        ) -> Callable[[Any], Awaitable[None]]:
    async def pre_spawn_hook(spawner: Any) -> None:
        """Provisions the user's namespace (or awaits the pass their login started); a refusal becomes a
        message, not a traceback. Then starts the live PodDefault read the pod hook needs, unless the hub's
        copy (hub_config.poddefault_cache) is ready and provisioning did not just write to the namespace."""
        api = spawner.api.api_client
        try:
            await provisioner.ensure(api, spawner.user.name, spawner.namespace)
        except ApiException as e:
            raise SpawnError(f"Could not prepare your namespace {spawner.namespace}: "
                             f"{kube.explain_refusal(e)}") from e
        spawner.namespace_ready = True
        copy = cache or POD_DEFAULTS
        copy.start(spawner)
        if copy.ready() and not provisioner.wrote_poddefaults_within(
                spawner.namespace, provisioner.settings.preflight_webhook_wait):
            return  # the pod hook reads the hub's watch-fed copy
        prefetch = asyncio.ensure_future(kube.list_poddefaults(api, spawner.namespace))
        prefetch.add_done_callback(_retrieve)  # a spawn that fails before the pod hook never awaits it
        setattr(spawner, PREFETCH_ATTR, prefetch)

    return pre_spawn_hook


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def label_pod(pod: Any, poddefaults: list[dict[str, Any]], chosen: list[str], explicit: bool) -> Any:
    """Adds the labels that make the chosen PodDefaults apply to a V1Pod; a conflict is a SpawnError.

    `explicit` is False when the user did not choose (REST API spawn): preselected names the operator has not
    created in this namespace are then skipped instead of refused.
    """
    if not explicit:
        present = {pd["metadata"]["name"] for pd in poddefaults}
        chosen = [c for c in chosen if c in present]
    if not chosen:
        return pod
    labels = labels_for_selection(poddefaults, chosen, dict(pod.metadata.labels or {}))
    if isinstance(labels, SelectionConflict):
        raise SpawnError(f"The chosen configurations cannot be combined: {labels.reason}")
    pod.metadata.labels = {**(pod.metadata.labels or {}), **labels}
    pod.metadata.annotations = {**(pod.metadata.annotations or {}),
                                k.CONFIGURATIONS_ANNOTATION: ",".join(chosen)}
    return pod


async def label_pod_for_configurations(spawner: Any, pod: Any, settings: HubSettings,
                                       cache: PodDefaultCache | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """Reads the namespace's PodDefaults now (the form may be stale): the live list the pre-spawn hook started,
    else the hub's copy (or a live list, hub_config.poddefault_cache); then labels the pod for the choice."""
    chosen = chosen_configurations(spawner.user_options, settings)
    explicit = k.USER_OPTION_CONFIGURATIONS in (spawner.user_options or {})
    prefetch = getattr(spawner, PREFETCH_ATTR, None)
    setattr(spawner, PREFETCH_ATTR, None)
    poddefaults = await (prefetch if prefetch is not None else poddefaults_for_start(
        spawner.api.api_client, spawner.namespace, chosen if explicit else [], cache or POD_DEFAULTS))
    return label_pod(pod, poddefaults, chosen, explicit), poddefaults


def unapplied(dry_run_pod: dict[str, Any], expected: list[str]) -> list[str]:
    """Expected PodDefaults the webhook did not record on the dry-run pod."""
    annotations = (dry_run_pod.get("metadata") or {}).get("annotations") or {}
    return [n for n in expected if k.PODDEFAULT_APPLIED_PREFIX + n not in annotations]


async def preflight(spawner: Any, pod: Any, poddefaults: list[dict[str, Any]], settings: HubSettings) -> None:
    """Dry-runs the pod; quota, LimitRange, Pod Security and PodDefault conflicts surface here.

    It also waits (briefly) for the webhook to know PodDefaults that provisioning just created, so the
    first spawn of a new user gets the same configuration as every later one.
    """
    expected = applied_poddefaults(poddefaults, pod.metadata.labels or {})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.preflight_webhook_wait
    while True:
        try:
            after = await kube.dry_run_pod(spawner.api.api_client, spawner.namespace, pod)
        except ApiException as e:
            if e.status == 409:  # a previous pod still exists; KubeSpawner deletes it and retries
                return
            raise SpawnError(kube.explain_refusal(e)) from e
        missing = unapplied(after, expected)
        if not missing or loop.time() >= deadline:
            break
        await asyncio.sleep(0.5)
    if missing:
        log.warning("PodDefaults not applied by the webhook (is it running?): %s in %s",
                    ", ".join(missing), spawner.namespace)


def add_readiness_probe(pod: Any, base_url: str, port: int) -> Any:
    """Gives the notebook container a readiness probe on the server's `api` URL, unless it has one.

    Without it the kubelet calls the pod Ready when the process starts, seconds before Jupyter Server
    answers; KubeSpawner (which waits for Ready containers) then hands over early and JupyterHub polls the
    URL with a backoff. With it, Ready means "answers", as it does for every other Kubernetes service."""
    from kubernetes_asyncio.client import V1HTTPGetAction, V1Probe

    for container in pod.spec.containers:
        if container.name == k.NOTEBOOK_CONTAINER and container.readiness_probe is None:
            container.readiness_probe = V1Probe(
                http_get=V1HTTPGetAction(path=base_url.rstrip("/") + "/api", port=port),
                period_seconds=1, timeout_seconds=2, failure_threshold=1, success_threshold=1)
    return pod


def make_modify_pod_hook(settings: HubSettings, provisioner: Provisioner | None = None,
                         cache: PodDefaultCache | None = None) -> Callable[[Any, Any], Awaitable[Any]]:
    async def modify_pod_hook(spawner: Any, pod: Any) -> Any:
        """Probe and labels; the dry run only when asked for, or when the webhook may not know the namespace's
        PodDefaults yet. Without it, the create itself surfaces any refusal (hub_config.spawner)."""
        pod = add_readiness_probe(pod, spawner.server.base_url, spawner.port)
        pod, poddefaults = await label_pod_for_configurations(spawner, pod, settings, cache)
        recent = provisioner is not None and provisioner.wrote_poddefaults_within(
            spawner.namespace, settings.preflight_webhook_wait)
        if settings.preflight_dry_run or recent:
            await preflight(spawner, pod, poddefaults, settings)
        return pod

    return modify_pod_hook


def make_options_form(settings: HubSettings, preview_url: str | None) -> Callable[[Any], Awaitable[str]]:
    async def options_form(spawner: Any) -> str:
        return await render_options_form(spawner, settings, preview_url)

    return options_form
