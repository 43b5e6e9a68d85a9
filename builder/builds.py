"""Build operations over Jobs: create (with reuse and the namespace limit), read, list, cancel.

Stateless: every answer is derived from Jobs and pods read now, so any replica can serve any request. The one
thing a replica writes besides creating Jobs is the *observed* result (phase, digest, message) as annotations,
idempotently, so the result survives its pod and later reads need no pod.
"""

from __future__ import annotations

import logging
from typing import Any

from . import constants as c
from .agents import VolumeAgents
from .auth import Caller
from .cache import BuildCache, Predicate, present
from .job import dedupe_key, render_job
from .kube import Kube, KubeError
from .model import Build, BuildPhase, BuildStatus
from .phase import derive_status, job_finished, job_to_build, needs_pods, record_patch
from .settings import Settings
from .validate import CheckedRequest, RequestRejected

log = logging.getLogger("builder.builds")
Obj = dict[str, Any]
ACTIVE = {c.LABEL_ACTIVE: "true"}
# A set-based selector naming this many jobs stays well within URL limits; beyond it, list all build pods.
MAX_NAMED_JOBS = 50


class LimitExceeded(RequestRejected):
    """429: the namespace already runs as many builds as it may."""


def is_build_job(job: Obj | None) -> bool:
    """Only Jobs we made are Builds (a user's own Job with a similar name is not ours to show or stop)."""
    labels = ((job or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(c.LABEL_MANAGED_BY) == c.MANAGED_BY and labels.get(c.LABEL_COMPONENT) == c.COMPONENT_BUILD


def _name(job: Obj) -> str:
    return str(job["metadata"]["name"])


def _cancelled(job: Obj | None) -> bool:
    ann = ((job or {}).get("metadata") or {}).get("annotations") or {}
    return job is None or ann.get(c.ANNOTATION_PHASE) == BuildPhase.CANCELLED.value


class BuildService:
    """The operations behind the REST routes. Reads come from the watch cache once it is ready (else from
    the apiserver); writes, and the reads a write depends on (cancel), always go to the apiserver."""

    def __init__(self, kube: Kube, settings: Settings, cache: BuildCache | None = None,
                 agents: VolumeAgents | None = None) -> None:
        self.kube, self.settings, self.cache, self.agents = kube, settings, cache, agents

    def _ready_cache(self, live: bool = False) -> BuildCache | None:
        return self.cache if not live and self.cache is not None and self.cache.ready else None

    async def _jobs(self, namespace: str, labels: dict[str, str] | None = None, live: bool = False) -> list[Obj]:
        """The namespace's build Jobs carrying `labels` (equality), from the cache when it is ready."""
        labels = labels or {}
        cache = self._ready_cache(live)
        if cache is None:
            selector = ",".join([c.BUILD_SELECTOR, *(f"{k}={v}" for k, v in labels.items())])
            return await self.kube.list_jobs(namespace, selector)
        # The cache holds only Jobs its selector (BUILD_SELECTOR) matched: no need to check that again here.
        return [job for job in cache.jobs.in_namespace(namespace)
                if all(((job.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in labels.items())]

    async def _pods_by_job(self, namespace: str, jobs: list[Obj], live: bool = False) -> dict[str, list[Obj]]:
        names = [_name(j) for j in jobs if needs_pods(j)]
        if not names:
            return {}
        cache = self._ready_cache(live)
        if cache is not None:
            return cache.pods_of(namespace, set(names))
        if len(names) <= MAX_NAMED_JOBS:
            selector = f"{c.LABEL_JOB_NAME} in ({','.join(sorted(names))})"
        else:
            selector = c.BUILD_SELECTOR
        by_job: dict[str, list[Obj]] = {}
        for pod in await self.kube.list_pods(namespace, selector):
            job_name = ((pod.get("metadata") or {}).get("labels") or {}).get(c.LABEL_JOB_NAME)
            if job_name:
                by_job.setdefault(job_name, []).append(pod)
        return by_job

    async def observe(self, namespace: str, jobs: list[Obj], live: bool = False) -> list[tuple[Obj, BuildStatus]]:
        """Each Job with its derived status; records newly finished results on the Job (best effort), and
        stops a Job whose pod can never start (it would otherwise wait for its deadline)."""
        pods = await self._pods_by_job(namespace, jobs, live)
        out = []
        for job in jobs:
            status = derive_status(job, pods.get(_name(job), []))
            patch = record_patch(job, status)
            if patch is not None:
                if status.phase == BuildPhase.FAILED and not job_finished(job):
                    patch["spec"] = {"activeDeadlineSeconds": 1}
                try:
                    job = await self.kube.patch_job(namespace, _name(job), patch)
                except KubeError as e:  # another replica may have done it, or the Job just went away
                    log.info("could not record build result", extra={"namespace": namespace,
                                                                        "build": _name(job), "error": str(e)})
            out.append((job, status))
        return out

    async def _active_count(self, namespace: str, before: str = "", live: bool = False) -> int:
        """Builds pending or running; with `before`, only those created before that one (by the cache's
        arrival order; from the apiserver, all others)."""
        jobs = [j for j in await self._jobs(namespace, ACTIVE, live) if _name(j) != before]
        cache = self._ready_cache(live)
        if before and cache is not None:
            mine = cache.jobs.arrival(namespace, before)
            if mine is not None:
                jobs = [j for j in jobs if (cache.jobs.arrival(namespace, _name(j)) or 0) < mine]
        observed = await self.observe(namespace, jobs, live)
        return sum(1 for _, s in observed if not s.phase.finished)

    async def find_reusable(self, namespace: str, checked: CheckedRequest) -> Build | None:
        """The newest succeeded build of the same content, Dockerfile, args and destination, if any."""
        key = dedupe_key(checked)
        if not key:
            return None
        jobs = await self._jobs(namespace, {c.LABEL_DEDUPE_KEY: key})
        found = []
        for job, status in await self.observe(namespace, jobs):
            ann = job["metadata"].get("annotations") or {}
            if (status.phase == BuildPhase.SUCCEEDED and status.digest
                    and ann.get(c.ANNOTATION_CONTENT_HASH) == checked.request.content_hash
                    and ann.get(c.ANNOTATION_DESTINATION) == str(checked.destination)):
                found.append((status.completion_time or "", job["metadata"].get("creationTimestamp", ""), job,
                              status))
        if not found:
            return None
        *_, job, status = max(found, key=lambda f: (f[0], f[1]))
        return job_to_build(job, status)

    async def create(self, namespace: str, checked: CheckedRequest, caller: Caller) -> tuple[Build, bool]:
        """(build, created). Reuses a finished identical build; refuses beyond the namespace's limit.

        The limit holds across replicas without a lock: check, create, then count the active builds created
        *before* this one (in the order the watch delivered them, which is etcd's); if there are too many, this
        request deletes its own Job and answers 429. Of N racing requests exactly the first `limit` go ahead.
        When the watch is behind, the recount asks the apiserver and counts every other active build: racing
        requests may then both step back, but never both go ahead beyond the limit."""
        reused = await self.find_reusable(namespace, checked)
        if reused is not None:
            return reused, False
        await self.check_context(namespace, checked)
        limit = self.settings.max_concurrent_builds_per_namespace
        if await self._active_count(namespace) >= limit:
            raise LimitExceeded(429, "namespace", f"{namespace!r} already has {limit} builds pending or running")
        job = await self.kube.create_job(namespace, render_job(checked, self.settings, namespace, caller.username))
        # If the watch is behind, count from the apiserver, which has every Job created before this one.
        live = not await self._delivered(namespace, _name(job))
        if await self._active_count(namespace, before=_name(job), live=live) >= limit:
            await self.kube.delete_job(namespace, _name(job))
            raise LimitExceeded(429, "namespace", f"{namespace!r} already has {limit} builds pending or running")
        log.info("build created", extra={"namespace": namespace, "build": _name(job), "user": caller.username,
                                         "destination": str(checked.destination)})
        return job_to_build(job, derive_status(job, [])), True

    async def check_context(self, namespace: str, checked: CheckedRequest) -> None:
        """400 when the volume agent says the context or Dockerfile does not resolve inside the volume."""
        if self.agents is None:
            return
        claim = checked.request.context.pvc
        verdict = await self.agents.check(namespace, claim, checked.context_path, checked.dockerfile)
        if verdict is not None and not verdict.ok:
            raise RequestRejected(400, verdict.field, f"{verdict.message} (claim {claim!r})")

    async def _delivered(self, namespace: str, name: str, until: Predicate = present) -> bool:
        """Whether the cache shows (now, or within a moment) this replica's own write to the Job. A watch
        delivers events in the order etcd committed them, so it then also has every earlier write."""
        cache = self._ready_cache()
        if cache is None:
            return False
        return await cache.jobs.wait_until(namespace, name, self.settings.cache_wait_seconds, until)

    async def get_job(self, namespace: str, name: str) -> Obj | None:
        job = await self.kube.get_job(namespace, name)
        return job if is_build_job(job) else None

    async def get(self, namespace: str, name: str) -> Build | None:
        cache = self._ready_cache()
        cached = cache.jobs.get(namespace, name) if cache is not None else None
        # Not in the cache: perhaps created by another replica a moment ago; the apiserver knows.
        job = cached if is_build_job(cached) else await self.get_job(namespace, name)
        if job is None:
            return None
        [(job, status)] = await self.observe(namespace, [job])
        return job_to_build(job, status)

    async def list(self, namespace: str, phase: BuildPhase | None = None) -> list[Build]:
        jobs = await self._jobs(namespace)
        jobs.sort(key=lambda j: (j["metadata"].get("creationTimestamp", ""), _name(j)))
        out = []
        for job, status in await self.observe(namespace, jobs):
            if phase is not None and status.phase != phase:
                continue
            try:
                out.append(job_to_build(job, status))
            except ValueError:  # a Job with our labels but no request annotation: not a Build we can show
                continue
        return out

    async def cancel(self, namespace: str, name: str, caller: Caller) -> Build | None:
        """Marks the build Cancelled and stops its pod (by cutting the Job's deadline to 1 s: the Job controller
        then deletes the pod and marks the Job failed, and ttlSecondsAfterFinished still cleans it up).
        The patch carries the resourceVersion read, so a build that finished meanwhile is not overwritten."""
        for _ in range(3):
            job = await self.get_job(namespace, name)
            if job is None:
                return None
            [(job, status)] = await self.observe(namespace, [job])
            if status.phase.finished:
                raise RequestRejected(409, "name", f"build {name!r} already finished ({status.phase.value})")
            patch = {
                "metadata": {
                    "resourceVersion": job["metadata"]["resourceVersion"],
                    "annotations": {
                        c.ANNOTATION_PHASE: BuildPhase.CANCELLED.value,
                        c.ANNOTATION_MESSAGE: f"cancelled by {caller.username}",
                        c.ANNOTATION_CANCELLED_BY: caller.username,
                    },
                    "labels": {c.LABEL_ACTIVE: None},
                },
                "spec": {"activeDeadlineSeconds": 1},
            }
            try:
                job = await self.kube.patch_job(namespace, name, patch)
            except KubeError as e:
                if e.status == 409:
                    continue
                if e.status == 404:
                    return None
                raise
            await self._delivered(namespace, name, _cancelled)  # so this replica's next count has it
            log.info("build cancelled", extra={"namespace": namespace, "build": name, "user": caller.username})
            return job_to_build(job, derive_status(job, []))
        raise RequestRejected(409, "name", f"build {name!r} kept changing; try again")
