"""One of Pullable's own pull requests was closed: rescan the repository now rather than at the
next push or schedule, so a "no" is acknowledged (and that change remembered) while the reviewer
is still looking, and the branch of a merged or rejected PR is cleaned up promptly (the rescan is
a full one, and full scans sweep such branches: :func:`bot.jobs.publish._sweep`). What to do is
decided by the publisher from GitHub's state, not from this payload."""

from __future__ import annotations

from bot.jobs import Context, requests
from bot.jobs.pr_state import PREFIX
from bot.jobs.router import Event, Router

router = Router()


@router.register("pull_request", action="closed")
def on_closed(event: Event, ctx: Context) -> None:
    pr = event.payload.get("pull_request") or {}
    head = pr.get("head") or {}
    repo, inst = event.repo, event.installation_id
    if inst is None or not repo or not str(head.get("ref", "")).startswith(PREFIX):
        return
    if ((head.get("repo") or {}).get("full_name") or "").lower() != repo.lower():
        return  # a fork's branch that happens to be called pullable/...: not ours
    merged = "merged" if pr.get("merged") else "closed"
    requests.scan(ctx, inst, repo, f"pull request #{pr.get('number')} {merged}")
