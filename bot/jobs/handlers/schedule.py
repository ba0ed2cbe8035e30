"""The periodic full rescan (``PULLABLE_SCHEDULE``, a huey periodic task).

A tick submits one ``schedule`` job; that job lists the App's installations and submits one
``schedule`` job per installation (so an installation whose token or listing fails, a 404 or 403,
fails its own job only), which lists that installation's repositories and submits a full scan of
each, spread over most of the time until the next tick and no denser per installation than
:data:`MIN_GAP` apart, so one big organisation does not spend its hourly API budget at once.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections import defaultdict

from bot import github
from bot.jobs import Context, requests
from bot.jobs.journal import Job

MIN_GAP = 36.0  # seconds between two scheduled scans of one installation: <= 100 full scans/hour
SPREAD = 0.8  # share of the time until the next tick that scans are spread over
MAX_LOOKAHEAD_MINUTES = 8 * 24 * 60


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


def run_schedule(job: Job, ctx: Context) -> None:
    """The ``schedule`` job (:func:`bot.jobs.requests.schedule`)."""
    settings = ctx.queue.settings
    inst = job.payload.get("installation_id")
    span = (
        float(job.payload["spread"])
        if "spread" in job.payload
        else window(ctx.queue.cron, dt.datetime.now(dt.UTC).replace(tzinfo=None))
    )
    if inst is None:  # one job per installation: one that fails does not stop the others
        for inst_id in github.installation_ids(settings):
            requests.schedule(ctx, inst_id, spread=span)
        return
    repos = list(github.installed_repositories(settings, inst))
    for inst_id, name, delay in plan(repos, span):
        requests.scan(ctx, inst_id, name, "schedule", delay=delay)
