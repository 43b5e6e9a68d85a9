"""The SSE loop over a scripted build: log ids, resume, pushing, built. No apiserver can run a pod here, so
the Kube edge is a script of what it would return; the same loop runs against the apiserver in
tests/integration/builder (waiting, heartbeats, cancel) and against a real node in e2e."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from builder import constants as c
from builder.builds import BuildService
from builder.settings import Settings
from builder.stream import build_events

DIGEST = "sha256:" + "ab" * 32
LOG = ["INFO Retrieving image manifest python:3.12", "INFO Executing 2 build triggers",
       "INFO Pushing image to registry.local:5000/alice/app:v1", "INFO Pushed image"]


def job(phase_conditions: list[str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "build-1", "namespace": "alice", "resourceVersion": "1",
                     "labels": {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_COMPONENT: c.COMPONENT_BUILD},
                     "annotations": {c.ANNOTATION_DESTINATION: "registry.local:5000/alice/app:v1"}},
        "spec": {},
        "status": {"conditions": [{"type": t, "status": "True"} for t in phase_conditions]},
    }


def pod(state: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "build-1-x", "creationTimestamp": "t", "labels": {c.LABEL_JOB_NAME: "build-1"}},
            "status": {"containerStatuses": [{"name": "kaniko", "state": state}]}}


class ScriptedKube:
    """Rounds of (job, pods); the log is fixed. Running pods stream the log then the build completes."""

    def __init__(self, rounds: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
        self.rounds, self.i = rounds, 0
        self.patches: list[dict[str, Any]] = []

    def _now(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return self.rounds[min(self.i, len(self.rounds) - 1)]

    async def get_job(self, namespace: str, name: str) -> dict[str, Any]:
        return self._now()[0]

    async def list_pods_rv(self, namespace: str, selector: str) -> tuple[list[dict[str, Any]], str]:
        pods = self._now()[1]
        return pods, "1"

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self._now()[1]

    async def patch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(patch)
        return self._now()[0]

    async def stream_log(self, namespace: str, pod: str, container: str, follow: bool) -> AsyncIterator[str]:
        for line in LOG:
            yield line
        self.i += 1  # the container ends with its log

    async def watch_pods(self, namespace: str, selector: str, timeout_seconds: int,
                         resource_version: str = "") -> AsyncIterator[dict[str, Any]]:
        self.i += 1
        yield {"type": "MODIFIED"}


async def run(kube: ScriptedKube, last_id: int = 0) -> list[tuple[int | None, dict[str, Any]]]:
    svc = BuildService(kube, Settings())  # type: ignore[arg-type]
    out = []
    async for chunk in build_events(svc, "alice", "build-1", last_id, heartbeat=5):
        text = chunk.decode()
        if not text.startswith("id:") and not text.startswith("data:"):
            continue
        fields = dict(line.split(": ", 1) for line in text.strip().split("\n"))
        out.append((int(fields["id"]) if "id" in fields else None, json.loads(fields["data"])))
    return out


def script() -> ScriptedKube:
    done = pod({"terminated": {"exitCode": 0, "message": DIGEST}})
    return ScriptedKube([
        (job([]), []),
        (job([]), [pod({"running": {"startedAt": "t"}})]),
        (job(["Complete"]), [done]),
    ])


async def test_a_build_streams_waiting_building_lines_pushing_and_built() -> None:
    kube = script()
    events = await run(kube)
    phases = [e["phase"] for _, e in events]
    assert phases == ["waiting", "building", "log", "log", "log", "pushing", "log", "built"]
    assert [i for i, e in events if e["phase"] == "log"] == [1, 2, 3, 4]
    assert events[-1][1]["digest"] == DIGEST
    assert events[-1][1]["image"] == f"registry.local:5000/alice/app@{DIGEST}"
    # The result was recorded on the Job on the way out.
    assert any(p["metadata"]["annotations"].get(c.ANNOTATION_DIGEST) == DIGEST for p in kube.patches)


async def test_resuming_skips_lines_the_client_has() -> None:
    events = await run(script(), last_id=2)
    assert [(i, e["message"]) for i, e in events if e["phase"] == "log"] == [(3, LOG[2]), (4, LOG[3])]
    assert events[-1][1]["phase"] == "built"


async def test_a_finished_build_replays_its_log_then_its_result() -> None:
    kube = ScriptedKube([(job(["Complete"]), [pod({"terminated": {"exitCode": 0, "message": DIGEST}})])])
    events = await run(kube)
    assert [e["phase"] for _, e in events] == ["log", "log", "log", "pushing", "log", "built"]


async def test_a_failed_build_ends_with_failed_and_the_reason() -> None:
    failed = pod({"terminated": {"exitCode": 1, "reason": "Error", "message": "error building image: RUN false"}})
    events = await run(ScriptedKube([(job(["Failed"]), [failed])]))
    assert events[-1][1]["phase"] == "failed" and "RUN false" in events[-1][1]["message"]
