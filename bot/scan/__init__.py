"""Find image references in files: one finder module per file kind, as Renovate has managers.

Every finder module exports the same small face:

- ``SOURCE``: the :class:`~bot.model.Source` it reports;
- ``claims(path, head) -> bool``: whether the file is of its kind, from its repository-relative
  path and its first bytes (content counts as much as the name);
- ``find(text, path, repo) -> Iterator[ImageRef]``: the references in ``text`` (decoded, UTF-8
  BOM already removed; spans are computed on that text and shifted back here). ``repo`` gives
  read access to sibling files (a chart's ``Chart.yaml``, a role's ``defaults/main.yml``). A
  finder raises :class:`~bot.scan.yamlsrc.YamlRejected` (or any exception) to report the file
  as unreadable; the scan goes on.

The first finder in :data:`FINDERS` that claims a file reads it. Adding a file kind is one module
and one line there. Every YAML file a finder read is also read for what it says about pull secrets
(:mod:`bot.scan.pullsecrets`, ``ScanResult.facts``), from the same composed documents.
"""

from __future__ import annotations

import atexit
import dataclasses
import fnmatch
import importlib
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from bot.model import ImageRef, Part, ScanError, Span

if TYPE_CHECKING:
    from bot.scan.pullsecrets import FileFacts

# Files above this many bytes are reported as skipped, unread. Far above real generated
# manifests (argo-cd's install.yaml is 1.9 MB); large multi-document files are composed
# document by document, each within yamlsrc's bounds. Operators and the CLI can change it
# (``PULLABLE_MAX_FILE_BYTES``, ``pullable scan --max-file-mb``).
MAX_FILE_BYTES = 32 << 20
HEAD_BYTES = 4096

# Order matters: specific kinds (by name or unmistakable content) before the catch-all YAML walker.
FINDERS: tuple[str, ...] = (
    "bot.scan.dockerfile",
    "bot.scan.helm_template",
    "bot.scan.jinja",
    "bot.scan.github_actions",
    "bot.scan.gitlab_ci",
    "bot.scan.charts",
    "bot.scan.kustomize",
    "bot.scan.compose",
    "bot.scan.ansible",
    "bot.scan.helm_values",
    "bot.scan.kubernetes",
    "bot.scan.shell",
    "bot.scan.jsonnet",
    "bot.scan.tilt",
)

SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", "vendor", "third_party", "third-party", ".venv", "venv",
     "__pycache__", ".terraform", ".tox", "bower_components"}
)  # fmt: skip


class Repo(Protocol):
    """Read access to the repository being scanned (a checkout, or GitHub's API)."""

    def read_text(self, path: str) -> str | None:
        """The decoded text of ``path`` (BOM removed), None if absent or unreadable."""
        ...

    def listdir(self, path: str) -> list[str]:
        """Names directly under directory ``path`` ("" is the root); [] if none."""
        ...


class Finder(Protocol):
    SOURCE: str

    def claims(self, path: str, head: bytes) -> bool: ...

    def find(self, text: str, path: str, repo: Repo) -> Iterator[ImageRef]: ...


_loaded: list[ModuleType] | None = None


def finders() -> list[ModuleType]:
    """The finder modules, imported on first use (start-up stays fast for `pullable check`)."""
    global _loaded  # noqa: PLW0603 - a module-level cache of imports
    if _loaded is None:
        _loaded = [importlib.import_module(name) for name in FINDERS]
    return _loaded


def claimant(path: str, head: bytes, mods: Iterable[ModuleType] | None = None) -> ModuleType | None:
    """The first finder (of ``mods``, default :data:`FINDERS`) that claims the file."""
    for mod in finders() if mods is None else mods:
        if mod.claims(path, head):
            return mod
    return None


@dataclass
class ScanResult:
    refs: list[ImageRef] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    files: int = 0  # files read by a finder
    bytes: int = 0
    # what YAML files say about pull secrets (bot.scan.pullsecrets), for the pull-secret check
    facts: list[FileFacts] = field(default_factory=list)


