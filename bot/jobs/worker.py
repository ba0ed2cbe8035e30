"""The worker: runs claimed jobs under a lease, retries transient failures, reaps lost work.

``pullable worker`` (or :func:`main`) starts a huey consumer plus a reaper thread. A job's lease
is renewed by a heartbeat while it runs; if the process dies (kill -9, OOM), the lease runs out and
the reaper of any live worker (this one after a restart) puts the job back in the queue.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence

from bot import jobs, metrics
from bot.jobs.journal import Claim, Job
from bot.jobs.queue import Queue
from bot.settings import Settings

log = logging.getLogger(__name__)

MAX_BACKOFF = 900.0


def backoff(settings: Settings, attempts: int) -> float:
    """Exponential: retry_base, 2x, 4x ... capped, so a GitHub outage is not hammered."""
    return min(settings.retry_base * 2 ** max(0, attempts - 1), MAX_BACKOFF)


def execute(queue: Queue, job_id: str) -> None:
    """Run one job if this worker can claim it; every outcome is written to the journal."""
    lease = queue.settings.job_lease
    claimed = queue.journal.claim(job_id, lease)
    if isinstance(claimed, Claim):
        log.debug("job %s not run: %s", job_id, claimed.value)
        return
    job: Job = claimed
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(queue, job, lease, stop), daemon=True)
    beat.start()
    started = time.monotonic()
    error: str | None = None
    retry_in: float | None = None
    try:
        spec = jobs.KINDS.get(job.kind)
        if spec is None:
            raise LookupError(f"no job kind {job.kind!r} is registered in this worker")
        spec.run(job, jobs.Context(queue, job))
        outcome = "done"
    except Exception as exc:
        transient, after = jobs.is_transient(exc)
        error = f"{type(exc).__name__}: {exc}"[:1000]
        if transient:
            retry_in = after if after is not None else backoff(queue.settings, job.attempts)
        outcome = "retry" if transient and job.attempts < job.max_attempts else "failed"
        log.log(
            logging.WARNING if transient else logging.ERROR,
            "job %s (%s, attempt %d) %s: %s",
            job.id, job.kind, job.attempts, outcome, error,
            exc_info=not transient,
        )  # fmt: skip
    finally:
        stop.set()
    metrics.JOB_DURATION.labels(job.kind, outcome).observe(time.monotonic() - started)
    queue.wake(queue.journal.finish(job, error, retry_in))


def _heartbeat(queue: Queue, job: Job, lease: float, stop: threading.Event) -> None:
    while not stop.wait(lease / 3):
        try:
            if not queue.journal.extend(job, lease):
                log.warning("job %s: lease lost (reaped); the result of this attempt is dropped", job.id)
                return
        except Exception:
            log.exception("job %s: could not renew the lease", job.id)


def _reaper(queue: Queue, stop: threading.Event) -> None:
    while True:
        try:
            queue.reap()
        except Exception:
            log.exception("reaper failed; retrying")
        if stop.wait(queue.settings.reap_interval):
            return


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pullable worker``: consume until SIGINT/SIGTERM."""
    del argv  # everything comes from the environment, as for the web process
    settings = Settings.from_env()
    logging.basicConfig(
        level=settings.log_level.upper() if settings.log_level != "trace" else "DEBUG",
        format="%(asctime)s %(levelname)s %(name)s [pid %(process)d] %(message)s",
    )
    jobs.load()
    queue = Queue(settings)
    stop = threading.Event()
    threading.Thread(target=_reaper, args=(queue, stop), daemon=True, name="reaper").start()
    consumer = queue.huey.create_consumer(
        workers=settings.worker_threads,
        worker_type="thread",
        periodic=True,
        max_delay=float(os.environ.get("PULLABLE_POLL_MAX", "2")),
        check_worker_health=True,
    )
    log.info("worker %d consuming (%s)", os.getpid(), "redis" if settings.redis_url else "sqlite")
    try:
        consumer.run()
    finally:
        stop.set()
    return 0
