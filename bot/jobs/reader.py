"""Scanning a repository through the API without cloning it (issue 5 §5).

One recursive tree listing (walked subtree by subtree when GitHub truncates it) tells every path,
blob SHA and size. Which files are fetched: a file is fetched when a finder claims it by path
alone (``claimant(path, b"")``: Dockerfiles, workflow files, compose files...) or when its name
says it could be one whose kind is only known from its content (YAML, Dockerfile/Containerfile
variants, Jinja and Helm templates). Everything else (sources, images, lock files) is never
downloaded. The fetched bytes then go through :func:`bot.scan.scan_file` in a contained worker process
(:func:`bot.scan.contained`), whose ``claimant`` on
the real head decides, exactly as for a checkout. Files over the size cap are skipped from the
tree's metadata without a download.

When many files must be downloaded (a first scan, a new scanner version), they come from the
commit's archive in one API call instead of one call per blob (:mod:`bot.github.archive`: each
member checked against the tree's size and blob SHA; whatever the archive lacks or spoils is read
blob by blob).

Scan results are cached per (path, blob SHA) together with the blobs of the sibling files the
finder read (a chart's ``Chart.yaml``), so an unchanged file is neither fetched nor parsed again,
and GETs are revalidated with ETags, so an unchanged repository costs no rate limit at all.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import logging
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import __version__
from bot.github.archive import ArchiveError, archive_files, archive_limit
from bot.github.http import GitHubError
from bot.github.tree import Entry, read_tree, resolve
from bot.model import ScanError
from bot.scan import (
    MAX_FILE_BYTES,
    SKIP_DIRS,
    ScanResult,
    claimant,
    contained,
    decode,
    local_builds,
    too_large,
)
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.github import Session

log = logging.getLogger(__name__)

SNIFF_SUFFIXES = (".yml", ".yaml", ".j2", ".jinja", ".jinja2", ".tpl")
# At least this many files to download: one archive (one API call, streamed) instead of one call
# per blob, unless the archive would carry more than ARCHIVE_MAX_BYTES (every file of the
# commit, images and all), where the blobs cost less bandwidth than the archive.
ARCHIVE_MIN_FILES = 24
ARCHIVE_MAX_BYTES = 512 * 1024 * 1024
SNIFF_NAMES = re.compile(r"(docker|container)file", re.IGNORECASE)


@dataclass
class RepoScan(ScanResult):
    """A :class:`~bot.scan.ScanResult` plus what was scanned and what it cost."""

    repository: str = ""
    ref: str | None = None  # branch name when known
    sha: str | None = None  # commit scanned
    fetched: int = 0  # blobs downloaded one by one
    archived: int = 0  # files read from the commit's archive (one call for all of them)
    reused: int = 0  # files whose cached result was still valid
    walked: bool = False  # the recursive tree was truncated and walked subtree by subtree
    tree: str | None = None  # the root tree of ``sha``
    entries: dict[str, Entry] = field(default_factory=dict, repr=False)  # the listing, whole


SCANNER_PACKAGE = "bot.scan"


def scanner_modules() -> list[Path]:
    """The source files whose change can change a scan result: every module under ``bot/scan``
    and every ``bot`` module they import (``model``, ``reference``...), found by following the
    imports (function-level ones included), so a new module can never be left out by hand."""
    root = Path(__file__).resolve().parents[2]
    todo = sorted((root / "bot" / "scan").rglob("*.py"))
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            found = _module_file(root, name)
            if found is not None and found not in seen:
                todo.append(found)
    return sorted(seen)


def imported_modules(path: Path) -> set[str]:
    """``bot.*`` modules ``path`` imports anywhere in its body (``from bot import x`` counts as
    ``bot.x``); relative imports are not used in this package."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "bot" or node.module.startswith("bot."):
                out.add(node.module)
                out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name == "bot" or a.name.startswith("bot."))
    return out


