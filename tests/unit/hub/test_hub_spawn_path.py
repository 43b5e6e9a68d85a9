"""The per-spawn work the hub does when many users start at once: which events a progress poll reads, which API
calls a start makes (namespace create, PodDefault read, dry run), and how a refused pod create reads.

KubeSpawner's own code is the reference where it has one (its event order); API calls are recorded by
stand-ins here and made for real against the apiserver in tests/integration/hub.
"""

from __future__ import annotations

import asyncio
import json
import random
from types import SimpleNamespace
from typing import Any

import kubespawner.spawner as kubespawner_module
import pytest
from kubernetes_asyncio.client.exceptions import ApiException
from kubespawner import KubeSpawner
from kubespawner.reflector import ResourceReflector
from kubespawner.spawner import EventReflector, PodReflector
from traitlets.config import Config

import hub_config.hooks as hooks
from hub_config import constants as k
from hub_config.config import REFLECTOR_REQUEST_TIMEOUT, REFLECTOR_WATCH_SECONDS, configure
from hub_config.messages import SpawnError
from hub_config.namespaces import ProvisionResult
from hub_config.poddefault_cache import PodDefaultCache
from hub_config.provisioner import Provisioner
from hub_config.settings import HubSettings
from hub_config.spawner import NotebookSpawner, pod_events

# -- which events a progress poll reads ----------------------------------------------------------------------


def ev(uid: str, name: str, ns: str, ts: str | None, event_time: str | None = None) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "name": uid, "namespace": ns}, "lastTimestamp": ts, "eventTime": event_time,
            "involvedObject": {"kind": "Pod", "name": name, "namespace": ns}}


def kubespawner_events(resources: dict[str, Any], pod_name: str, last_event: str | None) -> list[dict[str, Any]]:
    """KubeSpawner's own answer: its `events` property over its EventReflector's sorted list."""
    reflector = SimpleNamespace(resources=resources)
    reflector.events = EventReflector.events.fget(reflector)  # type: ignore[attr-defined]
    return KubeSpawner.events.fget(SimpleNamespace(event_reflector=reflector, pod_name=pod_name,  # type: ignore
                                                   _last_event=last_event))


def cluster_events(seed: int) -> dict[str, Any]:
    """A thousand Pod events of many pods in many namespaces, timestamps colliding, in random arrival order."""
    rng = random.Random(seed)
    out = {}
    for i in range(1000):
        user = rng.randrange(40)
        ts = f"2026-12-03T10:{rng.randrange(3):02d}:{rng.randrange(60):02d}Z"
        e = ev(f"e{i}", f"jupyter-u{user}", f"nbp-u{user}", ts if rng.random() < 0.9 else None,
               None if rng.random() < 0.9 else ts.replace("Z", ".123456Z"))
        if e["lastTimestamp"] is None and e["eventTime"] is None:
            e["lastTimestamp"] = ts
        out[f"nbp-u{user}/e{i}"] = e
    return out


