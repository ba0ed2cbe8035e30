"""What every writer after a scan reads: the repository at one commit, every reference checked
against its registry and run through the rules, plus a reader to splice the fixes in.

Why always the whole repository, even for a push that touched two files: a pull request holds
every fix of its group, so the writer needs the full inventory anyway. It is cheap: scan results
are cached per (path, blob SHA), the tree listing is one call (a 304, free, when nothing moved),
and blobs read here are cached per SHA, so the files a push changed are downloaded once and the
PR's new contents are computed from the same bytes without a second download.

:func:`take` builds an :class:`Inventory` (complete: nothing is filled in later), or None for a
repository without a commit. :func:`evaluate` is the one place a job opens the registry, asks it
and closes it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot import pipeline, repoconfig
from bot.github import READ_PERMISSIONS, GitHubApp, GitHubError, Session
from bot.jobs.extends import config_fetcher
from bot.jobs.reader import ApiRepo, scan_repository
from bot.model import Finding, ImageRef, ScanError
from bot.registry import Registry
from bot.rules import RuleTable
from bot.scan.pullsecrets import FileFacts

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = ["BlobCachingSession", "Inventory", "evaluate", "rule_table", "session", "take"]

log = logging.getLogger(__name__)

BLOB_CACHE_BYTES = 512 * 1024  # larger blobs are re-read when needed rather than kept
EMPTY = 409  # GitHub's answer about the git data of a repository without a commit


class BlobCachingSession(Session):
    """A session whose blob reads are remembered per SHA (blobs never change), so scanning and
    writing in one job, or two jobs in a row, download a file once."""

    def blob(self, sha: str) -> bytes:
        key = f"blob:{sha}"
        cached = self.store.get(key)
        if isinstance(cached, bytes):
            return cached
        data = super().blob(sha)
        if len(data) <= BLOB_CACHE_BYTES:
            self.store.put(key, data)
        return data


def session(
    settings: Settings, installation_id: int, repo: str, permissions: dict[str, str] | None = None
) -> BlobCachingSession:
    app = GitHubApp.from_settings(settings)
    return BlobCachingSession(app, installation_id, repo, dict(permissions or READ_PERMISSIONS))


def rule_table(settings: Settings | None = None) -> RuleTable:
    """The built-in rules plus the operator's (``rules:`` in ``PULLABLE_CONFIG``), validated
    like the built-ins; read once per configuration file. Without ``settings``, the
    environment's configuration (what the worker runs with)."""
    if settings is None:
        from bot.settings import Settings

        settings = Settings.from_env()
    return _rule_table(settings.config or "")


@functools.cache
def _rule_table(config: str) -> RuleTable:
    from bot import rules
    from bot.registry import RegistryConfig

    extra = RegistryConfig.load(config).rules if config else ()
    return rules.load_layered(extra) if extra else rules.load()


def evaluate(
    settings: Settings,
    refs: Sequence[ImageRef],
    config: repoconfig.RepoConfig,
    *,
    facts: Iterable[FileFacts] | Callable[[], Iterable[FileFacts]] | None = None,
    reader: ApiRepo | None = None,
    repo: str | None = None,
) -> list[Finding]:
    """Findings for ``refs`` under ``config``: the registry the operator configured is opened,
    asked once per distinct reference and closed. ``facts`` (the whole repository's, or how to
    get them) add the pull-secret findings; ``reader`` lets their fixes be planned; ``repo``
    (``owner/name``) is the repository's address on this GitHub, which a Flux GitRepository's
    url is compared with (charts from another repository are not read from this one)."""
    here = f"{settings.github_url}/{repo}" if repo else None
    with Registry.from_file(settings.config or None) as registry:
        return pipeline.evaluate(
            refs, registry, config, rule_table(settings), facts=facts, reader=reader, here=here
        )


@dataclass(frozen=True)
class Inventory:
    """One scan of a repository's default branch, whole.

    ``findings``/``errors``/``refs`` cover every file at ``sha``; ``paths`` is what the request
    asked for (a push's files; None for a full scan), which the dashboard uses to keep errors
    of files a partial scan did not read. ``config_error`` says why ``.github/pullable.yml``
    cannot be used (``config`` then holds the defaults, and no pull request is written)."""

    installation_id: int
    repo: str
    ref: str
    sha: str
    paths: tuple[str, ...] | None
    findings: tuple[Finding, ...]
    errors: tuple[ScanError, ...]
    refs: tuple[ImageRef, ...]
    reader: ApiRepo
    config: repoconfig.RepoConfig
    config_error: str | None
    archived: bool  # read-only on GitHub: nothing may be written there
    tree: str | None = None  # the root tree of ``sha``: the base every PR commit builds on

    @property
    def full(self) -> bool:
        return self.paths is None


def take(
    settings: Settings,
    installation_id: int,
    repo: str,
    ref: str | None,
    paths: Sequence[str] | None,
    *,
    compare: Sequence[Sequence[str]] = (),
) -> Inventory | None:
    """Scan ``repo`` at ``ref`` (its default branch when None) through the API, read
    ``.github/pullable.yml`` and evaluate every reference: registry status, rule, verified fix
    (no file is changed here). None when the repository has no commit yet."""
    s = session(settings, installation_id, repo)
    try:
        wanted = None if paths is None else list(paths)
        if wanted is not None and compare:
            wanted = _with_compared(s, wanted, compare)
        try:
            scanned = scan_repository(s, ref=ref, paths=None)
        except GitHubError as exc:
            if exc.status != EMPTY:
                raise
            log.info("%s: no commit yet (GitHub: %s): nothing to scan", repo, exc.message)
            return None
        assert scanned.sha is not None, "scan_repository resolves the commit it scans"
        reader = ApiRepo(s, scanned.sha, scanned.entries)  # the listing just made, not asked again
        config, problem = repoconfig.RepoConfig(), None
        try:
            config = repoconfig.read(reader, rule_table(settings), fetch=config_fetcher(s))
        except repoconfig.ConfigError as exc:
            problem = str(exc)
        findings = evaluate(settings, scanned.refs, config, facts=scanned.facts, reader=reader, repo=repo)
        # The repository's metadata is already in hand (revalidated: a free 304).
        archived = bool(s.repository().get("archived"))
    finally:
        s.close()
    return Inventory(
        installation_id, repo, scanned.ref or ref or "", scanned.sha,
        None if wanted is None else tuple(wanted), tuple(findings), tuple(scanned.errors),
        tuple(scanned.refs), reader, config, problem, archived, scanned.tree,
    )  # fmt: skip


def _with_compared(session: Session, paths: list[str], ranges: Sequence[Sequence[str]]) -> list[str] | None:
    """Add the files the compare API lists for each (before, after); None (scan everything) when
    GitHub's list may be cut short."""
    out = set(paths)
    for before, after in ranges:
        changes = session.changed_files(before, after)
        if changes.truncated:
            return None
        out |= set(changes.changed)
    return sorted(out)
