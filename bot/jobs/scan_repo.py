"""The ``scan`` job: one repository's default branch, read through GitHub's API, then written out.

The whole job is :func:`scan_job`, and its order is the order of the lines there:

1. the inventory (:func:`bot.jobs.inventory.take`): every reference of the repository at the
   branch's head, checked against its registry and run through the rules;
2. the PR writer (:func:`bot.jobs.publish.write`): Pullable's pull requests follow it;
3. the dashboard (:func:`bot.jobs.dashboard.write`): the issue follows it, listing the branches
   the PR writer could not use and the open PRs the writer just left.

With ``PULLABLE_REPORT_ONLY`` (Renovate's ``dryRun``) step 2 is left out: the dashboard is kept,
no pull request is opened, updated or closed. A full scan that finished is noted in the journal
with the repository's ``schedule:``, which the ``schedule`` job reads (:mod:`bot.jobs.handlers.schedule`).

Check runs are not part of it: they belong to pull request heads, not to the default branch, and
run as their own ``check`` job when a pull request is opened or pushed to (:mod:`bot.jobs.checks`).
A repository without a commit has nothing to write; an archived one is read-only on GitHub.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from bot.jobs import dashboard, inventory, publish, requests

if TYPE_CHECKING:
    from bot.jobs import Context
    from bot.jobs.journal import Job

log = logging.getLogger(__name__)


def scan_job(job: Job, ctx: Context) -> None:
    """Inventory -> PR writer -> dashboard (see the module docstring)."""
    p = job.payload
    inv = inventory.take(
        ctx.queue.settings, int(p["installation_id"]), p["repo"], p.get("ref"), p.get("paths"),
        compare=p.get("compare", ()),
    )  # fmt: skip
    if inv is None:
        return
    if not inv.archived:
        if ctx.queue.settings.report_only:
            log.info("%s: report-only mode: no pull request is written", inv.repo)
            skipped: list[str] = []
        else:
            skipped = publish.write(inv, ctx).skipped
        dashboard.write(inv, skipped, ctx)
    else:
        log.info("%s: archived, read-only: no pull request or dashboard is written", inv.repo)
    if inv.full:
        note = {"at": time.time(), "schedule": inv.config.schedule}
        ctx.queue.journal.note(requests.scanned_key(inv.repo), note)
