"""The jobs a webhook handler, a command or another job may ask for: one request function per
named job, so each payload has one shape, built in one place (and coalesced by one merge).

- :func:`scan`: scan a repository's default branch (every file, or a push's files), then write
  its pull requests and dashboard (:mod:`bot.jobs.scan_repo`);
- :func:`check`: the "Pullable" check run of pull requests (:mod:`bot.jobs.checks`);
- :func:`schedule`: the periodic rescan, of every installation or of one
  (:mod:`bot.jobs.handlers.schedule`);
- :func:`command`: a ``/pullable`` comment command to authorise and carry out
  (:mod:`bot.jobs.handlers.comments`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.jobs import Context
    from bot.jobs.commands import Command
    from bot.jobs.journal import Job

__all__ = [
    "CHECK", "COMMAND", "SCAN", "SCHEDULE",
    "check", "command", "merge_check", "merge_scan", "scan", "scanned_key", "schedule",
]  # fmt: skip


def scanned_key(repo: str) -> str:
    """The journal note of a repository's last full scan (its time, and its ``schedule:``), which
    the ``scan`` job writes and the ``schedule`` job reads to decide whether it is due."""
    return "scanned:" + repo.lower()


SCAN = "scan"
CHECK = "check"
SCHEDULE = "schedule"
COMMAND = "command"
REASONS_KEPT = 20


def scan(
    ctx: Context,
    installation_id: int,
    repo: str,
    reason: str,
    *,
    ref: str | None = None,
    paths: Sequence[str] | None = None,
    compare: Sequence[Sequence[str]] = (),
    delay: float = 0.0,
) -> Job:
    """Ask for a scan of ``repo``: ``paths`` None is a full scan, a list only those files (plus
    what the compare API lists for each ``(before, after)`` in ``compare``)."""
    payload = {
        "installation_id": installation_id, "repo": repo, "ref": ref,
        "paths": None if paths is None else list(paths), "compare": [list(c) for c in compare],
        "reasons": [reason],
    }  # fmt: skip
    return ctx.submit(SCAN, payload, repo=repo, delay=delay)


def merge_scan(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Two waiting scans of one repository become one: a full scan absorbs partial ones, partial
    ones add up their paths and compare ranges."""
    out = dict(new)
    if old.get("paths") is None or new.get("paths") is None:
        out["paths"], out["compare"] = None, []
    else:
        out["paths"] = sorted(set(old["paths"]) | set(new["paths"]))
        out["compare"] = [*old.get("compare", []), *new.get("compare", [])]
    out["reasons"] = [*old.get("reasons", []), *new.get("reasons", [])][-REASONS_KEPT:]
    return out


def check(ctx: Context, installation_id: int, repo: str, *, number: int, head_sha: str, base: str) -> Job:
    """Ask for the check of pull request ``number`` at ``head_sha`` (its config read from ``base``)."""
    payload = {
        "installation_id": installation_id, "repo": repo,
        "pulls": {str(number): {"sha": head_sha, "base": base}},
    }  # fmt: skip
    return ctx.submit(CHECK, payload, repo=repo)


def merge_check(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Waiting checks of one repository become one job: the latest head of each pull request."""
    return {**new, "pulls": {**old.get("pulls", {}), **new.get("pulls", {})}}


def schedule(ctx: Context, installation_id: int | None = None, spread: float | None = None) -> Job:
    """Ask for the periodic rescan: of every installation (None), or of one, spread over
    ``spread`` seconds (None: until the next tick of the schedule)."""
    payload: dict[str, Any] = {}
    if installation_id is not None:
        payload["installation_id"] = installation_id
    if spread is not None:
        payload["spread"] = spread
    return ctx.submit(SCHEDULE, payload)


def command(
    ctx: Context,
    installation_id: int,
    repo: str,
    cmd: Command,
    *,
    number: int,
    pull: bool,
    comment_id: int,
    created_at: str,
    login: str,
) -> Job:
    """Ask for comment ``comment_id`` (by ``login`` on issue or pull request ``number``) to be
    carried out: the job authorises ``login`` first."""
    payload = {
        "installation_id": installation_id, "repo": repo, "number": number, "pull": pull,
        "comment_id": comment_id, "created_at": created_at, "login": login, "verb": cmd.verb,
        "image": str(cmd.image) if cmd.image else None,
    }  # fmt: skip
    return ctx.submit(COMMAND, payload, repo=repo)
