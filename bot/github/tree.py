"""Trees, refs and comparisons of a repository, read through the API (issue 5 §5).

One recursive tree listing tells every path, blob SHA and size; when GitHub truncates it, the
tree is walked subtree by subtree (folders in ``skip`` are not descended). What to fetch and scan
is decided one layer up, in :mod:`bot.jobs.reader`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class Session(Protocol):
    """What these readers need of a :class:`bot.github.Session` (which imports this module, so
    the type is named by its face here, not imported back)."""

    def get_json(self, sub: str, params: Mapping[str, str] | None = None) -> Any: ...

    def repository(self) -> dict[str, Any]: ...

    def compare(self, base: str, head: str) -> list[dict[str, Any]] | None: ...


SHA = re.compile(r"[0-9a-f]{40}")
COMPARE_FILE_LIMIT = 300


@dataclass(frozen=True)
class Entry:
    path: str
    type: str  # blob, tree, commit (submodule)
    sha: str
    size: int = 0
    mode: str = "100644"


@dataclass(frozen=True)
class Changes:
    """Files changed between two commits, from the compare API. ``truncated``: GitHub's list may
    be cut short (300 files) or the comparison failed, so the caller should scan everything."""

    changed: tuple[str, ...] = ()  # added, modified, renamed (new name)
    removed: tuple[str, ...] = ()
    truncated: bool = False


COMPARE_FILE_LIMIT = 300


def read_tree(
    session: Session, commit: str, skip: frozenset[str] = frozenset()
) -> tuple[dict[str, Entry], bool, str]:
    """Every entry of ``commit``'s tree, whether the recursive listing had to be walked, and the
    root tree's SHA (what a new commit on ``commit`` builds on, so writers need not ask again)."""
    data = session.get_json(f"git/trees/{commit}", {"recursive": "1"})
    root = str(data["sha"])
    entries = {e["path"]: _entry(e, "") for e in data["tree"]}
    if not data.get("truncated"):
        return entries, False, root
    entries = {}
    _walk(session, root, "", entries, skip)
    return entries, True, root


def _entry(e: dict[str, Any], prefix: str) -> Entry:
    return Entry(prefix + e["path"], e["type"], e["sha"], int(e.get("size") or 0), e.get("mode", "100644"))


def _walk(session: Session, tree_sha: str, prefix: str, out: dict[str, Entry], skip: frozenset[str]) -> None:
    """One level of ``tree_sha``; each subtree is listed recursively, split again if truncated."""
    level = session.get_json(f"git/trees/{tree_sha}")
    for e in level["tree"]:
        entry = _entry(e, prefix)
        out[entry.path] = entry
        if entry.type != "tree" or e["path"] in skip:
            continue
        sub = session.get_json(f"git/trees/{entry.sha}", {"recursive": "1"})
        if sub.get("truncated"):
            _walk(session, entry.sha, entry.path + "/", out, skip)
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


__all__ = ["COMPARE_FILE_LIMIT", "Changes", "Entry", "changed_files", "read_tree", "resolve"]
