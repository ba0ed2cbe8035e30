"""Who may command Pullable: one authorisation function, asked of GitHub itself.

``author_association`` in a webhook says how someone relates to a repository, not what they may
do in it (an org member with read access is ``MEMBER``; a private member with write access shows
as ``CONTRIBUTOR``), so it is never consulted. The collaborator permission endpoint is: its
``role_name`` (admin, maintain, write, triage, read, or a custom role's name) decides, and for
custom roles the ``user.permissions`` booleans say whether the role can push. Anything else
(404, 403, a 5xx after retries, a timeout, an answer we cannot read) refuses: fail closed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from bot.github.http import GitHubError

if TYPE_CHECKING:
    from bot.github import Session

__all__ = ["ALLOWED_ROLES", "Decision", "authorise", "decide"]

log = logging.getLogger(__name__)

ALLOWED_ROLES = frozenset({"admin", "maintain", "write"})
KNOWN_ROLES = frozenset({"admin", "maintain", "write", "triage", "read", "none"})
LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", re.ASCII)  # GitHub's user names


@dataclass(frozen=True)
class Decision:
    """Whether ``login`` may command the bot here; ``role`` is what GitHub said (or why not)."""

    allowed: bool
    role: str


def decide(answer: Mapping[str, Any]) -> Decision:
    """The decision for one answer of the permission endpoint."""
    role = str(answer.get("role_name") or "").lower()
    if role in ALLOWED_ROLES:
        return Decision(True, role)
    if role in KNOWN_ROLES or not role:
        return Decision(False, role or "unknown")
    # A custom role: what it may do is in the booleans (push = write access to the code).
    perms = (answer.get("user") or {}).get("permissions") or {}
    allowed = any(perms.get(k) is True for k in ("admin", "maintain", "push"))
    return Decision(allowed, role)


def authorise(session: Session, login: str) -> Decision:
    """Ask GitHub what ``login`` may do in the session's repository; refuse on any failure."""
    if not LOGIN.fullmatch(login):
        return Decision(False, "invalid login")  # not a user name: never reaches a URL
    try:
        answer = session.app.http.request_json(
            "GET",
            f"/repos/{session.full_name}/collaborators/{quote(login, safe='')}/permission",
            auth=session.auth(),
            installation_id=session.installation_id,
        )
    except GitHubError as exc:
        log.info("permission of %s on %s: GitHub answered %s; refused", login, session.full_name, exc.status)
        return Decision(False, f"error {exc.status}")
    except (httpx.HTTPError, ValueError) as exc:
        log.info("permission of %s on %s: %s; refused", login, session.full_name, type(exc).__name__)
        return Decision(False, "error")
    if not isinstance(answer, dict):
        return Decision(False, "error")
    return decide(answer)
