"""Start detection: the notebook container's readiness probe and KubeSpawner's polling pace."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import kubespawner.spawner as kubespawner_module
import pytest
from jupyterhub.utils import exponential_backoff
from kubernetes_asyncio.client import V1Container, V1HTTPGetAction, V1ObjectMeta, V1Pod, V1PodSpec, V1Probe

import hub_config.spawner as spawner
from hub_config.hooks import add_readiness_probe
from hub_config.messages import SpawnError
from hub_config.pod_changes import POD_CHANGES, ChangeSignal, NotifyingPodReflector, NotifyingStore


def pod(*containers: V1Container) -> V1Pod:
    return V1Pod(metadata=V1ObjectMeta(name="jupyter-a"), spec=V1PodSpec(containers=list(containers)))


def test_the_notebook_container_is_ready_only_when_the_server_answers_its_api_url() -> None:
    sidecar = V1Container(name="sidecar", image="s")
    out = add_readiness_probe(pod(V1Container(name="notebook", image="n"), sidecar), "/user/Al%20ice/", 8888)
    probe = out.spec.containers[0].readiness_probe
    assert (probe.http_get.path, probe.http_get.port) == ("/user/Al%20ice/api", 8888)
    assert probe.period_seconds == 1 and probe.failure_threshold == 1
    assert out.spec.containers[1].readiness_probe is None


def test_an_operators_own_probe_is_kept() -> None:
    mine = V1Probe(http_get=V1HTTPGetAction(path="/custom", port=9999), period_seconds=7)
    out = add_readiness_probe(pod(V1Container(name="notebook", image="n", readiness_probe=mine)), "/user/a/", 8888)
    assert out.spec.containers[0].readiness_probe is mine


def test_kubespawner_polls_through_the_capped_backoff() -> None:
    assert kubespawner_module.exponential_backoff is spawner.prompt_backoff
    spawner.use_prompt_polling()  # idempotent
    assert kubespawner_module.exponential_backoff is spawner.prompt_backoff


async def test_a_pod_change_wakes_the_wait_long_before_its_timer() -> None:
    store = NotifyingStore(signal=POD_CHANGES)
    changed_at: list[float] = []
    calls = 0

    def running() -> bool:
        nonlocal calls
        calls += 1
        return store.get("ns/p") == "Running"

    loop = asyncio.get_running_loop()

    async def becomes_running_later() -> None:
        await asyncio.sleep(0.6)  # by then the wait has grown past 0.4 s (0.05, 0.1, 0.2, 0.4, ...)
        store["ns/p"] = "Running"
        changed_at.append(loop.time())

    changer = asyncio.ensure_future(becomes_running_later())
    began = loop.time()
    assert await spawner.prompt_backoff(running, "pod did not start", timeout=30) is True
    noticed = loop.time()
    await changer
    assert noticed - changed_at[0] < spawner.POLL_START + 0.05, "noticed right after the change"
    assert noticed - began < 1.0
    assert calls <= 8, f"polled {calls} times in 0.6 s: the waits should grow while nothing changes"


async def test_the_backoff_times_out_with_the_callers_message() -> None:
    with pytest.raises(TimeoutError, match="pod did not start"):
        await spawner.prompt_backoff(lambda: False, "pod did not start", timeout=0.3, timeout_tolerance=0)


async def test_a_callers_shorter_waits_are_kept_and_never_lengthened() -> None:
    loop = asyncio.get_running_loop()
    times: list[float] = []

    def never() -> bool:
        times.append(loop.time())
        return False

    with pytest.raises(TimeoutError):
        await spawner.prompt_backoff(never, "m", 0.01, 1, 0.02, timeout=0.5, timeout_tolerance=0)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) >= 8 and max(gaps) < 0.12, "waits stay near the caller's 0.02 s cap (plus the 0.05 s floor)"


async def test_changes_wake_every_waiter_with_one_notify_and_timeouts_leave_nothing() -> None:
    signal = ChangeSignal()
    waiters = [asyncio.ensure_future(signal.wait(5)) for _ in range(50)]
    await asyncio.sleep(0)
    signal.notify()
    assert await asyncio.gather(*waiters) == [True] * 50
    assert await signal.wait(0.01) is False
    assert signal.changes == 1


def test_the_reflector_store_notifies_on_every_write_however_it_is_placed() -> None:
    signal = ChangeSignal()
    store = NotifyingStore({"a/x": 1}, signal=signal)
    store["a/y"] = 2
    del store["a/x"]
    store.pop("a/y")
    store.pop("a/none", None)
    assert signal.changes == 4 and store == {}


async def test_the_pod_reflectors_store_notifies_before_and_after_a_relist() -> None:
    r = NotifyingPodReflector(namespace=None, omit_namespace=True, labels={"component": "singleuser-server"})
    assert isinstance(r.resources, NotifyingStore), "even the empty store before the first list"
    before = POD_CHANGES.changes
    r.resources = {"nbp-u1/jupyter-u1": {"status": {}}}  # what a relist does
    assert isinstance(r.resources, NotifyingStore) and "nbp-u1/jupyter-u1" in r.resources
    r.resources["nbp-u1/jupyter-u1"] = {"status": {"phase": "Running"}}  # and a watch event
    assert POD_CHANGES.changes == before + 2


def test_a_kubespawner_that_renamed_its_helper_is_noticed(monkeypatch) -> None:
    monkeypatch.setattr(kubespawner_module, "exponential_backoff", lambda *a, **k: None)
    with pytest.raises(RuntimeError, match=r"review hub_config\.spawner"):
        spawner.use_prompt_polling()
    monkeypatch.setattr(kubespawner_module, "exponential_backoff", exponential_backoff)
    spawner.use_prompt_polling()
    assert kubespawner_module.exponential_backoff is spawner.prompt_backoff


# -- giving up early on a pod that can never start ---------------------------------------------------------

def server_pod(waiting: dict[str, str] | None = None, uid: str = "u1", deleting: bool = False,
               init: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "jupyter-a", "uid": uid}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    statuses = [{"name": "notebook", "state": {"waiting": waiting} if waiting else {"running": {}}}]
    return {"metadata": meta, "status": {("initContainerStatuses" if init else "containerStatuses"): statuses}}


def event(reason: str, message: str, uid: str = "u1") -> dict[str, Any]:
    return {"reason": reason, "message": message, "involvedObject": {"name": "jupyter-a", "uid": uid}}


NOT_FOUND = ('failed to pull and unpack image "10.250.0.1:5000/x/nope:v1": failed to resolve reference '
             '"10.250.0.1:5000/x/nope:v1": 10.250.0.1:5000/x/nope:v1: not found')


@pytest.mark.parametrize(("pod", "events", "words"), [
    (server_pod({"reason": "ErrImagePull", "message": NOT_FOUND}), [], ["could not be pulled", "not found"]),
    (server_pod({"reason": "ImagePullBackOff", "message": f'Back-off pulling image "x": ErrImagePull: {NOT_FOUND}'}),
     [], ["could not be pulled"]),
    (server_pod({"reason": "ErrImagePull", "message": "unauthorized: authentication required"}, init=True), [],
     ["could not be pulled", "unauthorized"]),
    (server_pod({"reason": "InvalidImageName", "message": 'couldn\'t parse image name "A:b:c"'}), [],
     ["could not be pulled", "parse image name"]),
    (server_pod({"reason": "CreateContainerConfigError", "message": 'secret "team-s3" not found'}), [],
     ["cannot start", 'secret "team-s3" not found', "configuration"]),
    (server_pod({"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}),
     [event("Failed", f"Failed to pull image \"x\": {NOT_FOUND}")], ["could not be pulled", "not found"]),
])
def test_a_pod_that_can_never_start_is_recognised(pod, events, words) -> None:
    from hub_config.messages import permanent_start_failure

    message = permanent_start_failure(pod, events)
    assert message is not None and all(w in message for w in words), message


@pytest.mark.parametrize(("pod", "events"), [
    (None, []),
    (server_pod(), []),
    (server_pod({"reason": "ContainerCreating", "message": ""}), []),
    (server_pod({"reason": "ErrImagePull", "message": "dial tcp 10.250.0.1:5000: i/o timeout"}), []),
    (server_pod({"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}), []),
    (server_pod({"reason": "ErrImagePull", "message": NOT_FOUND}, deleting=True), []),
    # an event about an earlier pod of the same name is not about this one
    (server_pod({"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}),
     [event("Failed", f"Failed to pull image \"x\": {NOT_FOUND}", uid="old")]),
])
def test_a_pod_that_may_still_start_is_waited_for(pod, events) -> None:
    from hub_config.messages import permanent_start_failure

    assert permanent_start_failure(pod, events) is None


def test_events_are_read_only_while_a_container_waits_on_its_image() -> None:
    from hub_config.messages import waiting_on_pull

    assert waiting_on_pull(server_pod({"reason": "ImagePullBackOff", "message": "m"}, init=True))
    assert waiting_on_pull(server_pod({"reason": "ErrImagePull", "message": "m"}))
    assert not waiting_on_pull(server_pod({"reason": "ContainerCreating", "message": ""}))
    assert not waiting_on_pull(server_pod()) and not waiting_on_pull(None)


class Cache:
    def __init__(self) -> None:
        self.pods: dict[str, Any] = {}


class SpawnerUnderTest(spawner.NotebookSpawner):
    """Only the fail-fast wrapper is exercised: KubeSpawner's own start is replaced by a future we control."""

    def __init__(self, started: asyncio.Future) -> None:  # no KubeSpawner.__init__: no hub, no cluster
        self._started = started
        self._fake_reflector = Cache()

    namespace = "nbp-a"
    pod_name = "jupyter-a"
    event_reflector = None
    log = logging.getLogger("test")
    user = type("U", (), {"name": "a"})()

    @property
    def pod_reflector(self):  # type: ignore[override]
        return self._fake_reflector


