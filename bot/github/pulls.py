"""Pull requests, comments and labels: the write primitives the PR publisher composes.

Direct REST calls through :func:`bot.github.git.request` (one retrying client, Retry-After and
secondary limits honoured, writes paced per installation). Creation is idempotent: a POST that
GitHub applied but answered 502 is retried by the client and then meets 422 "already exists",
which resolves to the PR that exists. Listings are ETag-revalidated, so asking again about an
unchanged repository costs no rate limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bot.github.git import request
from bot.github.http import GitHubError

if TYPE_CHECKING:
    from bot.github import Session

__all__ = [
    "Pull",
    "add_labels",
    "close",
    "comment",
    "create",
    "edit",
    "ensure_labels",
    "get",
    "labels",
    "listing",
    "recent",
]

PAGE = 100
MAX_PAGES = 10
LABEL_COLOR = "1d76db"


@dataclass(frozen=True)
class Pull:
    """What the publisher needs of a pull request."""

    number: int
    state: str  # open | closed
    title: str
    body: str
    head: str  # branch name
    head_sha: str
    base: str
    base_sha: str
    merged: bool
    same_repo: bool
    labels: tuple[str, ...] = ()
    url: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict[str, Any], full_name: str = "") -> Pull:
        head_repo = (d.get("head") or {}).get("repo") or {}
        return cls(
            number=int(d["number"]),
            state=str(d["state"]),
            title=str(d.get("title") or ""),
            body=str(d.get("body") or ""),
            head=str(d["head"]["ref"]),
            head_sha=str(d["head"]["sha"]),
            base=str(d["base"]["ref"]),
            base_sha=str(d["base"]["sha"]),
            merged=bool(d.get("merged_at") or d.get("merged")),
            same_repo=not full_name or str(head_repo.get("full_name", "")).lower() == full_name.lower(),
            labels=tuple(str(lb["name"]) for lb in d.get("labels") or []),
            url=str(d.get("html_url") or ""),
            raw=d,
        )


def listing(session: Session, state: str = "open", head: str | None = None) -> list[Pull]:
    """Pull requests of the session's repository (``head``: one branch of the repository itself;
    fork branches never match). The first page is ETag-revalidated; more pages when full."""
    params = {"state": state, "per_page": str(PAGE), "sort": "created", "direction": "desc"}
    if head is not None:
        params["head"] = f"{session.full_name.split('/')[0]}:{head}"
    out: list[Pull] = []
    for page in range(1, MAX_PAGES + 1):
        if page > 1:
            params["page"] = str(page)
        items = session.get_json("pulls", params)
        out.extend(Pull.from_json(d, session.full_name) for d in items)
        if len(items) < PAGE:
            break
    return [p for p in out if p.same_repo and (head is None or p.head == head)]


def recent(session: Session) -> tuple[list[Pull], bool]:
    """One page of the repository's pull requests in every state, newest first, and whether
    that page is all there is (fewer than a full page): then it answers, in one call, every
    question :func:`listing` would have been asked per state and branch."""
    params = {"state": "all", "per_page": str(PAGE), "sort": "created", "direction": "desc"}
    items = session.get_json("pulls", params)
    out = [Pull.from_json(d, session.full_name) for d in items]
    return [p for p in out if p.same_repo], len(items) < PAGE


def get(session: Session, number: int) -> Pull:
    return Pull.from_json(session.get_json(f"pulls/{number}"), session.full_name)


def create(session: Session, head: str, base: str, title: str, body: str) -> tuple[Pull, bool]:
    """(the open PR from ``head`` into ``base``, whether this call created it)."""
    try:
        made = request(
            session, "POST", "pulls",
            {"title": title, "head": head, "base": base, "body": body, "maintainer_can_modify": True},
        )  # fmt: skip
        return Pull.from_json(made, session.full_name), True
    except GitHubError as exc:
        if exc.status != 422:  # "A pull request already exists": a retried POST, or a race
            raise
        existing = [p for p in listing(session, "open", head) if p.base == base]
        if not existing:
            raise
        return existing[0], False


def edit(session: Session, number: int, **fields: Any) -> Pull:
    """PATCH ``title``, ``body``, ``state`` or ``base`` of PR ``number``."""
    return Pull.from_json(request(session, "PATCH", f"pulls/{number}", fields), session.full_name)


def close(session: Session, number: int) -> Pull:
    return edit(session, number, state="closed")


def comment(session: Session, number: int, body: str) -> int:
    """Comment on issue or PR ``number``; the comment's id (once, even after a lost answer)."""
    from bot.github import issues

    return int(issues.comment(session, number, body)["id"])


def labels(session: Session) -> set[str]:
    """The repository's label names, lower-cased (ETag-revalidated pages: free when unchanged)."""
    out: set[str] = set()
    for page in range(1, MAX_PAGES + 1):
        params = {"per_page": str(PAGE)} | ({"page": str(page)} if page > 1 else {})
        items = session.get_json("labels", params)
        out |= {str(d["name"]).lower() for d in items}
        if len(items) < PAGE:
            break
    return out


def ensure_labels(
    session: Session, names: list[str], description: str = "", existing: set[str] | None = None
) -> None:
    """Create the labels that do not exist yet, so they get a colour and a description instead
    of GitHub's grey default. ``existing`` (lower-cased names, as :func:`labels` gives) saves
    asking; without it every name is POSTed and "already exists" is fine."""
    for name in names:
        if existing is not None and name.lower() in existing:
            continue
        try:
            request(
                session, "POST", "labels",
                {"name": name, "color": LABEL_COLOR, "description": description[:100]},
            )  # fmt: skip
        except GitHubError as exc:
            if exc.status != 422:
                raise
        if existing is not None:
            existing.add(name.lower())


def add_labels(session: Session, number: int, names: list[str]) -> None:
    if names:
        request(session, "POST", f"issues/{number}/labels", {"labels": names})


def remove_label(session: Session, number: int, name: str) -> None:
    try:
        request(session, "DELETE", f"issues/{number}/labels/{quote(name, safe='')}")
    except GitHubError as exc:
        if exc.status != 404:
            raise
