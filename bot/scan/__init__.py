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

import dataclasses
import fnmatch
import importlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from bot.model import ImageRef, Part, ScanError, Span

if TYPE_CHECKING:
    from bot.scan.pullsecrets import FileFacts

MAX_FILE_BYTES = 1 << 20
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


def claimant(path: str, head: bytes) -> ModuleType | None:
    for mod in finders():
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


def scan_file(path: str, data: bytes, repo: Repo, finder: ModuleType | None = None) -> ScanResult:
    """References in one file; problems become ``errors``, never exceptions."""
    out = ScanResult()
    mod = finder or claimant(path, data[:HEAD_BYTES])
    if mod is None:
        return out
    out.files, out.bytes = 1, len(data)
    if len(data) > MAX_FILE_BYTES:
        out.errors.append(ScanError(path, f"skipped: larger than {MAX_FILE_BYTES} bytes"))
        return out
    try:
        text, bom = decode(data)
    except ValueError as exc:
        out.errors.append(ScanError(path, f"skipped: {exc}"))
        return out
    try:
        refs = list(mod.find(text, path, repo))
    except Exception as exc:  # noqa: BLE001 - a finder failing on one file must not stop the scan
        out.errors.append(ScanError(path, _describe(exc)))
        return out
    out.refs = [_shift(r, bom) for r in refs] if bom else refs
    if mod.__name__ not in _NOT_YAML:
        out.facts = _pull_facts(text, path, bom, out.errors)
    return out


# Finders of files that are templates, not YAML: their pull secrets are not known before rendering.
_NOT_YAML = frozenset({"bot.scan.dockerfile", "bot.scan.helm_template", "bot.scan.jinja"})


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

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self._root = str(self.root)
        self._plain: set[str] = set()

    def _inside(self, path: str) -> str | None:
        if path in self._plain:
            return os.path.join(self._root, path)
        p = os.path.realpath(os.path.join(self._root, path))
        if p == self._root or p.startswith(self._root + os.sep):
            return p
        return None

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
                return head + fh.read(MAX_FILE_BYTES + 1 - len(head))
        except OSError:
            return None

    def read_text(self, path: str) -> str | None:
        data = self.read_bytes(path)
        if data is None or len(data) > MAX_FILE_BYTES:
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
) -> ScanResult:
    """Scan every file under ``root``. ``progress(done, total)`` is called as files are read."""
    repo = LocalRepo(root)
    paths = list(repo.files(ignore))
    out = ScanResult()
    for i, rel in enumerate(paths, 1):
        mod: ModuleType | None = None

        def claim(head: bytes, rel: str = rel) -> bool:
            nonlocal mod
            mod = claimant(rel, head)
            return mod is not None

        data = repo.read_bytes(rel, claim)
        if data is not None:
            one = scan_file(rel, data, repo, mod)
            out.refs.extend(one.refs)
            out.errors.extend(one.errors)
            out.facts.extend(one.facts)
            out.files += one.files
            out.bytes += one.bytes
        if progress is not None:
            progress(i, len(paths))
    return out


def scan_single(path: str | os.PathLike[str]) -> ScanResult:
    """Scan one file given on the command line (its directory stands in for the repository)."""
    p = Path(path).resolve()
    repo = LocalRepo(p.parent)
    data = repo.read_bytes(p.name) or b""
    return scan_file(p.name, data, repo)
