"""The ``scan`` job: one repository, read through GitHub's API, findings recorded for the PR writer.

Entry point: :func:`run` ``(settings, installation_id, repo, ref, paths)``; ``paths`` None means a
full scan, a list means only those files (a push). The outcome is stored in the journal's store
under ``findings:<owner/name>`` (read it with :func:`findings`): ``{"repo", "ref", "sha", "full",
"paths", "findings": [Finding.to_json()...], "errors": [...], "scanned_at"}``. Then every callable
in :data:`AFTER_SCAN` runs with the :class:`Outcome` (issue 6's PR writer registers there).

Every scan reads the whole repository (cached per blob SHA, see :mod:`bot.jobs._pr_inventory`),
checks each reference against its registry and applies the rules: ``Outcome.inventory`` holds
every finding of the repository, ``Outcome.findings`` those of the scanned ``paths`` (a push's
files; all of them for a full scan). ``Outcome.reader`` reads files at ``sha`` for the writers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.jobs import Context, kind
from bot.jobs.journal import Job, Journal
from bot.jobs.publish import after_scan as publish_pulls
from bot.model import Finding, ImageRef, ScanError
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.jobs.reader import ApiRepo
    from bot.repoconfig import RepoConfig

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    installation_id: int
    repo: str
    ref: str | None
    sha: str | None
    full: bool
    paths: list[str] | None
    findings: list[Finding] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    inventory: list[Finding] = field(default_factory=list)  # every finding of the repository at sha
    refs: list[ImageRef] = field(default_factory=list)  # every reference (the fix re-scan needs them)
    reader: ApiRepo | None = field(default=None, repr=False)
    config: RepoConfig | None = None  # None when .github/pullable.yml is broken
    config_error: str | None = None
    archived: bool = False  # read-only on GitHub: nothing may be written there
    # every scan error of the repository at sha (``errors`` holds those of the scanned paths)
    inventory_errors: list[ScanError] = field(default_factory=list)
    # ``pullable/<group>`` branches holding a person's commits, so no PR (the PR writer's
    # ``Report.skipped``, for the dashboard hook that runs after it)
    skipped_branches: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "installation_id": self.installation_id,
            "repo": self.repo,
            "ref": self.ref,
            "sha": self.sha,
            "full": self.full,
            "paths": self.paths,
            "findings": [f.to_json() for f in self.findings],
            "errors": [{"path": e.path, "message": e.message} for e in self.errors],
            "config_error": self.config_error,
            "scanned_at": time.time(),
        }


EMPTY = 409  # GitHub's answer about the git data of a repository without a commit

AFTER_SCAN: list[Callable[[Outcome, Context], None]] = [publish_pulls]


def merge_scan(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Two waiting scans of one repository become one: a full scan absorbs partial ones, partial
    ones add up their paths and compare ranges."""
    out = dict(new)
    if old.get("paths") is None or new.get("paths") is None:
        out["paths"], out["compare"] = None, []
    else:
        out["paths"] = sorted(set(old["paths"]) | set(new["paths"]))
        out["compare"] = [*old.get("compare", []), *new.get("compare", [])]
    out["reasons"] = [*old.get("reasons", []), *new.get("reasons", [])][-20:]
    return out


@kind("scan", merge=merge_scan)
def scan_job(job: Job, ctx: Context) -> None:
    p = job.payload
    outcome = run(
        ctx.queue.settings,
        int(p["installation_id"]),
        p["repo"],
        p.get("ref"),
        p.get("paths"),
        compare=[tuple(c) for c in p.get("compare", [])],
    )
    record(ctx.queue.journal, outcome)
    if outcome.archived:
        log.info("%s: archived, read-only: no pull request or dashboard is written", outcome.repo)
        return
    for hook in AFTER_SCAN:
        hook(outcome, ctx)


def run(
    settings: Settings,
    installation_id: int,
    repo: str,
    ref: str | None,
    paths: list[str] | None,
    *,
    compare: list[tuple[str, ...]] | None = None,
) -> Outcome:
    """Scan ``repo`` at ``ref`` (its default branch when None) through the API, and evaluate
    every reference of the repository (see the module docstring)."""
    from bot.github import GitHubError
    from bot.jobs import _pr_inventory

    session = _pr_inventory.session(settings, installation_id, repo)
    try:
        if paths is not None and compare:
            paths = _with_compared(session, paths, compare)
        try:
            found = _pr_inventory.inventory(settings, session, ref)
        except GitHubError as exc:
            if exc.status != EMPTY:
                raise
            log.info("%s: no commit yet (GitHub: %s): nothing to scan", repo, exc.message)
            return Outcome(installation_id, repo, ref, None, paths is None, paths)
        # The repository's metadata is already in hand (revalidated: a free 304).
        archived = bool(session.repository().get("archived"))
    finally:
        session.close()
    scope = None if paths is None else set(paths)
    return Outcome(
        installation_id, repo, found.ref, found.sha, paths is None, paths,
        [f for f in found.findings if scope is None or _pr_inventory.touches(f, scope)],
        [e for e in found.errors if scope is None or e.path in scope],
        found.findings, found.refs, found.reader, found.config, found.config_error, archived,
        list(found.errors),
    )  # fmt: skip


def _with_compared(session: Any, paths: list[str], ranges: list[tuple[str, ...]]) -> list[str] | None:
    """Add the files the compare API lists for each (before, after); None (scan everything) when
    GitHub's list may be cut short."""
    out = set(paths)
    for before, after in ranges:
        changes = session.changed_files(before, after)
        if changes.truncated:
            return None
        out |= set(changes.changed)
    return sorted(out)


def installed_repositories(
    settings: Settings, installation_id: int | None = None
) -> Iterator[tuple[int, str]]:
    """(installation id, owner/name) of every repository the App can see."""
    from bot import github

    yield from github.installed_repositories(settings, installation_id)


def installation_ids(settings: Settings) -> list[int]:
    """The App's installations that are not suspended."""
    from bot import github

    return github.installation_ids(settings)


def record(journal: Journal, outcome: Outcome) -> None:
    journal.store.put_doc(f"findings:{outcome.repo.lower()}", outcome.to_json())


def findings(journal: Journal, repo: str) -> dict[str, Any] | None:
    """The last recorded scan of ``repo`` (see the module docstring for its shape)."""
    return journal.store.get_doc(f"findings:{repo.lower()}")
