"""The log stream of one build: phases and log lines as Server-Sent Events, resumable, with heartbeats.

I/O shell around the pure `events` and `phase` modules. The loop re-reads the Job and pod, says the phase when
it changes, follows the Kaniko container's log while it runs, and otherwise waits for a pod change (a watch
that also times out every heartbeat interval, so a Job-only change is seen within one interval).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from . import constants as c
from . import events as ev
from .builds import BuildService
from .kube import KubeError
from .phase import derive_status, kaniko_state, newest_pod

T = TypeVar("T")
HEARTBEAT = object()


async def with_heartbeats(source: AsyncIterator[T], interval: float) -> AsyncIterator[T | object]:
    """Items from `source`, and HEARTBEAT whenever none arrived for `interval` seconds."""
    it = source.__aiter__()
    nxt: asyncio.Future[Any] = asyncio.ensure_future(it.__anext__())
    try:
        while True:
            done, _ = await asyncio.wait({nxt}, timeout=interval)
            if not done:
                yield HEARTBEAT
                continue
            try:
                item = nxt.result()
            except StopAsyncIteration:
                return
            yield item
            nxt = asyncio.ensure_future(it.__anext__())
    finally:
        if not nxt.done():
            nxt.cancel()
            with contextlib.suppress(BaseException):
                await nxt
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(BaseException):
                await aclose()


async def build_events(
    svc: BuildService, namespace: str, name: str, last_event_id: int, heartbeat: float
) -> AsyncIterator[bytes]:
    """The SSE byte stream for one build, from log line `last_event_id + 1` on."""
    kube = svc.kube
    selector = f"{c.LABEL_JOB_NAME}={name}"
    sent = last_event_id
    last_phase: dict[str, Any] | None = None
    pushing = False
    yield ev.retry_hint(3000)

    async def stream_lines(pod: str, follow: bool) -> AsyncIterator[bytes]:
        nonlocal sent, pushing
        n = 0
        source = kube.stream_log(namespace, pod, c.CONTAINER_NAME, follow=follow)
        async for item in with_heartbeats(source, heartbeat):
            if item is HEARTBEAT:
                yield ev.encode_heartbeat()
                continue
            n += 1
            if n <= sent:
                continue
            sent = n
            yield ev.encode_sse(ev.log_event(str(item)), event_id=n)
            if not pushing and ev.is_push_line(str(item)):
                pushing = True
                yield ev.encode_sse({"phase": ev.PUSHING, "build": name, "message": "pushing the image"}, sent)

    while True:
        job = await svc.get_job(namespace, name)
        if job is None:
            yield ev.encode_sse({"phase": ev.FAILED, "build": name, "message": "build not found (deleted?)"}, sent)
            return
        pods, rv = await kube.list_pods_rv(namespace, selector)
        status = derive_status(job, pods)
        pod = newest_pod(pods)
        state = kaniko_state(pod)
        started = "running" in state or "terminated" in state
        pod_name = (pod or {}).get("metadata", {}).get("name", "")

        if status.phase.finished:
            if started:  # what the client has not seen yet; line numbers make a re-read harmless
                with contextlib.suppress(KubeError):
                    async for chunk in stream_lines(pod_name, follow=False):
                        yield chunk
            # Record the result (digest) on the Job while the pod still exists.
            [(job, status)] = await svc.observe(namespace, [job])
            yield ev.encode_sse(ev.phase_event(status, name), sent)
            return

        data = ev.phase_event(status, name, pushing)
        if data != last_phase:
            last_phase = data
            yield ev.encode_sse(data, sent)

        if "running" in state:
            try:
                async for chunk in stream_lines(pod_name, follow=True):
                    yield chunk
            except KubeError:
                pass  # the container went away mid-stream; the next round says why
            continue

        # Wait for the pod to change (or one heartbeat interval), then look again.
        watch = kube.watch_pods(namespace, selector, max(1, int(heartbeat)), resource_version=rv)
        changed = False
        try:
            async for _event in watch:
                changed = True
                break
        except KubeError:
            pass
        finally:
            await watch.aclose()  # type: ignore[attr-defined]
        if not changed:
            yield ev.encode_heartbeat()


async def plain_log(svc: BuildService, namespace: str, name: str) -> tuple[str, str]:
    """(text, phase): the log so far as plain text (`?follow=false`), empty while the build has not started."""
    job = await svc.get_job(namespace, name)
    if job is None:
        raise LookupError(name)
    pods = await svc.kube.list_pods(namespace, f"{c.LABEL_JOB_NAME}={name}")
    status = derive_status(job, pods)
    pod = newest_pod(pods)
    state = kaniko_state(pod)
    lines: list[str] = []
    if pod and ("running" in state or "terminated" in state):
        with contextlib.suppress(KubeError):
            async for line in svc.kube.stream_log(namespace, pod["metadata"]["name"], c.CONTAINER_NAME, False):
                lines.append(line)
    return "".join(line + "\n" for line in lines), status.phase.value
