"""A pull request opened or pushed to: queue the "Pullable" check (see :mod:`bot.jobs.checks`).

Only branches of the repository itself are checked; a pull request from a fork is skipped before
anything is read (its head repository is taken from the signed payload, never from the PR text).
"""

from __future__ import annotations

import logging

from bot.jobs import Context, requests
from bot.jobs.router import Event, Router

log = logging.getLogger(__name__)

router = Router()


@router.register("pull_request", action="opened")
@router.register("pull_request", action="synchronize")
@router.register("pull_request", action="reopened")
def on_pull_request(event: Event, ctx: Context) -> None:
    pr = event.payload.get("pull_request") or {}
    repo = event.repo
    inst = event.installation_id
    head, base = pr.get("head") or {}, pr.get("base") or {}
    if inst is None or not repo or not pr.get("number") or not head.get("sha") or not base.get("ref"):
        return
    head_repo = (head.get("repo") or {}).get("full_name") or ""
    if head_repo.lower() != repo.lower():
        log.info("%s#%s: from a fork (%s): not checked", repo, pr["number"], head_repo or "deleted")
        return
    requests.check(ctx, inst, repo, number=int(pr["number"]), head_sha=head["sha"], base=base["ref"])