def start_under_test(monkeypatch) -> tuple[SpawnerUnderTest, asyncio.Future, asyncio.Future]:
    """(spawner, KubeSpawner's start future we control, the fail-fast wrapper's task)."""
    monkeypatch.setattr(spawner, "FAIL_FAST_INTERVAL", 0.01)
    started: asyncio.Future = asyncio.get_running_loop().create_future()
    s = SpawnerUnderTest(started)
    return s, started, asyncio.ensure_future(s._start_unless_hopeless(started))


async def test_start_gives_up_with_the_reason_and_cancels_kubespawners_wait(monkeypatch) -> None:
    s, started, task = start_under_test(monkeypatch)
    await asyncio.sleep(0.05)
    assert not task.done()
    s.pod_reflector.pods["nbp-a/jupyter-a"] = server_pod({"reason": "ErrImagePull", "message": NOT_FOUND})
    with pytest.raises(SpawnError) as gave_up:
        await asyncio.wait_for(task, 5)
    assert "could not be pulled" in gave_up.value.jupyterhub_message
    assert started.cancelled()


async def test_start_returns_kubespawners_result_when_the_pod_starts(monkeypatch) -> None:
    _, started, task = start_under_test(monkeypatch)
    await asyncio.sleep(0.03)
    started.set_result(("10.244.0.9", 8888))
    assert await asyncio.wait_for(task, 5) == ("10.244.0.9", 8888)
