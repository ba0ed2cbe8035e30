"""The App's jobs, composed in one visible place: every job kind the worker runs and the one
webhook router, built from each handler module's router in order (bedevere's
``routing.Router(backport.router, gh_issue.router, ...)``). Nothing registers itself by being
imported; a new behaviour is one module and one line here.
"""

from __future__ import annotations

from bot import metrics
from bot.github import RATE_LISTENERS
from bot.jobs import Context, Kind, checks, requests, scan_repo
from bot.jobs.handlers import comments, installation, pull_closed, pull_request, push, schedule
from bot.jobs.journal import Job
from bot.jobs.router import Event, Router

__all__ = ["KINDS", "ROUTER", "run_webhook", "start"]

ROUTER = Router(push.router, installation.router, pull_request.router, pull_closed.router, comments.router)


def run_webhook(job: Job, ctx: Context) -> None:
    """The ``webhook`` job: one verified delivery through :data:`ROUTER`."""
    p = job.payload
    ROUTER.dispatch(Event(p["event"], p.get("action"), p["delivery"], p["payload"]), ctx)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("webhook", run_webhook),
        Kind(requests.SCAN, scan_repo.scan_job, requests.merge_scan),
        Kind(requests.CHECK, checks.check_job, requests.merge_check),
        Kind(requests.SCHEDULE, schedule.run_schedule),
        Kind(comments.KIND, comments.command_job),
    )
}


def start() -> None:
    """What a process running the App does once: feed GitHub's rate-limit figures to the metrics
    gauge (idempotent)."""
    if metrics.set_github_rate_limit not in RATE_LISTENERS:
        RATE_LISTENERS.append(metrics.set_github_rate_limit)
