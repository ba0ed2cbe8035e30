"""Check runs and the files of a pull request: what the PR check (issue 6 §5) is made of.

GitHub takes at most 50 annotations per request and adds up the annotations of successive updates,
so :func:`complete` sends them in batches of 50 and sets the conclusion with the last one; a batch
is resent after a 5xx only without the annotations that landed anyway (:func:`update`). A run is
found again by head SHA and name (:func:`find_run`), so a retried or redelivered job updates the
run it started instead of adding a second "Pullable" check to the pull request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bot.github.git import create_once, request
from bot.github.http import RETRY_STATUSES, GitHubError

if TYPE_CHECKING:
    from bot.github import Session

__all__ = [
    "ANNOTATIONS_PER_REQUEST",
    "annotations_of",
    "complete",
    "create_run",
    "find_run",
    "pull_files",
    "start",
    "update",
]

ANNOTATIONS_PER_REQUEST = 50  # GitHub's limit
PAGE = 100
MAX_FILES = 3000  # GitHub lists at most this many files of a pull request
MAX_ANNOTATION_PAGES = 50


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find_run(session: Session, sha: str, name: str) -> dict[str, Any] | None:
    """The newest check run called ``name`` on commit ``sha`` (by any App: GitHub filters by the
    token's App for installation tokens), or None."""
    data = session.get_json(
        f"commits/{quote(sha, safe='')}/check-runs", {"check_name": name, "per_page": "10"}
    )
    runs = sorted(data.get("check_runs") or [], key=lambda r: int(r["id"]), reverse=True)
    return runs[0] if runs else None


def create_run(session: Session, sha: str, name: str, **fields: Any) -> dict[str, Any]:
    """A new check run (after a lost answer, the one that landed: never a second "Pullable")."""
    body = {"name": name, "head_sha": sha, **fields}
    return create_once(session, "check-runs", body, lambda: find_run(session, sha, name))


def start(session: Session, sha: str, name: str, external_id: str = "") -> dict[str, Any]:
    """The run to report into: the existing one for ``sha`` (set back to in progress) or a new one."""
    run = find_run(session, sha, name)
    body = {"status": "in_progress", "started_at": _now(), "external_id": external_id}
    if run is None:
        return create_run(session, sha, name, **body)
    return request(session, "PATCH", f"check-runs/{int(run['id'])}", body)


def complete(
    session: Session,
    run_id: int,
    *,
    conclusion: str,
    title: str,
    summary: str,
    annotations: Sequence[dict[str, Any]] = (),
    text: str | None = None,
) -> int:
    """Finish run ``run_id`` with ``annotations`` sent 50 per request; returns the requests made."""
    batches = [list(annotations[i : i + ANNOTATIONS_PER_REQUEST])
               for i in range(0, len(annotations), ANNOTATIONS_PER_REQUEST)] or [[]]  # fmt: skip
    output: dict[str, Any] = {"title": title[:255], "summary": summary[:65000]}
    if text:
        output["text"] = text[:65000]
    for batch in batches[:-1]:
        update(session, run_id, {"output": {**output, "annotations": batch}})
    last: dict[str, Any] = {**output}
    if batches[-1]:
        last["annotations"] = batches[-1]
    update(
        session,
        run_id,
        {"status": "completed", "conclusion": conclusion, "completed_at": _now(), "output": last},
    )
    return len(batches)


def _key(a: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(a.get(k) for k in ("path", "start_line", "end_line", "annotation_level", "title", "message"))


def update(session: Session, run_id: int, body: dict[str, Any]) -> None:
    """PATCH run ``run_id``. GitHub appends the annotations of every update, so a 5xx (which can
    hide a write that was applied) is retried only with the annotations the run does not hold yet."""
    http = session.app.http
    attempt = 0
    while True:
        attempt += 1
        try:
            request(session, "PATCH", f"check-runs/{int(run_id)}", body, retry_server_errors=False)
            return
        except GitHubError as exc:
            if exc.status not in RETRY_STATUSES or attempt >= http.max_attempts:
                raise
        output = dict(body.get("output") or {})
        if output.get("annotations"):
            landed = {_key(a) for a in annotations_of(session, run_id)}
            output["annotations"] = [a for a in output["annotations"] if _key(a) not in landed]
            if not output["annotations"]:
                del output["annotations"]
            body = {**body, "output": output}
        session.app.sleep(min(http.backoff * 2 ** (attempt - 1), 30.0))


def annotations_of(session: Session, run_id: int) -> list[dict[str, Any]]:
    """The annotations run ``run_id`` holds (those of every update so far)."""
    out: list[dict[str, Any]] = []
    for page in range(1, MAX_ANNOTATION_PAGES + 1):
        params = {"per_page": str(PAGE)} if page == 1 else {"per_page": str(PAGE), "page": str(page)}
        items = session.get_json(f"check-runs/{int(run_id)}/annotations", params)
        out.extend(items)
        if len(items) < PAGE:
            break
    return out


def pull_files(session: Session, number: int) -> list[dict[str, Any]]:
    """The files pull request ``number`` changes (``filename``, ``status``, ``previous_filename``)."""
    out: list[dict[str, Any]] = []
    for page in range(1, MAX_FILES // PAGE + 1):
        params = {"per_page": str(PAGE)} if page == 1 else {"per_page": str(PAGE), "page": str(page)}
        items = session.get_json(f"pulls/{int(number)}/files", params)
        out.extend(items)
        if len(items) < PAGE:
            break
    return out
