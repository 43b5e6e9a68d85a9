"""The spawn path without a running hub: form, workspace PVC, pod labels and the admission dry run."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub.objects import Server
from kubernetes import client
from kubespawner import KubeSpawner
from support import add_poddefault
from traitlets.config import Config

from hub_config import constants as k
from hub_config.config import configure
from hub_config.form import render_options_form
from hub_config.hooks import make_modify_pod_hook, make_pre_spawn_hook
from hub_config.messages import SpawnError
from hub_config.preview import preview_pod
from hub_config.provisioner import Provisioner, create_workspace
from hub_config.settings import HubSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")


def make_spawner(username: str, settings: HubSettings, user_options: dict[str, Any] | None = None) -> Any:
    """A NotebookSpawner configured exactly as jupyterhub_config.py does, with KubeSpawner's test hub."""
    from hub_config.spawner import NotebookSpawner

    user = SimpleNamespace(name=username, id=1, url=f"/user/{username}/")
    spawner = NotebookSpawner(_mock=True, user=user, config=configure(Config(), settings))
    spawner.user_options = user_options or {}
    spawner.server = Server(base_url=f"/user/{username}/")  # JupyterHub sets it before start
    return spawner


async def render_pod(spawner: Any) -> Any:
    """What KubeSpawner does between the pre-spawn hook and the pod create."""
    await spawner.load_user_options()
    return await spawner.get_pod_manifest()


async def alice_and_bob(settings: HubSettings, user_factory: Callable[..., tuple[str, str]]
                        ) -> list[tuple[Any, str]]:
    """Two users whose namespaces the pre-spawn hook provisioned: [(spawner, namespace)] for alice, then bob."""
    out = []
    for who in ("alice", "bob"):
        username, ns = user_factory(who)
        spawner = make_spawner(username, settings)
        await make_pre_spawn_hook(Provisioner(settings, 0))(spawner)
        out.append((spawner, ns))
    return out


async def test_spawner_namespace_is_the_provisioned_one(
    hub_settings: Callable[..., HubSettings], user_factory: Callable[..., tuple[str, str]],
) -> None:
    username, ns = user_factory("Mixed.Case")
    assert make_spawner(username, hub_settings()).namespace == ns


async def test_form_for_one_user_never_lists_another_users_poddefaults(
    kube_api: Any, poddefault_crd: str, hub_settings: Callable[..., HubSettings],
    user_factory: Callable[..., tuple[str, str]],
) -> None:
    settings = hub_settings()
    (spawner_a, ns_a), (spawner_b, ns_b) = await alice_and_bob(settings, user_factory)
    add_poddefault(kube_api, ns_a, "alice-data", {"matchLabels": {"alice-data": "true"}})
    add_poddefault(kube_api, ns_b, "bob-secret", {"matchExpressions": [{"key": "bob", "operator": "Exists"}]},
                   desc="<script>alert('bob')</script>")
    html_a = await render_options_form(spawner_a, settings)
    html_b = await render_options_form(spawner_b, settings)
    assert "alice-data" in html_a and "bob-secret" not in html_a
    assert "bob-secret" in html_b and "alice-data" not in html_b
    assert "<script>alert" not in html_b and "&lt;script&gt;" in html_b


async def test_form_before_first_spawn_shows_the_default_poddefaults(
    poddefault_crd: str, hub_settings: Callable[..., HubSettings], user_factory: Callable[..., tuple[str, str]],
) -> None:
    settings = hub_settings(builder={"url": "http://builder:8080"})
    username, _ = user_factory()
    html_text = await render_options_form(make_spawner(username, settings), settings)
    assert 'value="builder" checked' in html_text


