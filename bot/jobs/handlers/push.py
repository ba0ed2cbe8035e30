"""A push to the default branch rescans only the files it added or modified.

The payload's per-commit lists are used when they can be trusted; otherwise the scan job asks the
compare API (and scans everything when even that may be cut short). Pushes to other branches,
tags and branch deletions are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.jobs import Context, requests
from bot.jobs.router import Event, Router

MAX_COMMITS = 2048  # GitHub lists at most this many commits in a push payload
MAX_FILES_PER_COMMIT = 3000  # ... and at most this many files per list of a commit
ZERO_SHA = "0" * 40

router = Router()


def changes(payload: Mapping[str, Any]) -> tuple[list[str] | None, bool]:
    """(paths added or modified and still present, whether the payload's lists are complete).
    Paths None means only a full scan is right (new branch, force push)."""
    if payload.get("created") or payload.get("forced") or payload.get("before", ZERO_SHA) == ZERO_SHA:
        return None, False
    commits = payload.get("commits") or []
    complete = 0 < len(commits) < MAX_COMMITS
    paths: set[str] = set()
    for c in commits:
        lists = [c.get("added") or [], c.get("modified") or [], c.get("removed") or []]
        if not any(lists) or any(len(x) >= MAX_FILES_PER_COMMIT for x in lists):
            complete = False  # GitHub leaves the lists empty for very large commits
        paths |= set(lists[0]) | set(lists[1])
        paths -= set(lists[2])
    return sorted(paths), complete


@router.register("push")
def on_push(event: Event, ctx: Context) -> None:
    p = event.payload
    repo = p.get("repository") or {}
    default = repo.get("default_branch") or repo.get("master_branch")
    if not default or p.get("ref") != f"refs/heads/{default}" or p.get("deleted"):
        return
    if event.installation_id is None or not repo.get("full_name"):
        return
    paths, complete = changes(p)
    compare = [] if complete or paths is None else [[p["before"], p["after"]]]
    if paths is not None and not paths and not compare:
        return  # nothing added or modified
    requests.scan(
        ctx, event.installation_id, repo["full_name"], f"push {p.get('after', '')[:12]}",
        ref=default, paths=paths, compare=compare,
    )  # fmt: skip
