"""Start detection: the notebook container's readiness probe and KubeSpawner's polling pace."""

from __future__ import annotations

from typing import Any

import kubespawner.spawner as kubespawner_module
import pytest
from jupyterhub.utils import exponential_backoff
from kubernetes_asyncio.client import V1Container, V1HTTPGetAction, V1ObjectMeta, V1Pod, V1PodSpec, V1Probe

import hub_config.spawner as spawner
from hub_config.hooks import add_readiness_probe


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
