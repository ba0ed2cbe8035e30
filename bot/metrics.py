"""Prometheus metrics shared by every layer.

Other modules only increment or set what is declared here (``REGISTRY_REQUESTS`` from the registry
client, ``GITHUB_RATE_LIMIT`` from the GitHub client), so names and labels stay in one place. Counts
that live in the journal (queue depth, jobs by state) are read at scrape time, so every web process
reports the same numbers however many workers there are. Counters kept in processes (gunicorn's
workers, the job workers) reach every scrape through prometheus-client's multiprocess mode, which
``pullable serve`` and ``pullable worker`` switch on themselves (:func:`share_across_processes`):
one directory per machine under ``$PULLABLE_DATA_DIR/metrics``, read whole at each scrape.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
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
    """Reads job counts by state (and, given ``health``, the waiting jobs and the workers'
    heartbeat) from the journal at scrape time."""

    def __init__(
        self,
        counts: Callable[[], Mapping[str, int]],
        health: Callable[[], Mapping[str, float | None]] | None = None,
    ) -> None:
        self._counts = counts
        self._health = health

    def collect(self) -> Iterable[GaugeMetricFamily]:
        counts = dict(self._counts())
        depth = GaugeMetricFamily("pullable_queue_depth", "Jobs waiting to run")
        depth.add_metric([], counts.get("queued", 0))
        jobs = GaugeMetricFamily("pullable_jobs", "Jobs in the journal, by state", labels=["state"])
        for state, n in sorted(counts.items()):
            jobs.add_metric([state], n)
        out = [depth, jobs]
        if self._health is not None:
            h = dict(self._health())
            waiting = GaugeMetricFamily("pullable_queue_waiting", "Jobs due that no worker has taken yet")
            waiting.add_metric([], float(h.get("waiting") or 0))
            oldest = GaugeMetricFamily(
                "pullable_queue_oldest_waiting_seconds", "How long the oldest due job has waited"
            )
            oldest.add_metric([], float(h.get("oldest") or 0))
            out += [waiting, oldest]
            beat = h.get("heartbeat_age")
            if beat is not None:
                age = GaugeMetricFamily(
                    "pullable_worker_heartbeat_age_seconds", "Seconds since a worker last said it was alive"
                )
                age.add_metric([], float(beat))
                out.append(age)
        return out


_PID_FILE = re.compile(r".*_(\d+)\.db")


def share_across_processes(data_dir: Path) -> Path:
    """Multiprocess mode for this process and the ones it forks: values live in files under
    ``data_dir/metrics/<host>`` (``PROMETHEUS_MULTIPROC_DIR`` if already set), and files of
    processes of this machine that are gone are removed first. Call before any metric is used."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    here = Path(given) if given else data_dir / "metrics" / _host()
    here.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(here)
    os.environ.setdefault("PULLABLE_METRICS_ROOT", str(here if given else here.parent))
    for f in here.glob("*.db"):
        m = _PID_FILE.fullmatch(f.name)
        if m and not _alive(int(m.group(1))):
            f.unlink(missing_ok=True)
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue()  # metrics' children are created lazily, after this
    return here


def process_exited(pid: int) -> None:
    """A process that wrote metrics ended (gunicorn's ``child_exit``, the worker's exit): its
    live gauges stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def serve_http(host: str, port: int) -> None:
    """A worker's own ``/metrics`` (every process of this machine), for a worker on a machine
    whose data directory the web process does not share."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    root = os.environ.get("PULLABLE_METRICS_ROOT") or os.environ["PROMETHEUS_MULTIPROC_DIR"]
    registry.register(_Shared(Path(root)))
    start_http_server(port, addr=host, registry=registry)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Shared(Collector):
    """Every process's values: the ``*.db`` files of each machine's directory under the root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def collect(self) -> Iterable[Metric]:
        from prometheus_client import multiprocess

        files = sorted({str(f) for f in [*self.root.glob("*.db"), *self.root.glob("*/*.db")]})
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)


def render(
    job_counts: Callable[[], Mapping[str, int]] | None = None,
    health: Callable[[], Mapping[str, float | None]] | None = None,
) -> bytes:
    """The text exposition: this process's metrics (or every process's in multiprocess mode),
    plus the journal's counts."""
    registry: CollectorRegistry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        root = os.environ.get("PULLABLE_METRICS_ROOT") or os.environ["PROMETHEUS_MULTIPROC_DIR"]
        registry.register(_Shared(Path(root)))
    else:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(_Forward(REGISTRY))
    if job_counts is not None:
        registry.register(_JournalCollector(job_counts, health))
    return generate_latest(registry)


class _Forward(Collector):
    """Exposes the default registry inside a per-scrape registry (so the journal collector is not
    registered globally once per app instance)."""

    def __init__(self, inner: CollectorRegistry) -> None:
        self._inner = inner

    def collect(self) -> Iterable[Metric]:
        return self._inner.collect()
