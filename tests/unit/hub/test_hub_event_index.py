"""The per-pod index of KubeSpawner's event reflector: it answers what a scan of every event answers, after any
sequence of the writes the reflector makes, and KubeSpawner's own list code fills it."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from traitlets.config import Config

from hub_config.config import configure
from hub_config.event_index import IndexedEventReflector, PodEventIndex, pod_key
from hub_config.settings import HubSettings
from hub_config.spawner import NotebookSpawner, pod_events


def ev(uid: str, pod: str, ns: str, second: int) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "name": uid, "namespace": ns},
            "lastTimestamp": f"2026-12-03T10:00:{second:02d}Z",
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": ns}}


def scanned(store: dict[str, Any], ns: str, pod: str) -> list[dict[str, Any]]:
    return [e for e in store.values() if pod_key(e) == (ns, pod)]


@pytest.mark.parametrize("seed", range(6))
def test_the_index_answers_what_a_scan_answers_after_random_writes(seed: int) -> None:
    rng = random.Random(seed)
    index, plain = PodEventIndex(), {}
    pods = [(f"nbp-u{i % 7}", f"jupyter-u{i % 5}") for i in range(12)]
    for step in range(3000):
        key = f"k{rng.randrange(400)}"
        op = rng.random()
        if op < 0.6:  # an event added or updated (its count, timestamp or, rarely, its object)
            ns, pod = rng.choice(pods)
            event = ev(f"u{step}", pod, ns, rng.randrange(60))
            index[key] = event
            plain[key] = event
        elif op < 0.9:
            assert index.pop(key, None) is plain.pop(key, None)
        elif key in plain:
            del index[key]
            del plain[key]
    assert dict(index) == plain
    for ns, pod in pods:
        assert sorted(map(id, index.about(ns, pod))) == sorted(map(id, scanned(plain, ns, pod)))
    assert all(index.about(*k) for k in index._groups), "no empty buckets are kept"


def test_an_event_without_an_object_namespace_belongs_to_its_own_namespace() -> None:
    e = ev("a", "jupyter-x", "nbp-x", 1)
    del e["involvedObject"]["namespace"]
    assert PodEventIndex({"nbp-x/a": e}).about("nbp-x", "jupyter-x") == [e]


def test_writes_the_index_does_not_follow_are_refused() -> None:
    index = PodEventIndex()
    for write in (lambda: index.update({}), lambda: index.setdefault("k", {}), index.clear, index.popitem):
        with pytest.raises(TypeError):
            write()


async def test_kubespawners_own_list_code_fills_the_index(monkeypatch) -> None:
    """`_list_and_update` (KubeSpawner's code, unchanged) replaces the store; the reflector re-indexes it."""
    import kubespawner.reflector as reflector_module

    monkeypatch.setattr(reflector_module, "shared_client", lambda name: None)
    items = [ev(f"e{i}", f"jupyter-u{i % 3}", f"nbp-u{i % 3}", i) for i in range(9)]

    class Listed:
        ok = True

        async def read(self) -> bytes:
            return json.dumps({"items": items, "metadata": {"resourceVersion": "7"}}).encode()

    class Api:
        async def list_event_for_all_namespaces(self, **kwargs: Any) -> Listed:
            assert kwargs["field_selector"] == "involvedObject.kind=Pod"
            return Listed()

    r = IndexedEventReflector(config=configure(Config(), HubSettings()), namespace=None, omit_namespace=True,
                              fields={"involvedObject.kind": "Pod"})
    assert isinstance(r.resources, PodEventIndex), "even the empty store before the first list"
    r.api = Api()
    assert await r._list_and_update() == "7"
    assert isinstance(r.resources, PodEventIndex)
    assert [e["metadata"]["uid"] for e in r.resources.about("nbp-u1", "jupyter-u1")] == ["e1", "e4", "e7"]
    r.resources["nbp-u1/e1"] = ev("e1", "jupyter-u2", "nbp-u2", 1)  # what a watch MODIFIED event does
    r.resources.pop("nbp-u1/e4", None)  # and a DELETED one
    assert [e["metadata"]["uid"] for e in r.resources.about("nbp-u1", "jupyter-u1")] == ["e7"]


class Spawner(NotebookSpawner):
    def __init__(self, reflector: Any) -> None:
        self._reflector = reflector

    namespace, pod_name, _last_event = "nbp-u1", "jupyter-u1", None

    @property
    def event_reflector(self) -> Any:
        return self._reflector


async def test_the_spawner_reads_its_pods_events_from_the_index(monkeypatch) -> None:
    import kubespawner.reflector as reflector_module

    monkeypatch.setattr(reflector_module, "shared_client", lambda name: None)
    r = IndexedEventReflector(namespace=None, omit_namespace=True)
    store = {f"nbp-u{i % 3}/e{i}": ev(f"e{i}", f"jupyter-u{i % 3}", f"nbp-u{i % 3}", 60 - i) for i in range(30)}
    r.resources = store
    scans: list[int] = []
    monkeypatch.setattr(PodEventIndex, "values", lambda self: scans.append(1) or dict.values(self))
    got = Spawner(r).events
    assert got == pod_events(store.values(), "nbp-u1", "jupyter-u1", None)
    assert [e["metadata"]["uid"] for e in got][:2] == ["e28", "e25"], "oldest first"
    assert not scans, "the spawner did not scan the whole store"
