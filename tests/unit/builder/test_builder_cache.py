"""The watch cache of build Jobs and pods, and the BuildService reading from it.

The reflector is fed by hand (events as the apiserver sends them); the service's Kube edge is a recorder,
so each test can say exactly which apiserver calls a request made. The cache against a real apiserver is
covered by tests/integration/builder.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from builder import constants as c
from builder.auth import Caller
from builder.builds import BuildService, LimitExceeded
from builder.cache import BuildCache, Gone, Reflector, make_build_cache
from builder.kube import Kube
from builder.model import BuildPhase, BuildRequest
from builder.settings import Settings
from builder.validate import check_request

REG = "registry.local:5000"
NS = "alice"
CALLER = Caller("system:serviceaccount:alice:notebook")


def job(name: str, ns: str = NS, rv: str = "1", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv, "creationTimestamp": f"t{name}",
                         "managedFields": [{"manager": "x"}],
                         "labels": {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_COMPONENT: c.COMPONENT_BUILD,
                                    **labels},
                         "annotations": {c.ANNOTATION_REQUEST: BuildRequest.model_validate({
                             "context": {"pvc": "workspace", "path": "p"},
                             "destination": f"{REG}/{ns}/app:v1"}).model_dump_json(by_alias=True)}},
            "spec": {}, "status": {}}


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": obj}


def ready_cache(*jobs: dict[str, Any]) -> BuildCache:
    cache = BuildCache(Reflector("jobs"), Reflector("pods"))
    cache.jobs.replace(list(jobs), "10")
    cache.pods.replace([], "10")
    return cache


# -- the reflector -----------------------------------------------------------------------------------------

def test_events_add_change_and_remove_objects_and_drop_managed_fields() -> None:
    r = Reflector("jobs")
    r.replace([job("a")], "5")
    assert r.ready and "managedFields" not in r.get(NS, "a")["metadata"]  # type: ignore[index]
    r.apply_event(event("ADDED", job("b", rv="6")))
    r.apply_event(event("MODIFIED", job("a", rv="7", extra="yes")))
    assert r.get(NS, "a")["metadata"]["labels"]["extra"] == "yes"  # type: ignore[index]
    r.apply_event(event("DELETED", job("b", rv="8")))
    assert [j["metadata"]["name"] for j in r.in_namespace(NS)] == ["a"] and r.resource_version == "8"
    r.apply_event({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}})
    assert r.resource_version == "9" and len(r) == 1


def test_a_relist_forgets_objects_deleted_while_the_watch_was_down() -> None:
    r = Reflector("jobs")
    r.replace([job("a"), job("b")], "5")
    r.replace([job("b")], "20")
    assert r.get(NS, "a") is None and r.get(NS, "b") is not None


async def test_wait_until_a_condition_or_a_deletion_and_arrival_follows_watch_order() -> None:
    r = Reflector("jobs")
    r.replace([job("old")], "5")
    r.apply_event(event("ADDED", job("a", rv="6")))
    r.apply_event(event("ADDED", job("b", rv="7")))
    r.apply_event(event("MODIFIED", job("a", rv="8", changed="yes")))  # a change does not reorder
    assert r.arrival(NS, "old") < r.arrival(NS, "a") < r.arrival(NS, "b")  # type: ignore[operator]
    r.replace([job("b"), job("c")], "20")  # a relist keeps known objects' order; new ones come after
    assert r.arrival(NS, "b") < r.arrival(NS, "c") and r.arrival(NS, "a") is None  # type: ignore[operator]

    changed = asyncio.create_task(r.wait_until(NS, "b", 5, lambda o: bool(o and o["metadata"]["labels"].get("x"))))
    gone = asyncio.create_task(r.wait_until(NS, "c", 5, lambda o: o is None))
    await asyncio.sleep(0)
    r.apply_event(event("MODIFIED", job("b", rv="21")))
    await asyncio.sleep(0)
    assert not changed.done()
    r.apply_event(event("MODIFIED", job("b", rv="22", x="1")))
    r.apply_event(event("DELETED", job("c", rv="23")))
    assert await changed and await gone


def test_an_expired_watch_raises_gone_and_other_watch_errors_raise() -> None:
    r = Reflector("jobs")
    with pytest.raises(Gone):
        r.apply_event({"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}})
    with pytest.raises(RuntimeError, match="watch error"):
        r.apply_event({"type": "ERROR", "object": {"kind": "Status", "code": 500}})


async def test_wait_for_returns_when_the_watch_delivers_and_none_after_the_timeout() -> None:
    r = Reflector("jobs")
    r.replace([], "1")
    waiting = asyncio.create_task(r.wait_until(NS, "new", timeout=5))
    await asyncio.sleep(0)
    r.apply_event(event("ADDED", job("new")))
    assert await waiting
    assert not await r.wait_until(NS, "never", timeout=0.01)
    assert not r._waiters


async def test_run_lists_watches_resumes_and_lists_again_after_gone() -> None:
    lists: list[str] = []
    watches: list[str] = []

    async def lister() -> tuple[list[dict[str, Any]], str]:
        lists.append("list")
        return ([job("a")], "10") if len(lists) == 1 else ([job("z")], "50")

    async def watcher(rv: str, seconds: int) -> AsyncIterator[dict[str, Any]]:
        watches.append(rv)
        if len(watches) == 1:
            yield event("ADDED", job("b", rv="11"))  # then the server ends the watch: resume from 11
        elif len(watches) == 2:
            yield {"type": "ERROR", "object": {"code": 410, "message": "too old"}}
        else:
            await asyncio.sleep(3600)

    r = Reflector("jobs", lister, watcher)
    task = asyncio.create_task(r.run())
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(watches) >= 3:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lists == ["list", "list"] and watches == ["10", "11", "50"]
    assert [j["metadata"]["name"] for j in r.in_namespace(NS)] == ["z"]


# -- the service on the cache -------------------------------------------------------------------------------

class Recorder:
    """A Kube edge that records calls; `create_job` makes the Job and, if `deliver`, the watch delivers it."""

    def __init__(self, cache: BuildCache | None, deliver: bool = True, live_jobs: list[Any] | None = None) -> None:
        self.cache, self.deliver, self.calls, self.live_jobs = cache, deliver, [], live_jobs or []
        self.created = 0
        self.made: list[dict[str, Any]] = []

    async def create_job(self, namespace: str, body: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        self.calls.append("create_job")
        self.created += 1
        made = job(f"build-{self.created}", namespace, **{c.LABEL_ACTIVE: "true"})
        made["metadata"]["annotations"] = body["metadata"]["annotations"]
        self.made.append(made)
        if self.deliver and self.cache is not None:
            self.cache.jobs.apply_event(event("ADDED", made))
        return made

    async def list_jobs(self, namespace: str, selector: str) -> list[Any]:
        self.calls.append("list_jobs")
        return list(self.live_jobs)

    async def list_pods(self, namespace: str, selector: str) -> list[Any]:
        self.calls.append("list_pods")
        return []

    async def delete_job(self, namespace: str, name: str) -> None:
        self.calls.append("delete_job")
        if self.cache is not None:
            self.cache.jobs.apply_event(event("DELETED", job(name, namespace)))

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append("get_job")
        return None

    async def patch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("patch_job")
        raise AssertionError("nothing here should need recording")


def service(cache: BuildCache | None, kube: Recorder, **settings: Any) -> BuildService:
    return BuildService(cast(Kube, kube), Settings(registry=REG, **settings), cache)


def checked() -> Any:
    req = BuildRequest.model_validate({"context": {"pvc": "workspace", "path": "p"},
                                       "destination": f"{REG}/{NS}/app:v1"})
    return check_request(req, NS, Settings(registry=REG))


async def test_a_post_with_a_ready_cache_makes_one_apiserver_call() -> None:
    cache = ready_cache()
    kube = Recorder(cache)
    build, created = await service(cache, kube).create(NS, checked(), CALLER)
    assert created and build.metadata.name == "build-1"
    assert kube.calls == ["create_job"]


async def test_list_and_get_read_the_cache_only() -> None:
    cache = ready_cache(job("b2"), job("b1"), job("other", ns="bob"))
    kube = Recorder(cache)
    svc = service(cache, kube)
    assert [b.metadata.name for b in await svc.list(NS)] == ["b1", "b2"]
    got = await svc.get(NS, "b1")
    assert got is not None and got.status.phase == BuildPhase.PENDING
    assert kube.calls == []


async def test_get_of_a_build_the_cache_has_not_seen_asks_the_apiserver() -> None:
    kube = Recorder(ready_cache())
    assert await service(kube.cache, kube).get(NS, "made-by-another-replica") is None
    assert kube.calls == ["get_job"]


async def test_the_limit_counts_active_builds_in_the_cache_before_creating() -> None:
    cache = ready_cache(*(job(f"a{i}", **{c.LABEL_ACTIVE: "true"}) for i in range(3)), job("done"))
    kube = Recorder(cache)
    with pytest.raises(LimitExceeded):
        await service(cache, kube, max_concurrent_builds_per_namespace=3).create(NS, checked(), CALLER)
    assert kube.calls == []


async def test_a_lagging_watch_makes_the_recount_ask_the_apiserver_and_step_back() -> None:
    # The cache saw nothing; the apiserver has three other active builds (another replica's, just made).
    others = [job(f"r{i}", **{c.LABEL_ACTIVE: "true"}) for i in range(3)]
    cache = ready_cache()
    kube = Recorder(cache, deliver=False, live_jobs=others)
    svc = service(cache, kube, max_concurrent_builds_per_namespace=3, cache_wait_seconds=0.01)
    with pytest.raises(LimitExceeded):
        await svc.create(NS, checked(), CALLER)
    assert kube.calls == ["create_job", "list_jobs", "list_pods", "delete_job"]


async def test_without_a_ready_cache_every_read_goes_to_the_apiserver() -> None:
    cache = BuildCache(Reflector("jobs"), Reflector("pods"))  # never listed
    kube = Recorder(cache)
    await service(cache, kube).list(NS)
    assert kube.calls == ["list_jobs"]


async def test_of_racing_creates_exactly_the_first_ones_up_to_the_limit_go_ahead() -> None:
    # Six requests pass the first check before any of their Jobs reaches the watch; the watch then delivers
    # the six Jobs in the order they were created, and each request counts only the Jobs created before its own.
    cache = ready_cache()
    kube = Recorder(cache, deliver=False)
    svc = service(cache, kube, max_concurrent_builds_per_namespace=2, cache_wait_seconds=5)

    async def watch_delivers() -> None:
        while len(kube.made) < 6:
            await asyncio.sleep(0.001)
        for made in kube.made:
            cache.jobs.apply_event(event("ADDED", made))

    results = await asyncio.gather(watch_delivers(), *(svc.create(NS, checked(), CALLER) for _ in range(6)),
                                   return_exceptions=True)
    outcomes = results[1:]
    went_ahead = [o[0].metadata.name for o in outcomes if isinstance(o, tuple)]
    assert sorted(went_ahead) == ["build-1", "build-2"]
    assert sum(isinstance(o, LimitExceeded) for o in outcomes) == 4
    assert kube.calls.count("delete_job") == 4 and kube.calls.count("list_jobs") == 0


class ListsAndWatches:
    """A Kube edge for make_build_cache: empty lists per selector, watches that wait."""

    def __init__(self) -> None:
        self.listed: list[tuple[str, str]] = []

    async def list_everywhere(self, kind: str, selector: str) -> tuple[list[Any], str]:
        self.listed.append((kind, selector))
        return [], "1"

    async def watch_everywhere(self, kind: str, selector: str, rv: str, seconds: int) -> AsyncIterator[Any]:
        await asyncio.sleep(3600)
        yield {}


@pytest.mark.parametrize("agents", [True, False])
async def test_the_cache_lists_and_watches_build_jobs_build_pods_and_with_agents_agent_pods(agents: bool) -> None:
    kube = ListsAndWatches()
    cache = make_build_cache(kube, agents=agents)
    cache.start()
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if cache.ready and len(kube.listed) == 2 + agents:
                break
        assert cache.ready
        expected = {("jobs", c.BUILD_SELECTOR), ("pods", c.BUILD_SELECTOR)} | ({("pods", c.AGENT_SELECTOR)} if agents
                                                                               else set())
        assert set(kube.listed) == expected
        assert cache.agents.ready is agents
    finally:
        await cache.stop()
