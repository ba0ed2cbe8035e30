"""Issues, comments and reactions: the primitives conversations and the dashboard are made of.

Writes go through :func:`bot.github.git.request` (retries, ``Retry-After``, writes paced per
installation); reads through ``Session.get_json`` (ETag-revalidated, so asking again about an
unchanged issue costs no rate limit). Which issue is Pullable's own is decided by who wrote it
(:func:`bot_login`, from GitHub's ``GET /app``) *and* a hidden marker, never by title alone: any
user can open an issue titled like the dashboard, or paste its markers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bot.github.git import create_once, request
from bot.github.markdown import marker, markers

if TYPE_CHECKING:
    from bot.github import Session

__all__ = [
    "bot_login",
    "comment",
    "comments",
    "create_issue",
    "edit_comment",
    "edit_issue",
    "issues_by",
    "notice",
    "react",
]

PAGE = 100
MAX_PAGES = 10
_logins: dict[tuple[str, str], str] = {}
_logins_lock = threading.Lock()
NOTICE = "notice"


def bot_login(session: Session) -> str:
    """The App's own user name (``<slug>[bot]``): what its issues and comments are written as.
    Asked once per process (``GET /app`` with the App's JWT; it never changes for an App id)."""
    key = (session.app.api_url, str(session.app.app_id))
    with _logins_lock:
        if key in _logins:
            return _logins[key]
    data = session.app.http.request_json("GET", "/app", auth=session.app.jwt_auth())
    login = f"{data['slug']}[bot]"
    with _logins_lock:
        _logins[key] = login
    return login


def react(session: Session, comment_id: int, content: str = "eyes") -> None:
    """React to an issue or PR comment (GitHub answers 200 for a reaction that exists, so a
    redelivered command does not add a second one)."""
    request(session, "POST", f"issues/comments/{int(comment_id)}/reactions", {"content": content})


def comment(session: Session, number: int, body: str) -> dict[str, Any]:
    """Comment on issue or PR ``number``; the new comment (after a lost answer, the one that
    landed: never twice)."""

    def landed() -> dict[str, Any] | None:
        me = bot_login(session)
        for c in comments(session, number):
            if (c.get("user") or {}).get("login") == me and c.get("body") == body:
                return c
        return None

    return create_once(session, f"issues/{int(number)}/comments", {"body": body}, landed)


def notice(session: Session, number: int, body: str, key: str) -> dict[str, Any] | None:
    """Say ``body`` on issue or PR ``number`` once for ``key`` (kept in a hidden marker): not again
    when a comment of ours there carries it already, so a job retried between the comment and the
    write that records it does not repeat itself. The new comment, or None when it was said."""
    me = bot_login(session)
    for c in comments(session, number):
        if (c.get("user") or {}).get("login") == me and any(
            m.get("key") == key for m in markers(c.get("body"), NOTICE)
        ):
            return None
    return comment(session, number, f"{body}\n\n{marker(NOTICE, {'key': key})}")


def edit_comment(session: Session, comment_id: int, body: str) -> dict[str, Any]:
    return request(session, "PATCH", f"issues/comments/{int(comment_id)}", {"body": body})


def comments(session: Session, number: int, since: str | None = None) -> list[dict[str, Any]]:
    """Comments on issue or PR ``number`` (``since``: updated at or after this ISO time)."""
    params = {"per_page": str(PAGE)}
    if since:
        params["since"] = since
    return list(_pages(session, f"issues/{int(number)}/comments", params))


def issues_by(session: Session, creator: str, state: str = "all") -> Iterator[dict[str, Any]]:
    """Issues (not pull requests) opened by ``creator``, newest first, page by page."""
    params = {"state": state, "creator": creator, "per_page": str(PAGE), "sort": "created"}
    for item in _pages(session, "issues", params):
        if "pull_request" not in item and (item.get("user") or {}).get("login") == creator:
            yield item


def create_issue(session: Session, title: str, body: str, labels: list[str] | None = None) -> dict[str, Any]:
    """Open an issue (after a lost answer, the one that landed: never two)."""
    data: dict[str, Any] = {"title": title, "body": body}
    if labels:
        data["labels"] = labels

    def landed() -> dict[str, Any] | None:
        for issue in issues_by(session, bot_login(session)):
            if issue.get("title") == title and issue.get("body") == body:
                return issue
        return None

    return create_once(session, "issues", data, landed)


def edit_issue(session: Session, number: int, **fields: Any) -> dict[str, Any]:
    """PATCH ``title``, ``body``, ``state`` or ``labels`` of issue ``number``."""
    return request(session, "PATCH", f"issues/{int(number)}", fields)


def _pages(session: Session, sub: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
    for page in range(1, MAX_PAGES + 1):
        items = session.get_json(sub, {**params, "page": str(page)} if page > 1 else params)
        yield from items
        if len(items) < PAGE:
            return
