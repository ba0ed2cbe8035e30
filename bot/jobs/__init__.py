"""Orchestration: the queue, the job journal, the worker and the webhook router.

A job has a *kind* (a function registered with :func:`kind`) and a JSON payload. The web process
only records and enqueues; everything that talks to GitHub or a registry runs in a kind, in the
worker. Kinds shipped here:

- ``webhook``: routes one verified delivery to its handlers (:mod:`bot.jobs.router`);
- ``scan``: scans one repository through the API (:mod:`bot.jobs.scan_repo`);
- ``schedule``: spreads full rescans of every installed repository over the schedule window.

Handlers and kinds for pull requests and comments (issue 6) register the same way.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.jobs.journal import Job, Merge
    from bot.jobs.queue import Queue

# Modules whose import registers kinds and webhook handlers; the worker and the web load them.
MODULES: list[str] = [
    "bot.jobs.router",
    "bot.jobs.scan_repo",
    "bot.jobs.handlers",
]


class Transient(Exception):
    """A failure worth retrying later (GitHub 5xx, a rate limit, a network error)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Kind:
    name: str
    run: Callable[[Job, Context], None]
    merge: Merge | None = None


KINDS: dict[str, Kind] = {}


def kind(name: str, merge: Merge | None = None) -> Callable[[Callable[[Job, Context], None]], Any]:
    """Register a job kind; ``merge(old, new)`` lets a waiting job of the same repository absorb
    a new one (coalescing) instead of queueing a second."""

    def register(fn: Callable[[Job, Context], None]) -> Callable[[Job, Context], None]:
        KINDS[name] = Kind(name, fn, merge)
        return fn

    return register


def load() -> None:
    """Import every module that registers kinds and handlers, and feed GitHub's rate-limit
    figures to the metrics gauge."""
    for name in MODULES:
        importlib.import_module(name)
    from bot import metrics
    from bot.github import RATE_LISTENERS

    if metrics.set_github_rate_limit not in RATE_LISTENERS:
        RATE_LISTENERS.append(metrics.set_github_rate_limit)


@dataclass
class Context:
    """What a running job may use: the queue (to submit follow-up jobs) and its own record."""

    queue: Queue
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
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True, None
    with contextlib.suppress(ImportError):
        from bot.github import GitHubError, RateLimited

        if isinstance(exc, RateLimited):
            return True, exc.wait
        if isinstance(exc, GitHubError):
            return exc.status >= 500 or exc.status == 429, _retry_after(exc.headers or {})
    with contextlib.suppress(ImportError):
        import httpx

        if isinstance(exc, httpx.TransportError):
            return True, None
        if isinstance(exc, httpx.HTTPStatusError):
            code = exc.response.status_code
            return code >= 500 or code == 429, _retry_after(exc.response.headers)
    with contextlib.suppress(ImportError):
        from github import GithubException, RateLimitExceededException

        if isinstance(exc, RateLimitExceededException):
            return True, _retry_after(exc.headers or {})
        if isinstance(exc, GithubException):
            return exc.status >= 500 or exc.status == 429, _retry_after(exc.headers or {})
    return False, None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
