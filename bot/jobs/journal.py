"""The job journal: what huey cannot promise, kept next to the queue.

huey deletes a message before its task runs, so a worker killed mid-job loses it
(``../shared/research/queue.md``). The journal holds one record per job (queued -> running ->
done | failed) with a lease the running worker keeps extending; a reaper puts jobs with an
expired lease back in the queue. The same records give webhook de-duplication (a delivery is
``done`` only once every job it caused is done, so a redelivery after a failure runs again),
one running job per repository (claims fail while another job of the repository holds a lease)
and coalescing (a new job for a repository that already has one waiting is merged into it).

Two stores keep the records: a SQLite file (the one huey uses) or Redis. The logic is written once
over :class:`Txn`; each store only provides atomic read-modify-write.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

KEEP_SECONDS = 7 * 24 * 3600  # GHES redelivers for 7 days (github.com: 3)
OPEN = ("queued", "running")

Merge = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]


@dataclass
class Job:
    """One unit of work. ``repo`` (lower-cased ``owner/name``) serialises jobs of a repository."""

    kind: str
    payload: dict[str, Any]
    repo: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: str = "queued"
    attempts: int = 0
    max_attempts: int = 5
    lease_until: float = 0.0
    not_before: float = 0.0
    enqueued_at: float = 0.0
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    deliveries: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(vars(self), separators=(",", ":"))  # not asdict: it deep-copies the payload

    @classmethod
    def from_json(cls, text: str | bytes) -> Job:
        return cls(**json.loads(text))


class Claim(enum.Enum):
    """Why a claim did not hand the job over."""

    GONE = "gone"  # already running, finished or unknown: someone else has it
    BUSY = "busy"  # another job of the same repository holds a lease
    EARLY = "early"  # waiting for its retry time


@dataclass(frozen=True)
class Wake:
    """A job the caller must put (back) on the queue, ``delay`` seconds from now."""

    job_id: str
    delay: float = 0.0


class Txn(Protocol):
    """Reads and writes inside one atomic transaction of a store."""

    def job(self, job_id: str) -> Job | None: ...
    def put_job(self, job: Job) -> None: ...
    def open_jobs(self, repo: str | None = None) -> list[Job]: ...
    def delivery(self, delivery_id: str) -> dict[str, Any] | None: ...
    def put_delivery(self, d: dict[str, Any]) -> None: ...
    def limit(self, key: str) -> dict[str, Any] | None: ...
    def put_limit(self, key: str, doc: dict[str, Any], until: float) -> None: ...


class Store(Protocol):
    def transaction(self) -> contextlib.AbstractContextManager[Txn]: ...
    def prune(self, before: float) -> None: ...
    def put_doc(self, key: str, doc: Mapping[str, Any]) -> None: ...
    def get_doc(self, key: str) -> dict[str, Any] | None: ...
    def ping(self) -> None: ...


class Journal:
    """Job and delivery records; every method is one atomic transaction."""

    def __init__(self, store: Store, max_attempts: int = 5) -> None:
        self.store = store
        self.max_attempts = max_attempts

    # -- intake ---------------------------------------------------------------------------------
    def accept(
        self, delivery_id: str, event: str, action: str | None, job: Job, signed: str | None = None
    ) -> Job | None:
        """Record a verified delivery and its job; None when this delivery is already in hand
        (running or done). A delivery whose jobs failed is accepted again. ``signed`` (a hash of
        the signed bytes) also identifies it: the delivery id header is not signed, so a captured
        body replayed under fresh ids is the same delivery."""
        now = time.time()
        with self.store.transaction() as t:
            for key in (delivery_id, signed):
                d = t.delivery(key) if key else None
                if d is not None and d.get("of"):  # a hash recorded for an earlier delivery
                    d = t.delivery(d["of"])
                if d is not None and d["state"] != "failed" and d["created_at"] > now - KEEP_SECONDS:
                    return None
            job.deliveries = [delivery_id]
            job.max_attempts = self.max_attempts
            job.enqueued_at = now
            t.put_job(job)
            t.put_delivery(
                {"id": delivery_id, "event": event, "action": action, "state": "pending",
                 "jobs": [job.id], "created_at": now}
            )  # fmt: skip
            if signed:
                t.put_delivery(
                    {"id": signed, "of": delivery_id, "state": "alias", "jobs": [], "created_at": now}
                )
            return job

    def submit(self, job: Job, merge: Merge | None = None, delay: float = 0.0) -> tuple[Job, Wake | None]:
        """Add a job, or fold it into a waiting job of the same repository and kind (``merge``
        combines payloads). Returns the job that will run, and a wake-up when it needs one."""
        now = time.time()
        due = now + delay if delay > 0 else 0.0
        with self.store.transaction() as t:
            existing = t.job(job.id)
            if existing is not None:  # submitting a fixed id twice (a schedule tick) is a no-op
                return existing, None
            if merge is not None and job.repo is not None:
                for old in t.open_jobs(job.repo):
                    if old.state == "queued" and old.kind == job.kind:
                        old.payload = merge(old.payload, job.payload)
                        self._link(t, old, job.deliveries)
                        sooner = old.not_before > max(due, now)
                        if sooner:
                            old.not_before = due
                        t.put_job(old)
                        return old, Wake(old.id, delay) if sooner else None
            job.max_attempts = self.max_attempts
            job.not_before = due
            job.enqueued_at = now
            t.put_job(job)
            self._link(t, job, job.deliveries)
            return job, Wake(job.id, delay)

    @staticmethod
    def _link(t: Txn, job: Job, deliveries: Sequence[str]) -> None:
        for did in deliveries:
            if did not in job.deliveries:
                job.deliveries.append(did)
            d = t.delivery(did)
            if d is not None and job.id not in d["jobs"]:
                d["jobs"].append(job.id)
                t.put_delivery(d)

    # -- worker ---------------------------------------------------------------------------------
    def claim(self, job_id: str, lease: float) -> Job | Claim:
        """Take a queued job for ``lease`` seconds, unless its repository is busy."""
        now = time.time()
        with self.store.transaction() as t:
            job = t.job(job_id)
            if job is None or job.state != "queued":
                return Claim.GONE
            if job.not_before > now:
                return Claim.EARLY
            if job.repo is not None:
                for other in t.open_jobs(job.repo):
                    if other.id != job.id and other.state == "running" and other.lease_until > now:
                        return Claim.BUSY
            job.state, job.attempts = "running", job.attempts + 1
            job.lease_until, job.started_at, job.error = now + lease, now, None
            t.put_job(job)
            return job

    def extend(self, job: Job, lease: float) -> bool:
        """Renew the lease; False when the job was taken from us (reaped and claimed again)."""
        with self.store.transaction() as t:
            cur = t.job(job.id)
            if cur is None or cur.state != "running" or cur.attempts != job.attempts:
                return False
            cur.lease_until = time.time() + lease
            t.put_job(cur)
            return True

    def finish(self, job: Job, error: str | None = None, retry_in: float | None = None) -> list[Wake]:
        """Close one attempt: done (``error`` None), retried later (``retry_in``) or failed.
        Returns the jobs to enqueue now: the retry, and the next waiting job of the repository."""
        now = time.time()
        wakes: list[Wake] = []
        with self.store.transaction() as t:
            cur = t.job(job.id)
            if cur is None or cur.state != "running" or cur.attempts != job.attempts:
                return []  # reaped while we worked; the new attempt owns it
            cur.error, cur.lease_until = error, 0.0
            if error is None:
                cur.state, cur.finished_at = "done", now
            elif retry_in is not None and cur.attempts < cur.max_attempts:
                cur.state, cur.not_before, cur.enqueued_at = "queued", now + retry_in, now
                wakes.append(Wake(cur.id, retry_in))
            else:
                cur.state, cur.finished_at = "failed", now
            t.put_job(cur)
            self._settle(t, cur)
            if cur.repo is not None and cur.state != "queued":
                wakes.extend(self._next_for_repo(t, cur.repo, now))
        return wakes

    @staticmethod
    def _next_for_repo(t: Txn, repo: str, now: float) -> list[Wake]:
        # The one due first (a command now before a scheduled scan hours away), oldest first among
        # those due: a job that found the repository busy has no other message to wake it.
        waiting = sorted(
            (j for j in t.open_jobs(repo) if j.state == "queued"),
            key=lambda j: (max(j.not_before, now), j.created_at),
        )
        return [Wake(j.id, max(0.0, j.not_before - now)) for j in waiting[:1]]

    @staticmethod
    def _settle(t: Txn, job: Job) -> None:
        """Deliveries follow their jobs: failed as soon as one fails, done when all are done."""
        if job.state not in ("done", "failed"):
            return
        for did in job.deliveries:
            d = t.delivery(did)
            if d is None or d["state"] != "pending":
                continue
            if job.state == "failed":
                d["state"] = "failed"
            else:
                others = [t.job(j) for j in d["jobs"] if j != job.id]
                if all(o is None or o.state == "done" for o in others):
                    d["state"] = "done"
            t.put_delivery(d)

    def reap(self, stale_after: float) -> list[Wake]:
        """Requeue running jobs whose lease expired (their worker died) and queued jobs that
        have waited ``stale_after`` seconds (their queue message may be lost); prune old records."""
        now = time.time()
        wakes: list[Wake] = []
        with self.store.transaction() as t:
            for job in t.open_jobs():
                if job.state == "running" and job.lease_until < now:
                    job.error = f"lease expired after attempt {job.attempts} (worker lost)"
                    if job.attempts >= job.max_attempts:
                        job.state, job.finished_at = "failed", now
                    else:
                        job.state, job.enqueued_at = "queued", now
                        wakes.append(Wake(job.id, max(0.0, job.not_before - now)))
                    t.put_job(job)
                    self._settle(t, job)
                elif job.state == "queued" and job.enqueued_at < now - stale_after:
                    job.enqueued_at = now
                    t.put_job(job)
                    wakes.append(Wake(job.id, max(0.0, job.not_before - now)))
        self.store.prune(now - KEEP_SECONDS)
        return wakes

    # -- reading --------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        with self.store.transaction() as t:
            return t.job(job_id)

    def delivery(self, delivery_id: str) -> dict[str, Any] | None:
        with self.store.transaction() as t:
            return t.delivery(delivery_id)

    def counts(self) -> dict[str, int]:
        """Open jobs by state (for the queue-depth gauge)."""
        out = dict.fromkeys(OPEN, 0)
        with self.store.transaction() as t:
            for job in t.open_jobs():
                out[job.state] += 1
        return out

    def waiting(self, now: float | None = None) -> tuple[int, float]:
        """Queued jobs that are due (not delayed), and how long the oldest has been due, in
        seconds: what a stalled worker shows first."""
        now = time.time() if now is None else now
        ages = [
            now - max(j.created_at, j.not_before)
            for j in self._open()
            if j.state == "queued" and j.not_before <= now
        ]
        return len(ages), max(ages, default=0.0)

    def _open(self) -> list[Job]:
        with self.store.transaction() as t:
            return t.open_jobs()

    # -- notes: small durable documents beside the jobs ------------------------------------------
    WORKER_BEAT = "worker-heartbeat"

    def worker_beat(self, who: str, now: float | None = None) -> None:
        """A worker says it is alive and consuming (any worker's beat counts)."""
        self.store.put_doc(self.WORKER_BEAT, {"at": time.time() if now is None else now, "worker": who})

    def last_worker_beat(self) -> float | None:
        doc = self.store.get_doc(self.WORKER_BEAT)
        return float(doc["at"]) if doc and "at" in doc else None

    def note(self, key: str, doc: Mapping[str, Any]) -> None:
        self.store.put_doc(key, doc)

    def noted(self, key: str) -> dict[str, Any] | None:
        return self.store.get_doc(key)

    def ping(self) -> None:
        self.store.ping()

    # -- limits ---------------------------------------------------------------------------------
    # Small records that expire, shared by every web and worker process (so a limit holds however
    # many workers run): rate limits of comment commands, and whom Pullable has refused lately.
    def count(self, key: str, window: float, cap: int = 100) -> int:
        """Count one event under ``key``; returns how many fell in the last ``window`` seconds,
        this one included (at most ``cap + 1``: beyond that the exact number does not matter)."""
        now = time.time()
        with self.store.transaction() as t:
            doc = t.limit(key) or {}
            times = [x for x in doc.get("times", []) if x > now - window][-cap:]
            times.append(now)
            t.put_limit(key, {"times": times}, now + window)
            return len(times)

    def remember(self, key: str, doc: Mapping[str, Any], ttl: float) -> None:
        """Remember ``doc`` under ``key`` for ``ttl`` seconds (unlike :meth:`note`, it expires)."""
        with self.store.transaction() as t:
            t.put_limit(key, dict(doc), time.time() + ttl)

    def recall(self, key: str) -> dict[str, Any] | None:
        """What :meth:`remember` remembered under ``key``, unless it expired."""
        with self.store.transaction() as t:
            return t.limit(key)


# ---------------------------------------------------------------------------------------------
class SqliteStore:
    """Tables in the SQLite file huey uses; ``BEGIN IMMEDIATE`` makes each transaction atomic
    across processes."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS pullable_jobs(
        id TEXT PRIMARY KEY, state TEXT NOT NULL, repo TEXT, finished_at REAL, data TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS pullable_jobs_state ON pullable_jobs(state, repo);
    CREATE TABLE IF NOT EXISTS pullable_deliveries(
        id TEXT PRIMARY KEY, created_at REAL NOT NULL, data TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS pullable_docs(key TEXT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS pullable_limits(
        key TEXT PRIMARY KEY, until REAL NOT NULL, data TEXT NOT NULL);
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        with self._conn() as db:
            db.executescript(self.SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Txn]:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield _SqliteTxn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def prune(self, before: float) -> None:
        with self.transaction():
            db = self._conn()
            db.execute(
                "DELETE FROM pullable_jobs WHERE state IN ('done','failed') AND finished_at < ?", (before,)
            )
            db.execute("DELETE FROM pullable_deliveries WHERE created_at < ?", (before,))
            db.execute("DELETE FROM pullable_limits WHERE until < ?", (time.time(),))

    def put_doc(self, key: str, doc: Mapping[str, Any]) -> None:
        self._conn().execute("INSERT OR REPLACE INTO pullable_docs VALUES (?, ?)", (key, json.dumps(doc)))

    def get_doc(self, key: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT data FROM pullable_docs WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def ping(self) -> None:
        self._conn().execute("SELECT 1 FROM pullable_jobs LIMIT 1").fetchall()


class _SqliteTxn:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def job(self, job_id: str) -> Job | None:
        row = self.db.execute("SELECT data FROM pullable_jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else Job.from_json(row[0])

    def put_job(self, job: Job) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO pullable_jobs VALUES (?, ?, ?, ?, ?)",
            (job.id, job.state, job.repo, job.finished_at, job.to_json()),
        )

    def open_jobs(self, repo: str | None = None) -> list[Job]:
        q = "SELECT data FROM pullable_jobs WHERE state IN ('queued','running')"
        rows = self.db.execute(q + " AND repo = ?", (repo,)) if repo is not None else self.db.execute(q)
        return [Job.from_json(r[0]) for r in rows]

    def delivery(self, delivery_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT data FROM pullable_deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put_delivery(self, d: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO pullable_deliveries VALUES (?, ?, ?)",
            (d["id"], d["created_at"], json.dumps(d)),
        )

    def limit(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT data FROM pullable_limits WHERE key = ? AND until >= ?", (key, time.time())
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def put_limit(self, key: str, doc: dict[str, Any], until: float) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO pullable_limits VALUES (?, ?, ?)", (key, until, json.dumps(doc))
        )


# ---------------------------------------------------------------------------------------------
class RedisStore:
    """Keys under ``pullable:``; a Redis lock serialises transactions and MULTI/EXEC commits each
    one whole, so a process killed mid-way leaves no half-written job."""

    def __init__(self, url: str, prefix: str = "pullable:") -> None:
        import redis

        self.r = redis.Redis.from_url(url)
        self.p = prefix

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Txn]:
        lock = self.r.lock(self.p + "journal-lock", timeout=30, blocking_timeout=120, thread_local=False)
        if not lock.acquire():
            raise TimeoutError("journal lock not acquired in 120 s")
        try:
            txn = _RedisTxn(self.r, self.p)
            yield txn
            txn.commit()
        finally:
            with contextlib.suppress(Exception):
                lock.release()

    def prune(self, before: float) -> None:
        """Nothing to do: finished jobs and deliveries are written with an expiry."""

    def put_doc(self, key: str, doc: Mapping[str, Any]) -> None:
        self.r.set(self.p + "doc:" + key, json.dumps(doc))

    def get_doc(self, key: str) -> dict[str, Any] | None:
        raw = self.r.get(self.p + "doc:" + key)
        return None if raw is None else json.loads(raw)

    def ping(self) -> None:
        self.r.ping()


class _RedisTxn:
    def __init__(self, r: Any, prefix: str) -> None:
        self.r, self.p = r, prefix
        self.jobs: dict[str, Job] = {}
        self.deliveries: dict[str, dict[str, Any]] = {}
        self.limits: dict[str, tuple[dict[str, Any], float]] = {}

    def job(self, job_id: str) -> Job | None:
        if job_id in self.jobs:
            return dataclasses.replace(self.jobs[job_id])
        raw = self.r.get(f"{self.p}job:{job_id}")
        return None if raw is None else Job.from_json(raw)

    def put_job(self, job: Job) -> None:
        self.jobs[job.id] = dataclasses.replace(job, deliveries=list(job.deliveries))

    def open_jobs(self, repo: str | None = None) -> list[Job]:
        key = self.p + ("open" if repo is None else f"open:{repo}")
        ids = {i.decode() for i in self.r.smembers(key)} | {
            j.id for j in self.jobs.values() if repo is None or j.repo == repo
        }
        jobs = [self.job(i) for i in sorted(ids)]
        return [j for j in jobs if j is not None and j.state in OPEN and (repo is None or j.repo == repo)]

    def delivery(self, delivery_id: str) -> dict[str, Any] | None:
        if delivery_id in self.deliveries:
            return json.loads(json.dumps(self.deliveries[delivery_id]))
        raw = self.r.get(f"{self.p}delivery:{delivery_id}")
        return None if raw is None else json.loads(raw)

    def put_delivery(self, d: dict[str, Any]) -> None:
        self.deliveries[d["id"]] = json.loads(json.dumps(d))

    def limit(self, key: str) -> dict[str, Any] | None:
        if key in self.limits:
            return json.loads(json.dumps(self.limits[key][0]))
        raw = self.r.get(f"{self.p}limit:{key}")  # Redis expires it
        return None if raw is None else json.loads(raw)

    def put_limit(self, key: str, doc: dict[str, Any], until: float) -> None:
        self.limits[key] = (json.loads(json.dumps(doc)), until)

    def commit(self) -> None:
        if not self.jobs and not self.deliveries and not self.limits:
            return
        pipe = self.r.pipeline(transaction=True)
        for job in self.jobs.values():
            key = f"{self.p}job:{job.id}"
            sets = [self.p + "open"] + ([f"{self.p}open:{job.repo}"] if job.repo else [])
            if job.state in OPEN:
                pipe.set(key, job.to_json())
                for s in sets:
                    pipe.sadd(s, job.id)
            else:
                pipe.set(key, job.to_json(), ex=KEEP_SECONDS)
                for s in sets:
                    pipe.srem(s, job.id)
        for d in self.deliveries.values():
            pipe.set(f"{self.p}delivery:{d['id']}", json.dumps(d), ex=KEEP_SECONDS)
        now = time.time()
        for key, (doc, until) in self.limits.items():
            pipe.set(f"{self.p}limit:{key}", json.dumps(doc), px=max(1, int((until - now) * 1000)))
        pipe.execute()
