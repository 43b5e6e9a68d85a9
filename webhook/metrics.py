"""Prometheus metrics of the webhook, on a registry per app (tests build many apps in one process)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

OUTCOMES = ("mutated", "unchanged", "conflict", "error")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.latency = Histogram(
            "poddefault_webhook_admission_duration_seconds", "Time to answer one AdmissionReview.",
            registry=r, buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
        self.admissions = Counter(
            "poddefault_webhook_admissions", "AdmissionReviews answered, by outcome.", ["outcome"], registry=r)
        for outcome in OUTCOMES:
            self.admissions.labels(outcome)
        self.rejected_requests = Counter(
            "poddefault_webhook_rejected_requests", "HTTP requests to /mutate refused before admission "
            "(malformed, too large), by HTTP status.", ["code"], registry=r)
        self.cache_size = Gauge("poddefault_webhook_cache_poddefaults", "PodDefaults in the cache.", registry=r)
        self.cache_ready = Gauge("poddefault_webhook_cache_ready", "1 once the first list completed.", registry=r)
        self.cache_last_sync = Gauge(
            "poddefault_webhook_cache_last_sync_timestamp_seconds",
            "Unix time the cache last heard from the apiserver (list, watch event or bookmark).", registry=r)
        self.cache_age = Gauge(
            "poddefault_webhook_cache_age_seconds",
            "Seconds since the cache last heard from the apiserver (-1 before the first list).", registry=r)
        self.events = Counter(
            "poddefault_webhook_events", "Kubernetes Events about conflicts, by result.", ["result"], registry=r)
        for result in ("recorded", "failed", "dropped", "suppressed"):
            self.events.labels(result)

    def bind_cache(self, size: Callable[[], int], ready: Callable[[], bool],
                   last_sync: Callable[[], float | None]) -> None:
        """Cache gauges are read at scrape time, so they are never stale and the cache knows nothing of us."""
        self.cache_size.set_function(lambda: float(size()))
        self.cache_ready.set_function(lambda: 1.0 if ready() else 0.0)
        self.cache_last_sync.set_function(lambda: last_sync() or 0.0)
        self.cache_age.set_function(lambda: -1.0 if last_sync() is None else time.time() - (last_sync() or 0.0))
