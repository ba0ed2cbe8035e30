"""Commits without a clone: the Git Data API (research: github-app.md §4).

A change is one tree (the new file contents on top of the base commit's tree), one commit whose
only parent is the base, and a branch pointed at it: several files land atomically, nothing is
checked out, and since the commit carries no author, committer or signature, GitHub signs it
as the App and marks it verified.

Every step is idempotent so that a retried job (or a POST retried after a 502 that was in fact
applied) converges: git objects are content-addressed, creating a branch that exists becomes an
update, deleting one that is gone is a no-op. Branch updates PATCH the plural
``/git/refs/heads/...`` path directly (PyGithub's ``GitRef.edit`` PATCHes the singular one).
Writes go through :func:`request`, which spaces writes of an installation one second apart
(GitHub's guidance) when pacing is on; ``Retry-After`` and secondary limits are honoured by
:class:`bot.github.http.Http`.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bot.github.http import RETRY_STATUSES, GitHubError

if TYPE_CHECKING:
    from bot.github import Session

__all__ = [
    "Branch",
    "blob_sha",
    "branch",
    "branches",
    "commit_files",
    "commits_between",
    "create_branch",
    "create_once",
    "delete_branch",
    "request",
    "set_branch",
    "tree_of",
]

WRITE_GAP = 1.0  # seconds between two writes of one installation (GitHub's best practices)
_pace_lock = threading.Lock()
_last_write: dict[int, float] = {}


def _pace(session: Session) -> None:
    if not session.app.pacing:
        return
    with _pace_lock:
        now = time.monotonic()
        at = max(now, _last_write.get(session.installation_id, -WRITE_GAP) + WRITE_GAP)
        _last_write[session.installation_id] = at
        wait = at - now
    if wait > 0:
        session.app.sleep(wait)


def request(
    session: Session, method: str, sub: str, body: Any = None, *, retry_server_errors: bool = True
) -> Any:
    """``method`` on ``/repos/{owner}/{repo}/{sub}`` with the session's token; JSON or None."""
    if method != "GET":
        _pace(session)
    resp = session.app.http.request(
        method,
        f"/repos/{session.full_name}/{sub}".rstrip("/"),
        auth=session.auth(),
        json=body,
        installation_id=session.installation_id,
        retry_server_errors=retry_server_errors,
    )
    return resp.json() if resp.content else None


def create_once(session: Session, sub: str, body: Any, find: Callable[[], Any]) -> Any:
    """POST a create GitHub cannot de-duplicate (an issue, a comment, a check run) and retry it
    after a 5xx only when ``find()`` (the object as it would exist, or None) says the failed
    attempt did not land: a 502 from GitHub's front end can hide a write that was applied, and
    resending it blindly makes a second dashboard issue or comment."""
    http = session.app.http
    attempt = 0
    while True:
        attempt += 1
        try:
            return request(session, "POST", sub, body, retry_server_errors=False)
        except GitHubError as exc:
            if exc.status not in RETRY_STATUSES:
                raise
            found = find()
            if found is not None:
                return found
            if attempt >= http.max_attempts:
                raise
            session.app.sleep(min(http.backoff * 2 ** (attempt - 1), 30.0))


def ref_path(name: str) -> str:
    return quote(name, safe="/")


