"""Prometheus metrics shared by every layer.

Other modules only increment or set what is declared here (``REGISTRY_REQUESTS`` from the registry
client, ``GITHUB_RATE_LIMIT`` from the GitHub client), so names and labels stay in one place. Counts
that live in the journal (queue depth, jobs by state) are read at scrape time, so every web process
reports the same numbers however many workers there are. Counters kept in worker processes reach
``/metrics`` when ``PROMETHEUS_MULTIPROC_DIR`` is set for web and worker alike (prometheus-client's
multiprocess mode).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

DELIVERIES = Counter(
    "pullable_webhook_deliveries", "Webhook deliveries received, by event and result", ["event", "result"]
)
JOB_DURATION = Histogram(
    "pullable_job_duration_seconds",
    "Wall time of finished job attempts, by kind and outcome",
    ["kind", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, float("inf")),
)
REGISTRY_REQUESTS = Counter(
    "pullable_registry_requests", "HTTP requests made to container registries, by status", ["status"]
)
GITHUB_RATE_LIMIT = Gauge(
    "pullable_github_rate_limit_remaining",
    "x-ratelimit-remaining last seen from GitHub, by installation and resource",
    ["installation", "resource"],
    multiprocess_mode="mostrecent",
)


def set_github_rate_limit(installation_id: int | None, resource: str, remaining: int) -> None:
    """Listener for :data:`bot.github.RATE_LISTENERS` (subscribed by the jobs layer)."""
    GITHUB_RATE_LIMIT.labels("app" if installation_id is None else str(installation_id), resource).set(
        remaining
    )


class _JournalCollector(Collector):
    """Reads job counts by state from the journal at scrape time."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        counts = dict(self._counts())
        depth = GaugeMetricFamily("pullable_queue_depth", "Jobs waiting to run")
        depth.add_metric([], counts.get("queued", 0))
        jobs = GaugeMetricFamily("pullable_jobs", "Jobs in the journal, by state", labels=["state"])
        for state, n in sorted(counts.items()):
            jobs.add_metric([state], n)
        return [depth, jobs]


def render(job_counts: Callable[[], Mapping[str, int]] | None = None) -> bytes:
    """The text exposition: this process's metrics (or every process's in multiprocess mode),
    plus the journal's counts."""
    registry: CollectorRegistry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(_Forward(REGISTRY))
    if job_counts is not None:
        registry.register(_JournalCollector(job_counts))
    return generate_latest(registry)


class _Forward(Collector):
    """Exposes the default registry inside a per-scrape registry (so the journal collector is not
    registered globally once per app instance)."""

    def __init__(self, inner: CollectorRegistry) -> None:
        self._inner = inner

    def collect(self) -> Iterable[object]:  # type: ignore[override]
        return self._inner.collect()