def _module_file(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None  # a name imported from a module (``from bot.scan import Repo``), not a module


def scanner_key() -> str:
    """Changes when the scanner's code changes (or the version), so cached scan results of an
    older scanner are not reused."""
    h = hashlib.sha256(__version__.encode())
    root = Path(__file__).resolve().parents[2]
    for path in scanner_modules():
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        with contextlib.suppress(OSError):
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


_SCANNER_KEY: str | None = None


def _key() -> str:
    global _SCANNER_KEY  # noqa: PLW0603 - computed once per process
    if _SCANNER_KEY is None:
        _SCANNER_KEY = scanner_key()
    return _SCANNER_KEY


def wanted(path: str, size: int | None = None) -> str | None:
    """``"claim"`` (a finder claims the name), ``"sniff"`` (the content decides), or None."""
    parts = path.split("/")
    if any(p in SKIP_DIRS for p in parts[:-1]):
        return None
    if claimant(path, b"") is not None:
        return "claim"
    name = parts[-1].lower()
    if name.endswith(SNIFF_SUFFIXES) or SNIFF_NAMES.search(name):
        return "sniff"
    return None


class ApiRepo:
    """A repository at one commit, read through the API; satisfies :class:`bot.scan.Repo`."""

    def __init__(self, session: Session, sha: str, entries: dict[str, Entry]) -> None:
        self.session = session
        self.sha = sha
        self.entries = entries
        self._dirs: dict[str, list[str]] = {}
        for path in entries:
            parent, _, name = path.rpartition("/")
            self._dirs.setdefault(parent, []).append(name)
        for names in self._dirs.values():
            names.sort()
        self._blobs: dict[str, bytes] = {}
        self._reads: list[dict[str, str | None]] = []
        self.fetched = 0

    def files(self) -> list[str]:
        """Paths of regular files, sorted, vendored folders left out (as ``LocalRepo.files``)."""
        return sorted(
            p
            for p, e in self.entries.items()
            if e.type == "blob" and e.mode != "120000" and not any(x in SKIP_DIRS for x in p.split("/")[:-1])
        )

    def listdir(self, path: str) -> list[str]:
        return list(self._dirs.get(path.strip("/"), []))

    def read_bytes(self, path: str) -> bytes | None:
        """The blob at ``path`` (None if absent, not a file, or over the size cap)."""
        path = posixpath.normpath(path).lstrip("/")
        e = self.entries.get(path)
        for reads in self._reads:
            reads[path] = e.sha if e is not None else None
        if e is None or e.type != "blob" or e.size > MAX_FILE_BYTES:
            return None
        if e.sha not in self._blobs:
            self._blobs[e.sha] = self.session.blob(e.sha)
            self.fetched += 1
        return self._blobs[e.sha]

    def prefetch(self, paths: list[str]) -> int:
        """Read ``paths`` from the commit's archive in one call (see :mod:`bot.github.archive`);
        how many were found intact. Those missing or unusable are read blob by blob later."""
        wanted = {p: (self.entries[p].sha, self.entries[p].size) for p in paths}
        blobs = [e.size for e in self.entries.values() if e.type == "blob"]
        got = 0
        try:
            for path, data in archive_files(
                self.session, self.sha, wanted, max_file=MAX_FILE_BYTES, max_total=archive_limit(blobs)
            ):
                self._blobs[wanted[path][0]] = data
                got += 1
        except (ArchiveError, GitHubError) as exc:
            log.info("%s: archive not used (%s): reading blobs one by one", self.session.full_name, exc)
        return got

    def read_text(self, path: str) -> str | None:
        data = self.read_bytes(path)
        if data is None:
            return None
        try:
            return decode(data)[0]
        except ValueError:
            return None

    @contextlib.contextmanager
    def tracking(self) -> Iterator[dict[str, str | None]]:
        """Record which paths are read (and their blob SHAs) while the block runs."""
        reads: dict[str, str | None] = {}
        self._reads.append(reads)
        try:
            yield reads
        finally:
            self._reads.remove(reads)

    def still_valid(self, deps: dict[str, str | None]) -> bool:
        return all((self.entries[p].sha if p in self.entries else None) == sha for p, sha in deps.items())


def scan_repository(
    session: Session,
    full_name: str | None = None,
    ref: str | None = None,
    paths: list[str] | None = None,
    max_bytes: int | None = None,
) -> RepoScan:
    """Scan ``session``'s repository at ``ref`` (default branch when None). ``paths``: only these
    files (a push); None scans every file that can hold an image. ``max_bytes``: the size cap
    (default: the operator's ``PULLABLE_MAX_FILE_BYTES``)."""
    if max_bytes is None:
        max_bytes = Settings.from_env().max_file_bytes
    if full_name is not None and full_name.lower() != session.full_name.lower():
        raise ValueError(f"this session is for {session.full_name}, not {full_name}")
    branch, sha = resolve(session, ref)
    entries, walked, tree = read_tree(session, sha, SKIP_DIRS)
    repo = ApiRepo(session, sha, entries)
    out = RepoScan(repository=session.full_name, ref=branch or ref, sha=sha, walked=walked, tree=tree,
                   entries=entries)  # fmt: skip
    candidates = repo.files() if paths is None else sorted({p for p in paths if p in entries})
    store, key = session.store, _key()
    todo: list[tuple[str, str, Any]] = []  # (path, cache key, cached result or None)
    for path in candidates:
        e = entries[path]
        if e.type != "blob" or e.mode == "120000":
            continue
        how = wanted(path)
        if how is None:
            continue
        if e.size > max_bytes:
            if how == "claim":
                out.files += 1
                out.errors.append(ScanError(path, too_large(max_bytes)))
            continue
        cache_key = f"scan:{key}:{path}:{e.sha}"
        cached = store.get(cache_key)
        todo.append((path, cache_key, cached if cached is not None and repo.still_valid(cached[1]) else None))
    misses = [p for p, _, c in todo if c is None]
    total = sum(e.size for e in entries.values() if e.type == "blob")
    if len(misses) >= ARCHIVE_MIN_FILES and total <= ARCHIVE_MAX_BYTES:
        out.archived = repo.prefetch(misses)
    for path, cache_key, cached in todo:
        if cached is not None:
            one: ScanResult = cached[0]
            out.reused += 1
        else:
            with repo.tracking() as deps:
                data = repo.read_bytes(path) or b""
                one = contained(path, data, repo, max_bytes)  # a parser crash costs this file, not the worker
            deps.pop(path, None)
            store.put(cache_key, (one, deps))
        out.refs.extend(one.refs)
        out.errors.extend(one.errors)
        out.facts.extend(one.facts)
        out.files += one.files
        out.bytes += one.bytes
    out.fetched = repo.fetched
    out.refs = local_builds(out.refs)  # images the repository builds itself are not pulls
    return out


__all__ = ["ApiRepo", "RepoScan", "scan_repository", "wanted"]
