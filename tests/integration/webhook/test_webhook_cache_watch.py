"""The PodDefault cache against the real apiserver: list, watch, resume, re-list on 410 Gone, resync."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from webhook_it import Rest, poddefault

from webhook.cache import PodDefaultCache

# kube_async lives on the session loop (asyncio_default_fixture_loop_scope), so the tests must too.
pytestmark = pytest.mark.asyncio(loop_scope="session")


async def eventually(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def names(cache: PodDefaultCache, ns: str) -> dict[str, str]:
    return {pd.name: pd.resource_version for pd in cache.for_namespace(ns)}


async def test_cache_lists_then_follows_creates_edits_and_deletes(kube_async: Any, rest: Rest,
                                                                  poddefault_crd: str, namespace: str):
    rest.ok("POST", rest.poddefaults(namespace), poddefault("before", {"selector": {}}))
    cache = PodDefaultCache()
    task = asyncio.create_task(cache.run(kube_async, resync_period=600))
    try:
        await eventually(lambda: cache.ready)
        assert "before" in names(cache, namespace)  # from the list

        made = rest.ok("POST", rest.poddefaults(namespace), poddefault("after", {"selector": {}}))
        await eventually(lambda: names(cache, namespace).get("after") == made["metadata"]["resourceVersion"])
        made["spec"]["desc"] = "edited"
        edited = rest.ok("PUT", f"{rest.poddefaults(namespace)}/after", made)
        await eventually(lambda: names(cache, namespace).get("after") == edited["metadata"]["resourceVersion"])
        assert any(pd.spec.get("desc") == "edited" for pd in cache.for_namespace(namespace))
        rest.ok("DELETE", f"{rest.poddefaults(namespace)}/after")
        await eventually(lambda: "after" not in names(cache, namespace))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_expired_resource_version_ends_the_watch_for_a_new_list(kube_async: Any, poddefault_crd: str,
                                                                      caplog: pytest.LogCaptureFixture):
    from kubernetes_asyncio.client import CustomObjectsApi

    caplog.set_level(logging.INFO, logger="webhook.cache")
    cache = PodDefaultCache()
    cache.replace([], "1")  # long compacted: the apiserver answers 410 Gone
    await asyncio.wait_for(cache._watch(CustomObjectsApi(kube_async), time.monotonic() + 30), timeout=20)
    assert "poddefault_cache_expired" in caplog.messages


async def test_resync_lists_again_and_keeps_the_cache_fresh(kube_async: Any, rest: Rest, poddefault_crd: str,
                                                            namespace: str, monkeypatch: Any):
    lists: list[float] = []
    original = PodDefaultCache.replace

    def counting(self: PodDefaultCache, items: Any, resource_version: str | None = None) -> None:
        lists.append(time.monotonic())
        original(self, items, resource_version)

    monkeypatch.setattr(PodDefaultCache, "replace", counting)
    cache = PodDefaultCache()
    task = asyncio.create_task(cache.run(kube_async, resync_period=1.0))
    try:
        await eventually(lambda: len(lists) >= 3, timeout=20)
        assert cache.last_sync is not None and time.time() - cache.last_sync < 5
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
