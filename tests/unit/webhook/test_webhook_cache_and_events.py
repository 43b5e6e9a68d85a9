"""The cache's bookkeeping (the watch loop itself runs against the real apiserver in integration tests)
and the fire-and-forget Event recorder."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from poddefault_builders import NS, poddefault

from webhook.cache import PodDefaultCache
from webhook.events import EventRecorder, conflict_event
from webhook.metrics import Metrics
from webhook.model import compile_poddefault


def test_cache_is_ready_only_after_the_first_list():
    cache = PodDefaultCache(clock=lambda: 123.0)
    assert not cache.ready and cache.last_sync is None
    cache.replace([poddefault("a")], "7")
    assert cache.ready and cache.last_sync == 123.0 and cache.resource_version == "7"


def test_cache_indexes_by_namespace():
    cache = PodDefaultCache()
    cache.replace([poddefault("a"), poddefault("b", namespace="other"), poddefault("c")])
    assert sorted(pd.name for pd in cache.for_namespace(NS)) == ["a", "c"]
    assert [pd.name for pd in cache.for_namespace("other")] == ["b"]
    assert cache.for_namespace("none") == ()
    assert len(cache) == 3


def test_watch_events_add_change_and_remove_poddefaults():
    cache = PodDefaultCache()
    cache.replace([], "1")
    cache.apply_event({"type": "ADDED", "raw_object": poddefault("a", rv="2")})
    cache.apply_event({"type": "MODIFIED", "raw_object": poddefault("a", rv="3", env=[{"name": "X"}])})
    assert [pd.resource_version for pd in cache.for_namespace(NS)] == ["3"]
    assert cache.resource_version == "3"
    cache.apply_event({"type": "DELETED", "raw_object": poddefault("a", rv="4")})
    assert cache.for_namespace(NS) == () and len(cache) == 0
    cache.apply_event({"type": "BOOKMARK", "raw_object": {"metadata": {"resourceVersion": "9"}}})
    assert cache.resource_version == "9"


def test_selector_is_compiled_once_per_resource_version():
    cache = PodDefaultCache()
    cache.replace([poddefault("a", rv="5")])
    first = cache.for_namespace(NS)[0]
    cache.replace([poddefault("a", rv="5")])
    assert cache.for_namespace(NS)[0] is first
    cache.upsert(poddefault("a", rv="6"))
    assert cache.for_namespace(NS)[0] is not first


def test_a_full_list_drops_poddefaults_deleted_while_not_watching():
    cache = PodDefaultCache()
    cache.replace([poddefault("a"), poddefault("b")])
    cache.replace([poddefault("b")])
    assert [pd.name for pd in cache.for_namespace(NS)] == ["b"]


def test_snapshot_handed_to_admission_is_not_changed_by_later_events():
    cache = PodDefaultCache()
    cache.replace([poddefault("a")])
    snapshot = cache.for_namespace(NS)
    cache.upsert(poddefault("b"))
    assert [pd.name for pd in snapshot] == ["a"]
    assert len(cache.for_namespace(NS)) == 2


def test_conflict_event_points_at_the_poddefault():
    pd = compile_poddefault(poddefault("a", rv="12"))
    event = conflict_event(pd, "x" * 5000, dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "host-1")
    assert event["involvedObject"] == {"apiVersion": "kubeflow.org/v1alpha1", "kind": "PodDefault", "name": "a",
                                       "namespace": NS, "uid": "uid-a", "resourceVersion": "12"}
    assert event["metadata"]["namespace"] == NS
    assert event["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "notebook-platform"
    assert event["type"] == "Warning" and event["reason"] == "PodDefaultConflict"
    assert len(event["message"]) <= 1000
    assert event["firstTimestamp"] == "2025-01-02T03:04:05Z"


async def test_recording_returns_at_once_even_if_the_apiserver_hangs():
    started = asyncio.Event()

    async def hang(namespace: str, body: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(3600)

    metrics = Metrics()
    recorder = EventRecorder(hang, metrics, timeout=0.1)
    recorder.record(compile_poddefault(poddefault("a")), "conflict")
    await asyncio.wait_for(started.wait(), 1)
    await asyncio.wait_for(recorder.drain(), 2)
    assert metrics.events.labels("failed")._value.get() == 1


async def test_failing_event_is_counted_not_raised_and_repeats_are_suppressed():
    calls: list[str] = []

    async def fail(namespace: str, body: dict[str, Any]) -> None:
        calls.append(namespace)
        raise RuntimeError("apiserver down")

    metrics = Metrics()
    recorder = EventRecorder(fail, metrics, interval=60)
    pd = compile_poddefault(poddefault("a"))
    recorder.record(pd, "conflict")
    recorder.record(pd, "conflict")
    recorder.record(pd, "another conflict")
    await recorder.drain()
    assert calls == [NS, NS]
    assert metrics.events.labels("failed")._value.get() == 2
    assert metrics.events.labels("suppressed")._value.get() == 1