def blob_sha(data: bytes) -> str:
    """Git's object id for a blob, to compare with tree entries without a request."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def tree_of(session: Session, commit: str) -> str:
    """The tree of ``commit`` (revalidated with its ETag: a commit never changes, so it is a
    free 304 after the first time)."""
    return str(session.get_json(f"git/commits/{commit}")["tree"]["sha"])


def commit_files(
    session: Session,
    parent: str,
    files: Mapping[str, bytes],
    message: str,
    *,
    base_tree: str | None = None,
    modes: Mapping[str, str] | None = None,
    blobs: Mapping[str, str] | None = None,
) -> str:
    """A commit on ``parent`` whose tree is ``parent``'s with ``files`` replaced; its SHA.

    UTF-8 contents go inline in the tree request; other bytes become a blob first. ``blobs``
    (path -> blob SHA) reuses blobs that already exist, with no content sent at all.
    """
    tree = base_tree or tree_of(session, parent)
    entries: list[dict[str, Any]] = []
    for path, sha in sorted((blobs or {}).items()):
        entries.append({"path": path, "mode": (modes or {}).get(path, "100644"), "type": "blob", "sha": sha})
    for path, data in sorted(files.items()):
        entry: dict[str, Any] = {"path": path, "mode": (modes or {}).get(path, "100644"), "type": "blob"}
        try:
            entry["content"] = data.decode("utf-8")
        except UnicodeDecodeError:
            encoded = {"content": base64.b64encode(data).decode(), "encoding": "base64"}
            entry["sha"] = request(session, "POST", "git/blobs", encoded)["sha"]
        entries.append(entry)
    new_tree = request(session, "POST", "git/trees", {"base_tree": tree, "tree": entries})["sha"]
    commit = {"message": message, "tree": new_tree, "parents": [parent]}  # no author: verified
    made = request(session, "POST", "git/commits", commit)
    return str(made["sha"])


@dataclass(frozen=True)
class Branch:
    name: str
    sha: str


def branch(session: Session, name: str) -> Branch | None:
    """Where branch ``name`` points, or None (ETag-revalidated: unchanged costs nothing)."""
    try:
        data = session.get_json(f"git/ref/heads/{ref_path(name)}")
    except GitHubError as exc:
        if exc.status == 404:
            return None
        raise
    if isinstance(data, list):  # GitHub answers a prefix match with a list
        return None
    return Branch(name, str(data["object"]["sha"]))


def branches(session: Session, prefix: str) -> list[Branch]:
    """The branches whose names start with ``prefix`` (one ETag-revalidated listing)."""
    data = session.get_json(f"git/matching-refs/heads/{ref_path(prefix.rstrip('/'))}")
    out = [Branch(str(d["ref"]).removeprefix("refs/heads/"), str(d["object"]["sha"])) for d in data or []]
    return [b for b in out if b.name.startswith(prefix)]


def set_branch(session: Session, name: str, sha: str, *, exists: bool | None = None) -> None:
    """Point branch ``name`` at ``sha`` (created, or force-moved: Pullable's branches are rebuilt
    on the current base, never merged). ``exists`` saves the lookup when the caller knows."""
    if exists is None:
        exists = branch(session, name) is not None
    if not exists and create_branch(session, name, sha):
        return
    # created by a retried POST or a concurrent run: move it instead
    _update_ref(session, name, sha)


REF_CONFLICT = 409


def _update_ref(session: Session, name: str, sha: str) -> None:
    """Force-move ``name`` to ``sha``. GitHub answers 409 when another update of the ref is in
    flight (or its git backend is busy); the move is idempotent, so it is retried with the
    client's backoff, and after the last attempt the 409 is raised for the job to be retried
    later (:func:`bot.jobs.is_transient`)."""
    http = session.app.http
    for attempt in range(1, http.max_attempts + 1):
        try:
            request(session, "PATCH", f"git/refs/heads/{ref_path(name)}", {"sha": sha, "force": True})
            return
        except GitHubError as exc:
            if exc.status != REF_CONFLICT or attempt >= http.max_attempts:
                raise
        session.app.sleep(min(http.backoff * 2 ** (attempt - 1), 30.0))


def create_branch(session: Session, name: str, sha: str) -> bool:
    """Create branch ``name`` at ``sha``; False (and nothing changed) when it already exists."""
    try:
        request(session, "POST", "git/refs", {"ref": f"refs/heads/{name}", "sha": sha})
    except GitHubError as exc:
        if exc.status != 422 or "already exists" not in exc.message.lower():
            raise
        return False
    return True


def delete_branch(session: Session, name: str) -> bool:
    """Delete branch ``name``; False when it was already gone."""
    try:
        request(session, "DELETE", f"git/refs/heads/{ref_path(name)}")
    except GitHubError as exc:
        if exc.status in (404, 422):
            return False
        raise
    return True


def commits_between(session: Session, base: str, head: str) -> list[dict[str, Any]]:
    """The commits on ``head`` that ``base`` lacks (compare API, first 250), oldest first."""
    data = session.app.http.request_json(
        "GET",
        f"/repos/{session.full_name}/compare/{base}...{head}",
        auth=session.auth(),
        installation_id=session.installation_id,
    )
    return list(data.get("commits") or [])
