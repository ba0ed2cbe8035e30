"""What the scan job hands the PR writer: every reference of the repository at one commit, checked
against its registry and run through the rules, plus a reader to splice the fixes in.

Why always the whole repository, even for a push that touched two files: a pull request holds
every fix of its group, so the writer needs the full inventory anyway. It is cheap: scan results
are cached per (path, blob SHA), the tree listing is one call (a 304, free, when nothing moved),
and blobs read here are cached per SHA, so the files a push changed are downloaded once and the
PR's new contents are computed from the same bytes without a second download. The push's own
paths still decide what the scan job reports as "this push's findings".
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.github import GitHubApp, Session
from bot.model import Finding, ImageRef, ScanError

if TYPE_CHECKING:
    from bot.jobs.reader import ApiRepo
    from bot.repoconfig import RepoConfig
    from bot.rules import RuleTable
    from bot.settings import Settings

log = logging.getLogger(__name__)

BLOB_CACHE_BYTES = 512 * 1024  # larger blobs are re-read when needed rather than kept


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
    from bot.github import READ_PERMISSIONS

    app = GitHubApp.from_settings(settings)
    return BlobCachingSession(app, installation_id, repo, dict(permissions or READ_PERMISSIONS))


@functools.cache
def rule_table() -> RuleTable:
    from bot import rules

    return rules.load()


@dataclass
class Inventory:
    """The repository at ``sha``: references, evaluated findings, and how to read its files."""

    ref: str | None
    sha: str
    refs: list[ImageRef]
    findings: list[Finding]
    errors: list[ScanError]
    reader: ApiRepo
    config: RepoConfig | None  # None: the repository's config is broken (``config_error`` says why)
    config_error: str | None = None
    fetched: int = 0
    reused: int = 0
    extra: dict[str, object] = field(default_factory=dict)


def inventory(settings: Settings, session: Session, ref: str | None) -> Inventory:
    """Scan every file of ``ref`` (cached per blob), read ``.github/pullable.yml`` and evaluate
    each reference: registry status, rule, verified fix (no file is changed here)."""
    from bot import pipeline, repoconfig
    from bot.github.tree import read_tree
    from bot.jobs.reader import ApiRepo, scan_repository
    from bot.registry import Registry
    from bot.scan import SKIP_DIRS

    scanned = scan_repository(session, ref=ref, paths=None)
    assert scanned.sha is not None
    entries, _ = read_tree(session, scanned.sha, SKIP_DIRS)  # the listing just made: a free 304
    reader = ApiRepo(session, scanned.sha, entries)
    table = rule_table()
    config: RepoConfig | None
    problem = None
    try:
        config = repoconfig.read(reader, table)
    except repoconfig.ConfigError as exc:
        config, problem = None, str(exc)
    registry = Registry.from_file(settings.config or None)
    try:
        used = config or repoconfig.RepoConfig()
        findings = pipeline.evaluate(scanned.refs, registry, used, table, facts=scanned.facts, reader=reader)
    finally:
        registry.close()
    return Inventory(
        scanned.ref, scanned.sha, list(scanned.refs), findings, list(scanned.errors), reader,
        config, problem, scanned.fetched, scanned.reused,
    )  # fmt: skip


def touches(f: Finding, paths: set[str]) -> bool:
    """Whether a finding reads any of ``paths`` (its own file or a file one of its parts lives in)."""
    return f.ref.path in paths or any(p.path in paths for p in f.ref.parts if p.path)
