"""The queue: huey carries job ids, the journal carries the jobs, and :func:`execute` runs them.

huey messages hold nothing but a job id, so a lost or duplicated message is harmless: the journal
decides whether a job runs (an atomic claim), and the reaper re-sends ids whose message was lost.
SQLite under ``PULLABLE_DATA_DIR`` by default (one machine, nothing to install); Redis when
``REDIS_URL`` is set (workers on many machines).

A job runs under a lease renewed by a heartbeat; if the process dies (kill -9, OOM), the lease
runs out and the reaper of any live worker puts the job back in the queue. The kinds a queue runs
are :data:`bot.jobs.app.KINDS` unless it is given others.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab

from bot import logs, metrics
from bot.github import job_tokens
from bot.jobs import Context, Kind, is_transient
from bot.jobs.app import KINDS
from bot.jobs.journal import Claim, Job, Journal, RedisStore, SqliteStore, Wake
from bot.jobs.requests import SCHEDULE as SCHEDULE_JOB
from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)

EXECUTE = "pullable.execute"
SCHEDULE = "pullable.schedule"
MAX_BACKOFF = 900.0


def parse_cron(expr: str) -> crontab:
    """``PULLABLE_SCHEDULE`` (five cron fields, UTC) as a huey validator."""
    fields = expr.split()
    if len(fields) != 5:
        raise SettingsError(f"PULLABLE_SCHEDULE must have 5 cron fields, got {expr!r}")
    try:
        return crontab(*fields, strict=True)
    except ValueError as exc:
        raise SettingsError(f"PULLABLE_SCHEDULE {expr!r}: {exc}") from None


class Queue:
    """The one object web and worker share: submit jobs, accept deliveries, wake jobs up."""

    def __init__(self, settings: Settings, kinds: Mapping[str, Kind] = KINDS) -> None:
        self.settings = settings
        self.kinds = kinds
        self.cron = parse_cron(settings.schedule)
        self.huey: Huey
        if settings.redis_url:
            self.huey = RedisHuey("pullable", url=settings.redis_url, results=False, utc=True)
            store: Any = RedisStore(settings.redis_url)
        else:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            path = settings.data_dir / "pullable.db"
            # No fsync for huey's messages: the journal (WAL, fsynced at checkpoints) is the record,
            # and the reaper re-sends any message a crash loses.
            self.huey = SqliteHuey(
                "pullable", filename=str(path), results=False, utc=True, timeout=60, fsync=False
            )
            store = SqliteStore(path)
        self.journal = Journal(store, settings.max_attempts)
        self._execute = self.huey.task(name=EXECUTE)(self._run)
        self.huey.periodic_task(self.cron, name=SCHEDULE)(self._tick)

    def _run(self, job_id: str) -> None:
        execute(self, job_id)

    def _tick(self) -> None:
        """One submit per schedule tick, however many consumers fire it (the id is the minute)."""
        minute = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M")
        self.submit(SCHEDULE_JOB, {"tick": minute}, job_id=f"schedule-{minute}")

    # -- producing ------------------------------------------------------------------------------
    def accept(
        self,
        delivery_id: str,
        event: str,
        action: str | None,
        payload: Mapping[str, Any],
        signed: str | None = None,
    ) -> Job | None:
        """Record and enqueue one verified delivery; None when it is a duplicate (by delivery id,
        or by ``signed``, a hash of what the signature covers)."""
        job = Job("webhook", {"event": event, "action": action, "delivery": delivery_id, "payload": payload})
        accepted = self.journal.accept(delivery_id, event, action, job, signed)
        if accepted is not None:
            self.enqueue(accepted.id)
        return accepted

    def submit(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        repo: str | None = None,
        delay: float = 0.0,
        deliveries: Sequence[str] = (),
        job_id: str | None = None,
    ) -> Job:
        """Add a job (coalesced into a waiting one of the same repository when its kind allows)."""
        job = Job(kind, dict(payload), repo=repo.lower() if repo else None, deliveries=list(deliveries))
        if job_id is not None:
            job.id = job_id
        spec = self.kinds.get(kind)
        out, wake = self.journal.submit(job, merge=spec.merge if spec else None, delay=delay)
        if wake is not None:
            self.wake([wake])
        return out

    def enqueue(self, job_id: str, delay: float = 0.0) -> None:
        if delay > 0:
            self._execute.schedule(args=(job_id,), delay=delay)
        else:
            self._execute(job_id)

    def wake(self, wakes: Sequence[Wake]) -> None:
        for w in wakes:
            self.enqueue(w.job_id, w.delay)

    # -- health ---------------------------------------------------------------------------------
    def ping(self) -> None:
        """Raises unless both the journal and huey's storage answer."""
        self.journal.ping()
        self.huey.pending_count()

    def reap(self) -> int:
        """Requeue lost work (see :meth:`Journal.reap`); returns how many ids were re-sent."""
        wakes = self.journal.reap(stale_after=self.settings.requeue_after)
        if wakes:
            log.warning("reaper re-sent %d job(s): %s", len(wakes), ", ".join(w.job_id for w in wakes))
        self.wake(wakes)
        return len(wakes)


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
    with logs.context(delivery=job.deliveries[0] if job.deliveries else None, repo=job.repo, job=job.id):
        _run_claimed(queue, job, lease)


def _run_claimed(queue: Queue, job: Job, lease: float) -> None:
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(queue, job, lease, stop), daemon=True)
    beat.start()
    started = time.monotonic()
    error: str | None = None
    retry_in: float | None = None
    try:
        spec = queue.kinds.get(job.kind)
        if spec is None:
            raise LookupError(f"no job kind {job.kind!r} is registered in this worker")
        with job_tokens(f"{job.id}#{job.attempts}"):  # revoked when the job ends, however (C2)
            spec.run(job, Context(queue, job))
        outcome = "done"
    except Exception as exc:
        transient, after = is_transient(exc)
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