@pytest.mark.parametrize("seed", range(5))
def test_a_pods_events_come_in_kubespawners_order_without_sorting_the_whole_cluster(seed: int) -> None:
    resources = cluster_events(seed)
    for user in (0, 7, 39):
        expected = kubespawner_events(resources, f"jupyter-u{user}", None)
        assert expected, "the fixture has events for this pod"
        assert pod_events(resources.values(), f"nbp-u{user}", f"jupyter-u{user}", None) == expected
        marker = expected[len(expected) // 2]["metadata"]["uid"]  # an earlier start's last event
        after = pod_events(resources.values(), f"nbp-u{user}", f"jupyter-u{user}", marker)
        assert after == kubespawner_events(resources, f"jupyter-u{user}", marker)
        assert len(after) < len(expected)


def test_a_pod_of_the_same_name_in_another_namespace_is_not_this_pods() -> None:
    mine, other = ev("a", "jupyter-x", "nbp-x", "2026-12-03T10:00:00Z"), ev("b", "jupyter-x", "elsewhere",
                                                                            "2026-12-03T10:00:01Z")
    assert pod_events([mine, other], "nbp-x", "jupyter-x", None) == [mine]


# -- the spawner's own API calls ----------------------------------------------------------------------------


class Bare(NotebookSpawner):
    """A NotebookSpawner without KubeSpawner's __init__ (no hub, no cluster)."""

    def __init__(self) -> None:
        pass

    namespace = "nbp-a"
    pod_name = "jupyter-a"


async def test_the_namespace_create_is_skipped_once_after_the_hook_made_sure_of_it(monkeypatch) -> None:
    creates: list[str] = []

    async def kubespawner_ensure(self: Any) -> None:
        creates.append(self.namespace)

    monkeypatch.setattr(KubeSpawner, "_ensure_namespace", kubespawner_ensure)
    s = Bare()
    await s._ensure_namespace()
    assert creates == ["nbp-a"], "without the hook, KubeSpawner creates it as always"
    s.namespace_ready = True
    await s._ensure_namespace()
    assert creates == ["nbp-a"]
    await s._ensure_namespace()  # the mark is used up: a later start without the hook creates it again
    assert creates == ["nbp-a", "nbp-a"]


async def test_the_first_claim_create_is_skipped_once_after_the_login_made_the_claim(monkeypatch) -> None:
    creates: list[str] = []

    async def kubespawner_create(self: Any, pvc: Any, request_timeout: float) -> bool:
        creates.append(pvc)
        return True

    monkeypatch.setattr(KubeSpawner, "_make_create_pvc_request", kubespawner_create)
    s = Bare()
    assert await s._make_create_pvc_request("claim", 3) is True
    assert creates == ["claim"]
    s.workspace_ready = True
    assert await s._make_create_pvc_request("claim", 3) is True, "KubeSpawner records that it exists"
    assert creates == ["claim"]
    await s._make_create_pvc_request("claim", 3)
    assert creates == ["claim", "claim"], "the mark is used up"


def quota_refusal() -> ApiException:
    e = ApiException(status=403, reason="Forbidden")
    e.body = json.dumps({"kind": "Status", "reason": "Forbidden", "message":
                         'pods "jupyter-a" is forbidden: exceeded quota: notebook-quota, requested: limits.cpu=2, '
                         'used: limits.cpu=0, limited: limits.cpu=1'})
    return e


async def test_a_refused_pod_create_fails_the_spawn_with_a_readable_message(monkeypatch) -> None:
    async def refused(self: Any, pod: Any, timeout: float) -> bool:
        raise quota_refusal()

    monkeypatch.setattr(KubeSpawner, "_make_create_pod_request", refused)
    with pytest.raises(SpawnError) as e:
        await Bare()._make_create_pod_request(object(), 3)
    message = e.value.jupyterhub_message
    assert "quota" in message and "limits.cpu" in message and "smaller size" in message


async def test_kubespawners_own_retry_answers_pass_through(monkeypatch) -> None:
    answers = iter([False, True])  # e.g. a 409 it handled by deleting the old pod, then success

    async def create(self: Any, pod: Any, timeout: float) -> bool:
        return next(answers)

    monkeypatch.setattr(KubeSpawner, "_make_create_pod_request", create)
    s = Bare()
    assert await s._make_create_pod_request(object(), 3) is False
    assert await s._make_create_pod_request(object(), 3) is True


# -- the hooks: PodDefaults read early, dry run only when needed ------------------------------------------


class Calls:
    """Stands in for the hooks' I/O (kube.list_poddefaults, kube.dry_run_pod) and records it."""

    def __init__(self) -> None:
        self.lists: list[str] = []
        self.dry_runs = 0
        self.poddefaults: list[dict[str, Any]] = [{
            "metadata": {"name": "builder"}, "spec": {"selector": {"matchLabels": {"builder": "true"}}}}]

    async def list_poddefaults(self, api: Any, namespace: str) -> list[dict[str, Any]]:
        self.lists.append(namespace)
        await asyncio.sleep(0)
        return self.poddefaults

    async def dry_run_pod(self, api: Any, namespace: str, pod: Any) -> dict[str, Any]:
        self.dry_runs += 1
        return {"metadata": {"annotations": {k.PODDEFAULT_APPLIED_PREFIX + "builder": "1"}}}


class NeverReady(PodDefaultCache):
    """A PodDefault cache that never starts (tests/unit/hub/test_hub_poddefault_cache.py tests the started one)."""

    def start(self, parent: Any) -> None:
        pass


def spawn_setup(monkeypatch, passes_apply: list[str]) -> tuple[Any, Calls, Provisioner, Any]:
    from kubernetes_asyncio.client import V1Container, V1ObjectMeta, V1Pod, V1PodSpec

    calls = Calls()
    monkeypatch.setattr(hooks.kube, "list_poddefaults", calls.list_poddefaults)
    monkeypatch.setattr(hooks.kube, "dry_run_pod", calls.dry_run_pod)
    monkeypatch.setattr(hooks, "POD_DEFAULTS", NeverReady())  # hub_config.poddefault_cache: live reads here

    async def ensure(api: Any, username: str, namespace: str, settings: Any) -> ProvisionResult:
        return ProvisionResult(namespace, applied=[f"{kind} {namespace}/x" for kind in passes_apply])

    settings = HubSettings()
    provisioner = Provisioner(settings, 300, ensure=ensure)
    spawner = SimpleNamespace(api=SimpleNamespace(api_client=None), user=SimpleNamespace(name="a"),
                              namespace="nbp-a", user_options={"configurations": ["builder"]},
                              server=SimpleNamespace(base_url="/user/a/"), port=8888, namespace_ready=False)
    pod = V1Pod(metadata=V1ObjectMeta(name="jupyter-a", labels={}),
                spec=V1PodSpec(containers=[V1Container(name=k.NOTEBOOK_CONTAINER, image="n")]))
    return spawner, calls, provisioner, pod


async def test_the_start_reads_poddefaults_once_started_by_the_pre_spawn_hook(monkeypatch) -> None:
    spawner, calls, provisioner, pod = spawn_setup(monkeypatch, ["Namespace"])
    await hooks.make_pre_spawn_hook(provisioner)(spawner)
    assert spawner.namespace_ready is True
    assert getattr(spawner, hooks.PREFETCH_ATTR) is not None  # already running while KubeSpawner makes the PVC
    out = await hooks.make_modify_pod_hook(HubSettings(), provisioner)(spawner, pod)
    assert out.metadata.labels["builder"] == "true"
    assert calls.lists == ["nbp-a"], "the pod hook used the read the pre-spawn hook started"
    assert getattr(spawner, hooks.PREFETCH_ATTR) is None
    await hooks.make_modify_pod_hook(HubSettings(), provisioner)(spawner, pod)  # e.g. a preview: reads anew
    assert calls.lists == ["nbp-a", "nbp-a"]


async def test_no_dry_run_unless_provisioning_just_wrote_poddefaults(monkeypatch) -> None:
    spawner, calls, provisioner, pod = spawn_setup(monkeypatch, ["Namespace", "ResourceQuota"])
    await hooks.make_pre_spawn_hook(provisioner)(spawner)
    await hooks.make_modify_pod_hook(HubSettings(), provisioner)(spawner, pod)
    assert calls.dry_runs == 0
    await hooks.make_modify_pod_hook(HubSettings(preflight_dry_run=True), provisioner)(spawner, pod)
    assert calls.dry_runs == 1, "an operator can still ask for it on every start"


async def test_a_start_right_after_poddefaults_were_written_waits_for_the_webhook(monkeypatch) -> None:
    spawner, calls, provisioner, pod = spawn_setup(monkeypatch, ["Namespace", k.PODDEFAULT_KIND])
    await hooks.make_pre_spawn_hook(provisioner)(spawner)
    await hooks.make_modify_pod_hook(HubSettings(), provisioner)(spawner, pod)
    assert calls.dry_runs == 1
    await hooks.make_modify_pod_hook(HubSettings(preflight_webhook_wait=0), provisioner)(spawner, pod)
    assert calls.dry_runs == 1, "a wait of 0 turns it off"


def test_provisioner_remembers_when_it_wrote_poddefaults_per_namespace() -> None:
    now = [100.0]
    p = Provisioner(HubSettings(), 300, clock=lambda: now[0])
    assert not p.wrote_poddefaults_within("nbp-a", 5)
    p._poddefaults_written["nbp-a"] = 100.0
    now[0] = 104.9
    assert p.wrote_poddefaults_within("nbp-a", 5) and not p.wrote_poddefaults_within("nbp-b", 5)
    now[0] = 105.0
    assert not p.wrote_poddefaults_within("nbp-a", 5)


# -- KubeSpawner's shared watches --------------------------------------------------------------------------


async def test_kubespawners_reflectors_watch_longer_before_listing_everything_again(monkeypatch) -> None:
    import kubespawner.reflector as reflector_module

    monkeypatch.setattr(reflector_module, "shared_client", lambda name: None)
    c = configure(Config(), HubSettings())
    for cls in (EventReflector, PodReflector):
        r = cls(config=c, namespace=None, omit_namespace=True)
        assert isinstance(r, ResourceReflector)
        assert (r.timeout_seconds, r.restart_seconds, r.request_timeout) == (
            REFLECTOR_WATCH_SECONDS, REFLECTOR_WATCH_SECONDS, REFLECTOR_REQUEST_TIMEOUT)
    assert REFLECTOR_REQUEST_TIMEOUT > REFLECTOR_WATCH_SECONDS, "the server ends a watch before the client gives up"


# -- the hooks with the hub's PodDefault copy (hub_config.poddefault_cache) ---------------------------------


def ready_cache(monkeypatch, poddefaults: list[dict[str, Any]]) -> PodDefaultCache:
    """A cache around KubeSpawner's real reflector class, listed (with `poddefaults`) and watching."""
    import kubespawner.reflector as reflector_module

    from hub_config.poddefault_cache import PodDefaultReflector

    monkeypatch.setattr(reflector_module, "shared_client", lambda name: None)
    reflector = PodDefaultReflector(config=configure(Config(), HubSettings()))
    reflector.resources = {f"{pd['metadata']['namespace']}/{pd['metadata']['name']}": pd for pd in poddefaults}
    reflector.first_load_future.set_result(None)
    reflector.watch_task = asyncio.get_running_loop().create_future()  # pending: the watch runs
    cache = NeverReady()
    cache.reflector = reflector
    assert cache.ready()
    return cache


def in_ns(calls: Calls, ns: str) -> list[dict[str, Any]]:
    return [{**pd, "metadata": {**pd["metadata"], "namespace": ns}} for pd in calls.poddefaults]


async def test_a_start_reads_the_hubs_copy_when_it_is_ready(monkeypatch) -> None:
    spawner, calls, provisioner, pod = spawn_setup(monkeypatch, ["Namespace"])
    cache = ready_cache(monkeypatch, in_ns(calls, "nbp-a"))
    await hooks.make_pre_spawn_hook(provisioner, cache)(spawner)
    assert getattr(spawner, hooks.PREFETCH_ATTR, None) is None, "no live read started"
    out = await hooks.make_modify_pod_hook(HubSettings(), provisioner, cache)(spawner, pod)
    assert out.metadata.labels["builder"] == "true"
    assert calls.lists == []


async def test_a_start_reads_live_when_provisioning_just_wrote_poddefaults(monkeypatch) -> None:
    spawner, calls, provisioner, pod = spawn_setup(monkeypatch, ["Namespace", k.PODDEFAULT_KIND])
    cache = ready_cache(monkeypatch, [])  # the copy has not seen the default PodDefault yet
    await hooks.make_pre_spawn_hook(provisioner, cache)(spawner)
    out = await hooks.make_modify_pod_hook(HubSettings(preflight_webhook_wait=0), provisioner, cache)(spawner, pod)
    assert calls.lists == ["nbp-a"] and out.metadata.labels["builder"] == "true"


async def test_a_chosen_configuration_missing_from_the_copy_is_read_live(monkeypatch) -> None:
    spawner, calls, provisioner, pod = spawn_setup(monkeypatch, ["Namespace"])
    cache = ready_cache(monkeypatch, in_ns(calls, "nbp-other"))  # e.g. applied a moment ago in nbp-a
    await hooks.make_pre_spawn_hook(provisioner, cache)(spawner)
    out = await hooks.make_modify_pod_hook(HubSettings(), provisioner, cache)(spawner, pod)
    assert calls.lists == ["nbp-a"] and out.metadata.labels["builder"] == "true"


async def test_an_operator_preselection_absent_from_a_namespace_costs_no_live_read(monkeypatch) -> None:
    spawner, calls, provisioner, pod = spawn_setup(monkeypatch, ["Namespace"])
    spawner.user_options = {}  # a REST API start: the operator's preselection applies where it exists
    settings = HubSettings(preselected_configurations=["gpu-drivers"])
    cache = ready_cache(monkeypatch, in_ns(calls, "nbp-a"))
    await hooks.make_pre_spawn_hook(provisioner, cache)(spawner)
    out = await hooks.make_modify_pod_hook(settings, provisioner, cache)(spawner, pod)
    assert calls.lists == [] and "gpu-drivers" not in (out.metadata.annotations or {}).get(
        k.CONFIGURATIONS_ANNOTATION, "")


# -- KubeSpawner's template expansion ----------------------------------------------------------------------


async def test_the_hub_namespace_is_read_once_per_process_not_once_per_template(monkeypatch) -> None:
    reads: list[int] = []
    kubespawners = KubeSpawner.__dict__["_namespace_default"].func

    def counted(self: Any) -> str:
        reads.append(1)
        return str(kubespawners(self))

    monkeypatch.setattr(KubeSpawner.__dict__["_namespace_default"], "func", counted)
    monkeypatch.setattr(NotebookSpawner, "_hub_namespace", None)
    monkeypatch.setattr(kubespawner_module, "load_config", lambda **kwargs: None)  # no cluster here
    monkeypatch.setattr(kubespawner_module, "shared_client", lambda name: None)
    user = SimpleNamespace(name="Ada.Lovelace", id=7, url="/user/Ada.Lovelace/")
    spawners = [NotebookSpawner(_mock=True, user=user, config=configure(Config(), HubSettings())) for _ in range(3)]
    expanded = {s._expand_user_properties("{hubnamespace}/{username}") for s in spawners for _ in range(50)}
    assert len(reads) == 1, "KubeSpawner's own read ran once for 150 expansions in 3 spawners"
    assert expanded == {f"{'user' if kubespawners(spawners[0]) == 'default' else kubespawners(spawners[0])}/"
                        f"{spawners[0]._expand_user_properties('{username}')}"}
    assert spawners[0].namespace.startswith(HubSettings().namespace_prefix), "user namespaces are unaffected"