def decode(data: bytes) -> tuple[str, int]:
    """UTF-8 text and the number of BOM bytes removed; ValueError with a reason otherwise."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValueError("UTF-16 text is not supported")
    if b"\x00" in data[:8192]:
        raise ValueError("binary file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"invalid UTF-8 at byte {exc.start}") from None
    if text.startswith("\ufeff"):
        return text[1:], 3
    return text, 0


def scan_file(
    path: str,
    data: bytes,
    repo: Repo,
    finder: ModuleType | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> ScanResult:
    """References in one file, in this process; problems become ``errors`` (and warnings such as
    a duplicate key become errors of level ``warning``), never exceptions. A parser crash here
    would take the process with it: :mod:`bot.scan.sandbox` runs this in contained workers."""
    from bot.scan.yamlsrc import collecting

    out = ScanResult()
    mod = finder or claimant(path, data[:HEAD_BYTES])
    if mod is None:
        return out
    out.files, out.bytes = 1, len(data)
    if len(data) > max_bytes:
        out.errors.append(ScanError(path, too_large(max_bytes)))
        return out
    try:
        text, bom = decode(data)
    except ValueError as exc:
        out.errors.append(ScanError(path, f"skipped: {exc}"))
        return out
    with collecting() as warnings:
        try:
            refs = list(mod.find(text, path, repo))
        except Exception as exc:  # noqa: BLE001 - a finder failing on one file must not stop the scan
            out.errors.append(ScanError(path, _describe(exc)))
            return out
    out.errors.extend(ScanError(path, w, "warning") for w in warnings)
    out.refs = [_shift(r, bom) for r in refs] if bom else refs
    if mod.__name__ not in _NOT_YAML:
        out.facts = _pull_facts(text, path, bom, out.errors)
    return out


def too_large(max_bytes: int) -> str:
    """The skip message for a file over the size cap, saying how to raise it."""
    return (
        f"skipped: larger than {max_bytes:,} bytes "
        "(raise with PULLABLE_MAX_FILE_BYTES or pullable scan --max-file-mb)"
    )


# Finders of files that are templates, not YAML: their pull secrets are not known before rendering.
_NOT_YAML = frozenset(
    {"bot.scan.dockerfile", "bot.scan.helm_template", "bot.scan.jinja", "bot.scan.shell", "bot.scan.jsonnet",
     "bot.scan.tilt"}
)  # fmt: skip


def _pull_facts(text: str, path: str, bom: int, errors: list[ScanError]) -> list[FileFacts]:
    """The pull-secret facts of a file the finders read; a failure is reported like a finder's,
    and the file's references stand."""
    from bot.scan import pullsecrets
    from bot.scan.yamlsrc import YamlRejected

    try:
        found = pullsecrets.read(text, path)
    except YamlRejected:
        return []  # YAML the finder read without needing this document: its verdict stands
    except Exception as exc:  # noqa: BLE001 - facts failing on one file must not stop the scan
        errors.append(ScanError(path, "pull secrets: " + _describe(exc)))
        return []
    return [found.shifted(bom)] if found else []


def _describe(exc: BaseException) -> str:
    from bot.scan.yamlsrc import YamlRejected

    if isinstance(exc, YamlRejected):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "nesting too deep"
    return f"could not read: {type(exc).__name__}: {exc}"[:300]


def _shift(ref: ImageRef, by: int) -> ImageRef:
    def move(p: Part) -> Part:
        if p.path is not None and p.path != ref.path:
            return p
        s = p.span
        return dataclasses.replace(p, span=Span(s.start + by, s.end + by, s.line, s.column))

    return dataclasses.replace(ref, parts=tuple(move(p) for p in ref.parts))


