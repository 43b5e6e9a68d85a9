"""Kubernetes Events on PodDefaults, recorded fire-and-forget so admission never waits for them.

Why Events: the user whose pod was denied sees the message, but the owner of a PodDefault (often someone
else, in a namespace shared by a team) finds it with `kubectl describe poddefault`. Recording runs in a
background task with a timeout and a bound on pending tasks; a failure is logged and counted, never
raised. A controller that retries a denied pod would repeat the same Event, so an identical one is not
recorded again for the same PodDefault within `interval` seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from webhook import constants as c
from webhook.logs import log
from webhook.metrics import Metrics
from webhook.model import CompiledPodDefault

logger = logging.getLogger("webhook.events")

MAX_MESSAGE = 1000
MAX_PENDING = 64


def conflict_event(pd: CompiledPodDefault, message: str, now: dt.datetime, instance: str) -> dict[str, Any]:
    """A core/v1 Event about one PodDefault (pure, so its shape is tested without an apiserver)."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    meta = pd.obj.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{pd.name}.",
            "namespace": pd.namespace,
            "labels": {c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE, c.COMPONENT_LABEL: c.COMPONENT_VALUE},
        },
        "involvedObject": {
            "apiVersion": c.API_VERSION,
            "kind": c.KIND,
            "name": pd.name,
            "namespace": pd.namespace,
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": c.EVENT_REASON_CONFLICT,
        "message": message,
        "type": "Warning",
        "source": {"component": c.EVENT_COMPONENT, "host": instance},
        "reportingComponent": c.EVENT_COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


CreateEvent = Callable[[str, dict[str, Any]], Awaitable[Any]]


def kube_event_creator(api_client: Any) -> CreateEvent:
    """`create(namespace, body)` through a kubernetes_asyncio ApiClient."""
    from kubernetes_asyncio.client import CoreV1Api

    core = CoreV1Api(api_client)

    async def create(namespace: str, body: dict[str, Any]) -> Any:
        return await core.create_namespaced_event(namespace, body)  # type: ignore[arg-type]  # dicts are accepted

    return create


class EventRecorder:
    """Records Events through `create` (see `kube_event_creator`); `record` returns at once."""

    def __init__(self, create: CreateEvent, metrics: Metrics, timeout: float = 5.0, interval: float = 60.0) -> None:
        self._create_event = create
        self._metrics = metrics
        self._timeout = timeout
        self._interval = interval
        self._pending: set[asyncio.Task[None]] = set()
        self._recent: dict[tuple[str, str, str], float] = {}
        self._instance = socket.gethostname()

    def record(self, pd: CompiledPodDefault, message: str) -> None:
        now = time.monotonic()
        key = (pd.namespace, pd.name, message)
        if now - self._recent.get(key, -1e9) < self._interval:
            self._metrics.events.labels("suppressed").inc()
            return
        if len(self._pending) >= MAX_PENDING:
            self._metrics.events.labels("dropped").inc()
            log(logger, "event_dropped", logging.WARNING, namespace=pd.namespace, name=pd.name)
            return
        self._recent[key] = now
        if len(self._recent) > 4096:  # forget old keys; an occasional duplicate Event is harmless
            self._recent = {k: t for k, t in self._recent.items() if now - t < self._interval}
        body = conflict_event(pd, message, dt.datetime.now(dt.UTC), self._instance)
        task = asyncio.get_running_loop().create_task(self._create(body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _create(self, body: dict[str, Any]) -> None:
        ns, name = body["metadata"]["namespace"], body["involvedObject"]["name"]
        try:
            async with asyncio.timeout(self._timeout):
                await self._create_event(ns, body)
            self._metrics.events.labels("recorded").inc()
        except Exception as e:  # never let an Event break anything
            self._metrics.events.labels("failed").inc()
            log(logger, "event_failed", logging.WARNING, namespace=ns, name=name, error=f"{type(e).__name__}: {e}")

    async def drain(self) -> None:
        """Waits for pending Events (shutdown, tests)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
