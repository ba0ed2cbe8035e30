"""The periodic full rescan (``PULLABLE_SCHEDULE``, a huey periodic task).

A tick submits one ``schedule`` job; that job lists the App's installations and submits one
``schedule`` job per installation (so an installation whose token or listing fails, a 404 or 403,
fails its own job only), which lists that installation's repositories and submits a full scan of
each repository that is due, spread over most of the time until the next tick and no denser per
installation than :data:`MIN_GAP` apart, so one big organisation does not spend its hourly API
budget at once.

Due: each repository's own ``schedule:`` (``.github/pullable.yml``: daily, weekly (the default),
monthly or a cron expression) on top of the operator's ticks. The ``scan`` job notes the time of
each full scan and the schedule it read (:func:`bot.jobs.requests.scanned_key`); a repository is
due when its next scan by its own schedule falls before the operator's next tick (so a weekly
repository under a daily tick is scanned every seventh tick, not on the eighth), and always when
no full scan is noted. A changed ``schedule:`` counts from the next scan that reads it.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections import defaultdict
from typing import Any

from huey import crontab

from bot import github
from bot.jobs import Context, requests
from bot.jobs.journal import Job
from bot.repoconfig import DEFAULT_SCHEDULE

MIN_GAP = 36.0  # seconds between two scheduled scans of one installation: <= 100 full scans/hour
SPREAD = 0.8  # share of the time until the next tick that scans are spread over
MAX_LOOKAHEAD_MINUTES = 8 * 24 * 60
EVERY = {"daily": 86400.0, "weekly": 7 * 86400.0, "monthly": 30 * 86400.0}
MAX_CRON_MINUTES = 32 * 24 * 60  # a repository cron without a tick in a month: scan anyway


def due(note: dict[str, Any] | None, now: dt.datetime, horizon: float) -> bool:
    """Whether a repository whose last full scan is ``note`` (None: never) is to be scanned at
    the operator's tick ``now``, the next tick being ``horizon`` seconds away (naive UTC times)."""
    if not note or "at" not in note:
        return True
    last = dt.datetime.fromtimestamp(float(note["at"]), dt.UTC).replace(tzinfo=None)
    until = now + dt.timedelta(seconds=horizon)
    schedule = str(note.get("schedule") or DEFAULT_SCHEDULE)
    if schedule in EVERY:
        return last + dt.timedelta(seconds=EVERY[schedule]) < until
    try:
        cron = crontab(*schedule.split(), strict=True)
    except (TypeError, ValueError):
        return True  # validated when read; an old note with a bad value must not stop scans
    t = last.replace(second=0, microsecond=0)
    for _ in range(MAX_CRON_MINUTES):
        t += dt.timedelta(minutes=1)
        if t >= until:
            return False
        if cron(t):
            return True
    return True


def window(cron: object, now: dt.datetime) -> float:
    """Seconds from ``now`` to the next tick of ``cron`` (a huey crontab), times SPREAD."""
    t = now.replace(second=0, microsecond=0)
    for _ in range(MAX_LOOKAHEAD_MINUTES):
        t += dt.timedelta(minutes=1)
        if cron(t):  # type: ignore[operator]
            return max(60.0, (t - now).total_seconds() * SPREAD)
    return MAX_LOOKAHEAD_MINUTES * 60 * SPREAD


def plan(repos: list[tuple[int, str]], span: float) -> list[tuple[int, str, float]]:
    """(installation, repo, delay): each installation's repositories evenly over ``span``, at
    least MIN_GAP apart, offset by a stable hash so installations do not start together."""
    by_inst: dict[int, list[str]] = defaultdict(list)
    for inst, name in repos:
        by_inst[inst].append(name)
    out: list[tuple[int, str, float]] = []
    for inst, names in sorted(by_inst.items()):
        step = max(span / len(names), MIN_GAP) if span > 0 else 0.0
        offset = (zlib.crc32(str(inst).encode()) % 1000) / 1000 * step
        out.extend((inst, n, offset + i * step if span > 0 else 0.0) for i, n in enumerate(sorted(names)))
    return out


def _now() -> dt.datetime:
    """Naive UTC, as huey's crontab reads it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def run_schedule(job: Job, ctx: Context) -> None:
    """The ``schedule`` job (:func:`bot.jobs.requests.schedule`)."""
    settings = ctx.queue.settings
    inst = job.payload.get("installation_id")
    now = _now()
    span = float(job.payload["spread"]) if "spread" in job.payload else window(ctx.queue.cron, now)
    if inst is None:  # one job per installation: one that fails does not stop the others
        for inst_id in github.installation_ids(settings):
            requests.schedule(ctx, inst_id, spread=span)
        return
    horizon = span / SPREAD
    repos = [
        (i, name)
        for i, name in github.installed_repositories(settings, inst)
        if due(ctx.queue.journal.noted(requests.scanned_key(name)), now, horizon)
    ]
    for inst_id, name, delay in plan(repos, span):
        requests.scan(ctx, inst_id, name, "schedule", delay=delay)