async def test_workspace_pvc_is_read_write_many_with_the_configured_class(
    kube_async: Any, kube_api: Any, hub_settings: Callable[..., HubSettings],
    user_factory: Callable[..., tuple[str, str]],
) -> None:
    settings = hub_settings(storage={"storage_class": "nbp-test-rwx", "capacity": "3Gi"})
    username, ns = user_factory()
    spawner = make_spawner(username, settings)
    await make_pre_spawn_hook(Provisioner(settings, 0))(spawner)
    # The login makes the claim (KubeSpawner's manifest); the start skips its create, and KubeSpawner's own
    # create (a spawner replaced since the login) accepts the existing claim.
    assert await create_workspace(spawner) is True and spawner.workspace_ready
    first = client.CoreV1Api(kube_api).read_namespaced_persistent_volume_claim("workspace", ns)
    assert await create_workspace(spawner) is False
    assert await KubeSpawner._make_create_pvc_request(spawner, spawner.get_pvc_manifest(), 10) is True
    stored = client.CoreV1Api(kube_api).read_namespaced_persistent_volume_claim("workspace", ns)
    assert stored.metadata.uid == first.metadata.uid and stored.metadata.resource_version == \
        first.metadata.resource_version, "made once, never replaced or changed"
    assert stored.metadata.labels["component"] == "singleuser-storage", "KubeSpawner's labels"
    assert stored.spec.access_modes == ["ReadWriteMany"]
    assert stored.spec.storage_class_name == "nbp-test-rwx"
    assert stored.spec.resources.requests == {"storage": "3Gi"}
    assert stored.metadata.labels[k.MANAGED_BY_KEY] == "notebook-platform"
    assert stored.metadata.labels[k.WORKSPACE_LABEL] == "true"
    pod = await render_pod(spawner)
    as_dict = kube_async.sanitize_for_serialization(pod)
    mounts = {m["name"]: m["mountPath"] for m in as_dict["spec"]["containers"][0]["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in as_dict["spec"]["volumes"]
              if "persistentVolumeClaim" in v}
    assert mounts["workspace"] == "/home/jovyan" and claims["workspace"] == "workspace"


async def test_chosen_configurations_become_pod_labels_and_pass_admission(
    kube_api: Any, poddefault_crd: str, hub_settings: Callable[..., HubSettings],
    user_factory: Callable[..., tuple[str, str]],
) -> None:
    settings = hub_settings(builder={"url": "http://builder:8080"})
    username, ns = user_factory()
    spawner = make_spawner(username, settings, {"profile": "small", "configurations": ["builder", "gpu-env"]})
    await make_pre_spawn_hook(Provisioner(settings, 0))(spawner)
    add_poddefault(kube_api, ns, "gpu-env", {"matchExpressions": [
        {"key": "accelerator", "operator": "In", "values": ["nvidia", "amd"]},
        {"key": "cpu-only", "operator": "DoesNotExist"}]})
    pod = await make_modify_pod_hook(settings)(spawner, await render_pod(spawner))
    assert pod.metadata.labels[f"{k.DOMAIN}/builder"] == "true"
    assert pod.metadata.labels["accelerator"] == "nvidia" and "cpu-only" not in pod.metadata.labels
    assert pod.metadata.annotations[k.CONFIGURATIONS_ANNOTATION] == "builder,gpu-env"
    assert pod.spec.service_account_name == "notebook"
    # Ready means "answers" (the probe passed the preflight dry run through admission above)
    (notebook,) = [c for c in pod.spec.containers if c.name == k.NOTEBOOK_CONTAINER]
    assert notebook.readiness_probe.http_get.path == f"/user/{username}/api"


async def test_conflicting_configurations_are_refused_with_both_names(
    kube_api: Any, poddefault_crd: str, hub_settings: Callable[..., HubSettings],
    user_factory: Callable[..., tuple[str, str]],
) -> None:
    settings = hub_settings()
    username, ns = user_factory()
    spawner = make_spawner(username, settings, {"configurations": ["prod-db", "no-prod"]})
    await make_pre_spawn_hook(Provisioner(settings, 0))(spawner)
    add_poddefault(kube_api, ns, "prod-db", {"matchLabels": {"env": "prod"}})
    add_poddefault(kube_api, ns, "no-prod", {"matchExpressions": [{"key": "env", "operator": "NotIn",
                                                                   "values": ["prod"]}]})
    with pytest.raises(SpawnError) as e:
        await make_modify_pod_hook(settings)(spawner, await render_pod(spawner))
    assert "prod-db" in e.value.jupyterhub_message and "no-prod" in e.value.jupyterhub_message


@pytest.mark.parametrize("preflight", [False, True], ids=["refused-create", "preflight-dry-run"])
async def test_quota_exceeded_is_explained_and_nothing_is_created(
    kube_api: Any, hub_settings: Callable[..., HubSettings], user_factory: Callable[..., tuple[str, str]],
    preflight: bool,
) -> None:
    settings = hub_settings(quota={"limits.cpu": "1", "limits.memory": "4Gi"}, preflight_dry_run=preflight,
                            profiles=[{"slug": "big", "display_name": "Big", "cpu_limit": 2, "mem_limit": "1Gi"}])
    username, ns = user_factory()
    spawner = make_spawner(username, settings, {"profile": "big", "configurations": []})
    await make_pre_spawn_hook(Provisioner(settings, 0))(spawner)
    with pytest.raises(SpawnError) as e:
        pod = await make_modify_pod_hook(settings)(spawner, await render_pod(spawner))
        await spawner._make_create_pod_request(pod, 10)  # what KubeSpawner calls next
    message = e.value.jupyterhub_message
    assert "quota" in message and "limits.cpu" in message and "smaller size" in message
    assert client.CoreV1Api(kube_api).list_namespaced_pod(ns).items == []


@pytest.mark.parametrize("preflight", [False, True], ids=["refused-create", "preflight-dry-run"])
async def test_pod_security_violation_is_explained(
    kube_api: Any, hub_settings: Callable[..., HubSettings], user_factory: Callable[..., tuple[str, str]],
    preflight: bool,
) -> None:
    settings = hub_settings(preflight_dry_run=preflight,
                            profiles=[{"slug": "root", "display_name": "Root",
                                       "kubespawner_override": {"extra_pod_config": {"hostNetwork": True}}}])
    username, ns = user_factory()
    spawner = make_spawner(username, settings, {"profile": "root"})
    await make_pre_spawn_hook(Provisioner(settings, 0))(spawner)
    with pytest.raises(SpawnError, match="Pod Security level"):
        pod = await make_modify_pod_hook(settings)(spawner, await render_pod(spawner))
        await spawner._make_create_pod_request(pod, 10)
    assert client.CoreV1Api(kube_api).list_namespaced_pod(ns).items == []


async def test_preview_dry_runs_the_pod_and_lists_matching_poddefaults(
    kube_api: Any, poddefault_crd: str, hub_settings: Callable[..., HubSettings],
    user_factory: Callable[..., tuple[str, str]],
) -> None:
    settings = hub_settings(builder={"url": "http://builder:8080"})
    username, ns = user_factory()
    spawner = make_spawner(username, settings, {"profile": "small", "configurations": ["builder"]})
    summary = await preview_pod(spawner, settings, Provisioner(settings, 0))
    assert summary["poddefaults"] == ["builder"]
    assert summary["resources"]["limits"]["cpu"] == "1"
    assert client.CoreV1Api(kube_api).list_namespaced_pod(ns).items == []


async def test_the_hubs_poddefault_copy_follows_the_apiserver_per_namespace(
    kube_api: Any, poddefault_crd: str, hub_settings: Callable[..., HubSettings],
    user_factory: Callable[..., tuple[str, str]],
) -> None:
    from support import wait_for_async

    from hub_config.poddefault_cache import PodDefaultCache, poddefaults_for_start

    settings = hub_settings()
    (spawner_a, ns_a), (spawner_b, ns_b) = await alice_and_bob(settings, user_factory)
    cache = PodDefaultCache()
    cache.start(spawner_a)
    try:
        await wait_for_async(cache.ready, what="the PodDefault cache's first list")

        def names(ns: str) -> list[str]:
            return [pd["metadata"]["name"] for pd in cache.in_namespace(ns) or []]

        add_poddefault(kube_api, ns_a, "zz-data", {"matchLabels": {"data": "true"}})
        add_poddefault(kube_api, ns_a, "aa-env", {"matchLabels": {"env": "true"}})
        add_poddefault(kube_api, ns_b, "bob-secret", {"matchLabels": {"bob": "true"}})
        await wait_for_async(lambda: names(ns_a) == ["aa-env", "zz-data"], what="alice's PodDefaults, by name")
        assert names(ns_b) == ["bob-secret"], "each namespace sees only its own"
        api = spawner_a.api.api_client
        assert await poddefaults_for_start(api, ns_a, ["zz-data"], cache) == cache.in_namespace(ns_a)

        custom = client.CustomObjectsApi(kube_api)
        custom.patch_namespaced_custom_object(k.PODDEFAULT_GROUP, k.PODDEFAULT_VERSION, ns_a, k.PODDEFAULT_PLURAL,
                                              "zz-data", {"spec": {"desc": "changed"}})
        await wait_for_async(lambda: [pd["spec"]["desc"] for pd in cache.in_namespace(ns_a) or []] == [
            "aa-env", "changed"], what="the changed description")
        custom.delete_namespaced_custom_object(k.PODDEFAULT_GROUP, k.PODDEFAULT_VERSION, ns_a,
                                               k.PODDEFAULT_PLURAL, "aa-env")
        await wait_for_async(lambda: names(ns_a) == ["zz-data"], what="the deleted PodDefault gone")

        # applied a moment before a start that chooses it: the start reads live if the copy lacks it
        add_poddefault(kube_api, ns_b, "just-now", {"matchLabels": {"now": "true"}})
        got = await poddefaults_for_start(spawner_b.api.api_client, ns_b, ["just-now"], cache)
        assert [pd["metadata"]["name"] for pd in got] == ["bob-secret", "just-now"]
    finally:
        await cache.stop()
    assert not cache.ready()
