"""Orchestration: jobs run by a worker from a queue; webhook deliveries become jobs.

A job has a *kind* (a :class:`Kind`: a name, the function that runs it, and how two waiting jobs
of one repository coalesce) and a JSON payload. The web process only records and enqueues;
everything that talks to GitHub or a registry runs in a kind, in the worker.

Reading order, bottom up (no module imports one above it, and there are no import circles):

- this module (:class:`Context`, :class:`Kind`, :class:`Transient`), :mod:`~bot.jobs.journal`
  (the jobs' record), :mod:`~bot.jobs.writelock`, :mod:`~bot.jobs.commands` (comment grammar),
  :mod:`~bot.jobs.requests` (the one request function per named job);
- what the writers share: :mod:`~bot.jobs.reader` (scanning through the API),
  :mod:`~bot.jobs.inventory` (a repository, scanned and evaluated), :mod:`~bot.jobs.pr_state`
  (what the PR markers remember), :mod:`~bot.jobs.ignores` (the ignore list and its matcher);
- the writers: :mod:`~bot.jobs.pr_body` and :mod:`~bot.jobs.publish` (pull requests),
  :mod:`~bot.jobs.dashboard` (the issue), :mod:`~bot.jobs.checks` (check runs);
- the jobs: :mod:`~bot.jobs.scan_repo` (inventory -> PR writer -> dashboard), and the webhook
  handlers, one module per behaviour (:mod:`~bot.jobs.handlers`, routed by
  :mod:`~bot.jobs.router`);
- :mod:`~bot.jobs.app`: the kinds and the router, composed in one visible place;
- :mod:`~bot.jobs.queue` (submits, claims and executes jobs) and :mod:`~bot.jobs.worker` (the
  ``pullable worker`` process).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from bot.github import GitHubError, RateLimited
from bot.jobs.journal import Job, Journal, Merge
from bot.settings import Settings


class Transient(Exception):
    """A failure worth retrying later (GitHub 5xx, a rate limit, a network error)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Kind:
    """A job kind: ``run(job, ctx)`` does the work; ``merge(old, new)`` lets a waiting job of the
    same repository absorb a new one (coalescing) instead of queueing a second."""

    name: str
    run: Callable[[Job, Context], None]
    merge: Merge | None = None


class JobQueue(Protocol):
    """What a running job may use of the queue (:class:`bot.jobs.queue.Queue`, which runs the
    jobs and so sits above them): its settings, journal and schedule, and submitting."""

    settings: Settings
    journal: Journal
    cron: Any  # a huey crontab: called with a datetime, says whether it is a tick

    def submit(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        repo: str | None = None,
        delay: float = 0.0,
        deliveries: Sequence[str] = (),
        job_id: str | None = None,
    ) -> Job: ...


@dataclass
class Context:
    """What a running job may use: the queue (to submit follow-up jobs) and its own record."""

    queue: JobQueue
    job: Job

    def submit(
        self, kind: str, payload: Mapping[str, Any], repo: str | None = None, delay: float = 0.0
    ) -> Job:
        """A follow-up job serving the same webhook deliveries: they are done when it is done."""
        return self.queue.submit(kind, payload, repo=repo, delay=delay, deliveries=self.job.deliveries)


def is_transient(exc: BaseException) -> tuple[bool, float | None]:
    """Whether a failure is worth retrying, and after how long if the other side said so."""
    if isinstance(exc, Transient):
        return True, exc.retry_after
    if isinstance(exc, (ConnectionError, TimeoutError, httpx.TransportError)):
        return True, None
    if isinstance(exc, RateLimited):
        return True, exc.wait
    if isinstance(exc, GitHubError):
        # 409: a ref update that conflicted with another in flight (bot.github.git._update_ref
        # retried it already); the job converges when run again
        return exc.status >= 500 or exc.status in (409, 429), _retry_after(exc.headers or {})
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        return code >= 500 or code == 429, _retry_after(exc.response.headers)
    return False, None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
