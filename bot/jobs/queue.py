"""The queue: huey carries job ids, the journal carries the jobs.

huey messages hold nothing but a job id, so a lost or duplicated message is harmless: the journal
decides whether a job runs (an atomic claim), and the reaper re-sends ids whose message was lost.
SQLite under ``PULLABLE_DATA_DIR`` by default (one machine, nothing to install); Redis when
``REDIS_URL`` is set (workers on many machines).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab

from bot.jobs import KINDS
from bot.jobs.journal import Job, Journal, RedisStore, SqliteStore, Wake
from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)

EXECUTE = "pullable.execute"
SCHEDULE = "pullable.schedule"


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

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
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
        from bot.jobs.worker import execute

        execute(self, job_id)

    def _tick(self) -> None:
        """One submit per schedule tick, however many consumers fire it (the id is the minute)."""
        minute = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M")
        self.submit("schedule", {"tick": minute}, job_id=f"schedule-{minute}")

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
        spec = KINDS.get(kind)
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
