"""Organisation-wide repository configuration: reading an ``_extends`` base from GitHub.

It composes ``github`` (a session) and ``repoconfig`` (what an ``_extends`` names), which sits
above the five sibling packages, so it lives with the App's jobs rather than in ``bot.github``.

Probot's ``_extends: .github`` reads the same file from another repository of the owner; so does
this, with a token scoped to that repository alone (contents read). The App must be installed on
the base repository (as for Probot); a base it cannot read (not installed, missing, another
owner's installation) is ``None``, which :func:`bot.repoconfig.load` reports as a clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.github import GitHubError
from bot.repoconfig import MAX_BYTES, Extends

if TYPE_CHECKING:
    from bot.github import Session


def config_fetcher(session: Session) -> Callable[[Extends], str | None]:
    """A ``fetch`` for :func:`bot.repoconfig.read` on ``session``'s repository."""
    owner = session.full_name.split("/", 1)[0]

    def fetch(where: Extends) -> str | None:
        base_owner = where.owner or owner
        if base_owner.lower() != owner.lower():
            return None  # an installation's token cannot read another account's repositories
        full = f"{base_owner}/{where.repo}"
        try:
            other = session.app.session(session.installation_id, full)
            resp = session.app.http.request(
                "GET",
                f"/repos/{full}/contents/{where.path}",
                auth=other.auth(),
                headers={"Accept": "application/vnd.github.raw+json"},
                installation_id=session.installation_id,
            )
        except GitHubError as exc:
            if exc.status in (403, 404, 422):
                return None
            raise
        data = resp.content
        if len(data) > MAX_BYTES:
            return None
        try:
            return data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            return None

    return fetch