class LocalRepo:
    """A directory on disk. Never leaves ``root``: symlinks that point outside are ignored.

    Paths the walk in :meth:`files` saw as plain files are opened directly; anything else (a
    symlink, a path a finder asks for) is resolved first and must stay under ``root``.
    """

    def __init__(self, root: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> None:
        self.root = Path(root).resolve()
        self.max_bytes = max_bytes
        self._root = str(self.root)
        self._plain: set[str] = set()

    def _inside(self, path: str) -> str | None:
        if path in self._plain:
            return os.path.join(self._root, path)
        p = os.path.realpath(os.path.join(self._root, path))
        if p == self._root or p.startswith(self._root + os.sep):
            return p
        return None

    def walked(self, paths: Iterable[str]) -> None:
        """Paths :meth:`files` found as plain files in another process (the walk of the scan
        that handed them to a :mod:`~bot.scan.sandbox` worker): opened directly, as this
        process's own walk's are, without resolving every component again."""
        self._plain.update(paths)

    def read_bytes(self, path: str, claim: Callable[[bytes], bool] | None = None) -> bytes | None:
        """Up to one byte over the size cap; with ``claim``, only the head is read unless
        ``claim(head)`` holds (most files in a repository hold no image)."""
        p = self._inside(path)
        if p is None or (path not in self._plain and not os.path.isfile(p)):  # no FIFOs, devices
            return None
        try:
            with open(p, "rb") as fh:
                head = fh.read(HEAD_BYTES)
                if claim is not None and not claim(head):
                    return None
                return head + fh.read(max(0, self.max_bytes + 1 - len(head)))
        except OSError:
            return None

    def head(self, path: str) -> tuple[bytes, int] | None:
        """The first ``HEAD_BYTES`` of a file and its size (what ``claims`` needs), or None."""
        p = self._inside(path)
        if p is None or (path not in self._plain and not os.path.isfile(p)):
            return None
        try:
            with open(p, "rb") as fh:
                return fh.read(HEAD_BYTES), os.fstat(fh.fileno()).st_size
        except OSError:
            return None

    def read_text(self, path: str) -> str | None:
        data = self.read_bytes(path)
        if data is None or len(data) > self.max_bytes:
            return None
        try:
            return decode(data)[0]
        except ValueError:
            return None

    def listdir(self, path: str) -> list[str]:
        p = self._inside(path) if path else self._root
        if p is None or not os.path.isdir(p):
            return []
        try:
            return sorted(os.listdir(p))
        except OSError:
            return []

    def files(self, ignore: Iterable[str] = ()) -> Iterator[str]:
        """Repository-relative paths (with ``/``) of regular files, sorted, vendored folders
        and ``ignore`` globs left out, directory symlinks not followed."""
        patterns = list(ignore)
        stack = [("", self._root)]
        while stack:
            prefix, d = stack.pop()
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name, reverse=True)
            except OSError:
                continue
            for e in entries:
                rel = prefix + e.name
                if patterns and any(fnmatch.fnmatch(rel, pat) for pat in patterns):
                    continue
                if e.is_dir(follow_symlinks=False):
                    if e.name not in SKIP_DIRS:
                        stack.append((rel + "/", e.path))
                elif e.is_file(follow_symlinks=False):
                    self._plain.add(rel)
                    yield rel
                elif e.is_symlink() and self._inside(rel):
                    yield rel


def scan_tree(
    root: str | os.PathLike[str],
    ignore: Iterable[str] = (),
    progress: Callable[[int, int], None] | None = None,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    contain: bool | None = None,
    workers: int | None = None,
) -> ScanResult:
    """Scan every file under ``root``. ``progress(done, total)`` is called as files are read;
    ``total`` counts the files claimed so far (the walk, which reads only heads, runs ahead).

    ``contain``: parse in :class:`~bot.scan.sandbox.Sandbox` workers (a parser crash costs one
    file; both cores). None decides by size as the walk goes: once the claimed files reach
    ``POOL_MIN_FILES`` or ``POOL_MIN_BYTES`` the pool starts and is handed the rest as the walk
    finds it; a tree that stays below both is scanned in this process, where start-up costs
    nothing. Results are in walk order either way.
    """
    from bot.scan import sandbox

    repo = LocalRepo(root, max_bytes)
    out = ScanResult()
    claimed = 0

    def walk() -> Iterator[tuple[str, int, str, bytes]]:
        """(path, size, finder, head) of each claimed file, heads read and claimed here."""
        nonlocal claimed
        for rel in repo.files(ignore):
            got = repo.head(rel)
            if got is None:
                continue
            head, size = got
            mod = claimant(rel, head)
            if mod is None:
                continue
            if size > max_bytes:  # reported from here: never read
                out.files, out.bytes = out.files + 1, out.bytes + size
                out.errors.append(ScanError(rel, too_large(max_bytes)))
                continue
            claimed += 1
            yield rel, size, mod.__name__, head

    found = walk()
    ahead: list[tuple[str, int, str, bytes]] = []  # walked before the pool was decided on
    if contain is None:
        size = 0
        for job in found:
            ahead.append(job)
            size += job[1]
            if len(ahead) >= sandbox.POOL_MIN_FILES or size >= sandbox.POOL_MIN_BYTES:
                contain = True
                break
        else:
            contain = False
    jobs = itertools.chain(ahead, found)
    results: list[ScanResult | None] = []
    if contain:  # the workers read the files themselves, from the same checkout
        box = sandbox.Sandbox(
            scan_file,
            ScanResult,
            LocalRepo,
            finders=FINDERS,
            workers=workers,
            max_bytes=max_bytes,
            root=str(repo.root),
        )

        def handed() -> Iterator[sandbox.Job]:
            for rel, _size, name, _head in jobs:
                results.append(None)
                yield rel, None, name

        with box:
            for done, (i, one) in enumerate(box.run(handed(), repo), 1):
                results[i] = one
                if progress is not None:
                    progress(done, claimed)
    else:
        mods = {m.__name__: m for m in finders()}
        for rel, _size, name, head in jobs:
            data = head if len(head) < HEAD_BYTES else repo.read_bytes(rel)  # a short head is it all
            results.append(None if data is None else scan_file(rel, data, repo, mods[name], max_bytes))
            if progress is not None:
                progress(len(results), claimed)
    for one in results:
        if one is not None:
            out.refs.extend(one.refs)
            out.errors.extend(one.errors)
            out.facts.extend(one.facts)
            out.files += one.files
            out.bytes += one.bytes
    out.refs = local_builds(out.refs)
    return out


