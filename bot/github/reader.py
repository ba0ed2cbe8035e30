"""Reading a repository through the API without cloning it (issue 5 §5).

One recursive tree listing (walked subtree by subtree when GitHub truncates it) tells every path,
blob SHA and size. Which files are fetched: a file is fetched when a finder claims it by path
alone (``claimant(path, b"")``: Dockerfiles, workflow files, compose files...) or when its name
says it could be one whose kind is only known from its content (YAML, Dockerfile/Containerfile
variants, Jinja and Helm templates). Everything else (sources, images, lock files) is never
downloaded. The fetched bytes then go through :func:`bot.scan.scan_file`, whose ``claimant`` on
the real head decides, exactly as for a checkout. Files over the size cap are skipped from the
tree's metadata without a download.

Scan results are cached per (path, blob SHA) together with the blobs of the sibling files the
finder read (a chart's ``Chart.yaml``), so an unchanged file is neither fetched nor parsed again,
and GETs are revalidated with ETags, so an unchanged repository costs no rate limit at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import __version__
from bot.model import ScanError
from bot.scan import FINDERS, MAX_FILE_BYTES, SKIP_DIRS, ScanResult, claimant, decode, scan_file

if TYPE_CHECKING:
    from bot.github import Session

SNIFF_SUFFIXES = (".yml", ".yaml", ".j2", ".jinja", ".jinja2", ".tpl")
SNIFF_NAMES = re.compile(r"(docker|container)file", re.IGNORECASE)
SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Entry:
    path: str
    type: str  # blob, tree, commit (submodule)
    sha: str
    size: int = 0
    mode: str = "100644"


@dataclass
class RepoScan(ScanResult):
    """A :class:`~bot.scan.ScanResult` plus what was scanned and what it cost."""

    repository: str = ""
    ref: str | None = None  # branch name when known
    sha: str | None = None  # commit scanned
    fetched: int = 0  # blobs downloaded
    reused: int = 0  # files whose cached result was still valid
    walked: bool = False  # the recursive tree was truncated and walked subtree by subtree


@dataclass(frozen=True)
class Changes:
    """Files changed between two commits, from the compare API. ``truncated``: GitHub's list may
    be cut short (300 files) or the comparison failed, so the caller should scan everything."""

    changed: tuple[str, ...] = ()  # added, modified, renamed (new name)
    removed: tuple[str, ...] = ()
    truncated: bool = False


COMPARE_FILE_LIMIT = 300


def scanner_key() -> str:
    """Changes when the finders' code changes, so cached scan results of an older scanner are
    not reused."""
    h = hashlib.sha256(__version__.encode())
    for name in FINDERS:
        path = Path(__file__).resolve().parents[1] / "scan" / (name.rsplit(".", 1)[-1] + ".py")
        with contextlib.suppress(OSError):
            h.update(path.read_bytes())
    for extra in ("__init__.py", "common.py", "yamlsrc.py", "text.py", "interpolate.py"):
        with contextlib.suppress(OSError):
            h.update((Path(__file__).resolve().parents[1] / "scan" / extra).read_bytes())
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


def read_tree(session: Session, commit: str) -> tuple[dict[str, Entry], bool]:
    """Every entry of ``commit``'s tree, and whether the recursive listing had to be walked."""
    data = session.get_json(f"git/trees/{commit}", {"recursive": "1"})
    entries = {e["path"]: _entry(e, "") for e in data["tree"]}
    if not data.get("truncated"):
        return entries, False
    entries = {}
    _walk(session, data["sha"], "", entries)
    return entries, True


def _entry(e: dict[str, Any], prefix: str) -> Entry:
    return Entry(prefix + e["path"], e["type"], e["sha"], int(e.get("size") or 0), e.get("mode", "100644"))


def _walk(session: Session, tree_sha: str, prefix: str, out: dict[str, Entry]) -> None:
    """One level of ``tree_sha``; each subtree is listed recursively, split again if truncated."""
    level = session.get_json(f"git/trees/{tree_sha}")
    for e in level["tree"]:
        entry = _entry(e, prefix)
        out[entry.path] = entry
        if entry.type != "tree" or e["path"] in SKIP_DIRS:
            continue
        sub = session.get_json(f"git/trees/{entry.sha}", {"recursive": "1"})
        if sub.get("truncated"):
            _walk(session, entry.sha, entry.path + "/", out)
        else:
            for s in sub["tree"]:
                child = _entry(s, entry.path + "/")
                out[child.path] = child


def resolve(session: Session, ref: str | None) -> tuple[str | None, str]:
    """(branch name or None, commit SHA) for ``ref``: None is the default branch, a 40-hex string
    is a commit, anything else a branch (``refs/heads/`` prefix optional)."""
    if ref is not None and SHA.fullmatch(ref):
        return None, ref
    branch = ref.removeprefix("refs/heads/") if ref else session.repository()["default_branch"]
    data = session.get_json(f"git/ref/heads/{branch}")
    return branch, data["object"]["sha"]


def scan_repository(
    session: Session,
    full_name: str | None = None,
    ref: str | None = None,
    paths: list[str] | None = None,
) -> RepoScan:
    """Scan ``session``'s repository at ``ref`` (default branch when None). ``paths``: only these
    files (a push); None scans every file that can hold an image."""
    if full_name is not None and full_name.lower() != session.full_name.lower():
        raise ValueError(f"this session is for {session.full_name}, not {full_name}")
    branch, sha = resolve(session, ref)
    entries, walked = read_tree(session, sha)
    repo = ApiRepo(session, sha, entries)
    out = RepoScan(repository=session.full_name, ref=branch or ref, sha=sha, walked=walked)
    candidates = repo.files() if paths is None else sorted({p for p in paths if p in entries})
    store, key = session.store, _key()
    for path in candidates:
        e = entries[path]
        if e.type != "blob" or e.mode == "120000":
            continue
        how = wanted(path)
        if how is None:
            continue
        if e.size > MAX_FILE_BYTES:
            if how == "claim":
                out.files += 1
                out.errors.append(ScanError(path, f"skipped: larger than {MAX_FILE_BYTES} bytes"))
            continue
        cache_key = f"scan:{key}:{path}:{e.sha}"
        cached = store.get(cache_key)
        if cached is not None and repo.still_valid(cached[1]):
            one: ScanResult = cached[0]
            out.reused += 1
        else:
            with repo.tracking() as deps:
                data = repo.read_bytes(path) or b""
                one = scan_file(path, data, repo)
            deps.pop(path, None)
            store.put(cache_key, (one, deps))
        out.refs.extend(one.refs)
        out.errors.extend(one.errors)
        out.files += one.files
        out.bytes += one.bytes
    out.fetched = repo.fetched
    return out


def changed_files(session: Session, base: str, head: str) -> Changes:
    """What changed from ``base`` to ``head`` (a push's before/after) per the compare API."""
    files = session.compare(base, head)
    if files is None:
        return Changes(truncated=True)
    changed = tuple(sorted({f["filename"] for f in files if f.get("status") != "removed"}))
    gone = {f["filename"] for f in files if f.get("status") == "removed"}
    gone |= {f["previous_filename"] for f in files if f.get("previous_filename")}
    removed = tuple(sorted(gone))
    return Changes(changed, removed, truncated=len(files) >= COMPARE_FILE_LIMIT)


__all__ = [
    "ApiRepo",
    "Changes",
    "Entry",
    "RepoScan",
    "changed_files",
    "read_tree",
    "resolve",
    "scan_repository",
    "wanted",
]
