"""Prometheus metrics, in a registry of our own so tests can create several apps in one process."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Histogram(
            "builder_http_request_duration_seconds", "HTTP request latency by route, method and status.",
            ["route", "method", "status"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.builds = Counter(
            "builder_builds_requested_total",
            "POSTed builds by outcome (created, reused, rejected_<status>).", ["outcome"], registry=r,
        )
        self.cancels = Counter("builder_builds_cancelled_total", "Builds cancelled through the API.", registry=r)
        self.auth = Counter(
            "builder_auth_refusals_total", "Requests refused by authentication/authorization.", ["status"],
            registry=r,
        )
        self.streams = Gauge("builder_log_streams", "Log streams currently open.", registry=r)