_SHARED: list[object] = []  # this process's contained() sandbox, started on first use
_SHARED_LOCK = threading.Lock()


def contained(path: str, data: bytes, repo: Repo, max_bytes: int = MAX_FILE_BYTES) -> ScanResult:
    """:func:`scan_file` in a worker process (:mod:`bot.scan.sandbox`), so a parser crash costs
    this file, not the caller: how the App scans every file. The sandbox is shared by the process
    and kept (a long-lived App worker pays its start-up once), one file at a time across threads."""
    from bot.scan import sandbox

    mod = claimant(path, data[:HEAD_BYTES])
    if mod is None:
        return ScanResult()
    if len(data) > max_bytes:
        return ScanResult(errors=[ScanError(path, too_large(max_bytes))], files=1, bytes=len(data))
    with _SHARED_LOCK:
        if not _SHARED:
            started = sandbox.Sandbox(scan_file, ScanResult, LocalRepo, finders=FINDERS, workers=1)
            atexit.register(started.close)
            _SHARED.append(started)
        box = _SHARED[0]
        assert isinstance(box, sandbox.Sandbox)
        result: ScanResult = box.one(path, data, mod.__name__, repo)
        return result


def local_builds(refs: list[ImageRef]) -> list[ImageRef]:
    """Mark every reference to an image the repository builds itself (a compose service with
    ``build:``, a Skaffold artifact, a Tilt ``docker_build``: reported as ``built-locally``) as
    built locally too: a manifest deploying ``myapp`` that Skaffold builds pulls nothing from a
    registry, so it is never called rotten nor changed. Run over a whole scan's references."""
    from bot.model import Skip
    from bot.reference import ReferenceError, parse

    def name(text: str) -> str | None:
        try:
            return parse(text).name
        except ReferenceError:
            return None

    built: dict[str, str] = {}
    for r in refs:
        if r.skip is Skip.BUILT_LOCALLY and (n := name(r.text)) is not None:
            built.setdefault(n, r.path)
    if not built:
        return refs
    out = []
    for r in refs:
        n = name(r.reference) if r.reference else None
        if n is not None and n in built and r.skip is None:
            why = f"{r.text}: an image {built[n]} builds, not pulled"
            out.append(dataclasses.replace(r, reference=None, skip=Skip.BUILT_LOCALLY, detail=why))
        else:
            out.append(r)
    return out


def scan_single(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> ScanResult:
    """Scan one file given on the command line (its directory stands in for the repository)."""
    p = Path(path).resolve()
    repo = LocalRepo(p.parent, max_bytes)
    data = repo.read_bytes(p.name) or b""
    return scan_file(p.name, data, repo, max_bytes=max_bytes)
