"""The hub's PodDefault copy: grouped by namespace like a live list, started once, retried after a failure.
Against the real apiserver (list, watch, relist): tests/integration/hub/test_hub_poddefault_cache.py."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from hub_config import kube
from hub_config import poddefault_cache as pc


def pd(ns: str, name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name, "resourceVersion": "1"}, "spec": {"selector": {}}}


@pytest.mark.parametrize("seed", range(4))
def test_the_namespace_groups_answer_what_a_scan_answers_after_random_writes(seed: int) -> None:
    rng = random.Random(seed)
    store, plain = pc.PodDefaultStore(), {}
    for _ in range(2000):
        ns, name = f"nbp-u{rng.randrange(6)}", f"pd{rng.randrange(8)}"
        key = f"{ns}/{name}"
        if rng.random() < 0.65:
            store[key] = plain[key] = pd(ns, name)
        else:
            assert store.pop(key, None) is plain.pop(key, None)
    for i in range(6):
        ns = f"nbp-u{i}"
        assert kube.by_name(store.group(ns)) == kube.by_name(o for o in plain.values() if pc.namespace_of(o) == ns)
    assert pc.PodDefaultStore(plain).group("nbp-u0") == pc.PodDefaultStore(dict(plain)).group("nbp-u0")


def test_sorted_by_name_as_a_live_list_is() -> None:
    store = pc.PodDefaultStore({"a/zeta": pd("a", "zeta"), "a/alpha": pd("a", "alpha"), "b/beta": pd("b", "beta")})
    assert [o["metadata"]["name"] for o in kube.by_name(store.group("a"))] == ["alpha", "zeta"]
    assert store.group("nobody") == []


def test_the_api_adapter_lists_poddefaults_cluster_wide_with_the_reflectors_arguments() -> None:
    seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    class Custom:
        def list_cluster_custom_object(self, *args: Any, **kwargs: Any) -> str:
            seen.append((args, kwargs))
            return "answer"

    api = pc.PodDefaultsApi(Custom())
    assert api.list_poddefault_for_all_namespaces(label_selector="", watch=True) == "answer"
    assert seen == [(("kubeflow.org", "v1alpha1", "poddefaults"), {"label_selector": "", "watch": True})]


async def test_a_cache_that_cannot_start_is_retried_only_after_a_pause() -> None:
    now = [0.0]
    cache = pc.PodDefaultCache(clock=lambda: now[0])
    cache.start(parent=object())  # not a traitlets parent: the reflector cannot even be made
    await asyncio.sleep(0)
    assert cache._starting is not None
    await cache._starting
    assert not cache.ready() and cache.in_namespace("nbp-a") is None
    first = cache._starting
    now[0] = pc.RETRY_AFTER - 1
    cache.start(parent=object())
    assert cache._starting is first, "no new attempt within RETRY_AFTER"
    now[0] = pc.RETRY_AFTER + 1
    cache.start(parent=object())
    assert cache._starting is not first
    await cache._starting
    await cache.stop()
