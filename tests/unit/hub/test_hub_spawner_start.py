"""Start detection: the notebook container's readiness probe and KubeSpawner's polling pace."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kubespawner.spawner as kubespawner_module
import pytest
from jupyterhub.utils import exponential_backoff
from kubernetes_asyncio.client import V1Container, V1HTTPGetAction, V1ObjectMeta, V1Pod, V1PodSpec, V1Probe

import hub_config.spawner as spawner
from hub_config.hooks import add_readiness_probe
from hub_config.messages import SpawnError


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


async def test_the_cap_lowers_kubespawners_waits_and_passes_everything_else_through(monkeypatch) -> None:
    seen: list[tuple[Any, ...]] = []

    async def recorder(*args: Any, **kwargs: Any) -> str:
        seen.append((args, kwargs))
        return "done"

    monkeypatch.setattr(spawner, "exponential_backoff", recorder)
    check = lambda: True  # noqa: E731
    assert await spawner.prompt_backoff(check, "pod did not start", timeout=300) == "done"
    assert await spawner.prompt_backoff(check, "m", 0.01, 3, 0.1, timeout=5) == "done"
    (args, kwargs), (args2, _) = seen
    assert args == (check, "pod did not start", spawner.POLL_START, 2, spawner.POLL_CAP) and kwargs == {"timeout": 300}
    assert args2[2:] == (0.01, 3, 0.1), "a caller's shorter waits are kept"


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
