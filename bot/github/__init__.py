"""GitHub access for the App: authentication, a per-job session on one repository, trees and
comparisons (:mod:`bot.github.tree`), and the REST calls the App makes (:mod:`~bot.github.git`,
:mod:`~bot.github.pulls`, :mod:`~bot.github.issues`, :mod:`~bot.github.checks`). Scanning through
the API is orchestration and lives in :mod:`bot.jobs.reader` (this package is one of the five
siblings and never imports ``scan``).

Typical job::

    session = github.session(settings, installation_id, "octo-org/demo")    # read-only token
    result = bot.jobs.reader.scan_repository(session, ref=None, paths=None)  # RepoScan

Writers of pull requests ask for :data:`WRITE_PERMISSIONS` (the PR writer's token).
``PULLABLE_GITHUB_PACING=0`` turns the pause between writes of an installation off (tests against
the fake); keep it on against GitHub.

**PyGithub.** The design names PyGithub; the App keeps only what it needs from it: the App JWT
(``github.Auth.AppAuth``, :class:`bot.github.auth.TokenCache`). Every request goes through
Pullable's own httpx client (:class:`bot.github.http.Http`) because the App depends on what
PyGithub's client does not do: conditional GETs revalidated from a persistent ETag store (an
unchanged repository costs free 304s), installation tokens scoped to one repository and a few
permissions, one retry and pacing policy for reads and writes (``Retry-After``, secondary limits,
no sleep past ``max_wait``), and one rate-limit figure. A PyGithub client beside it was only
reached by tests and would have meant a second retry policy and a second rate-limit count, so
it was removed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.github.auth import (
    OWNER,
    CredentialsError,
    InstallationToken,
    TokenCache,
    job_tokens,
    load_private_key,
)
from bot.github.http import (
    RATE_LISTENERS,
    GitHubError,
    Http,
    RateLimited,
    rate_limit_remaining,
    rate_limits,
    record_rate,
)
from bot.github.store import Store, StoredEtags
from bot.github.tree import Changes, changed_files

if TYPE_CHECKING:
    from bot.settings import Settings

DEFAULT_API_URL = "https://api.github.com"
READ_PERMISSIONS: dict[str, str] = {"contents": "read", "metadata": "read"}
# What a writer of pull requests needs, no more: commits and branches, pull requests, their comments
# and labels (``issues``). Check runs have their own job and token; ``workflows`` is asked for only
# by the writes that change a workflow file (:func:`bot.jobs.publish._writer`).
WRITE_PERMISSIONS: dict[str, str] = {
    "contents": "write",
    "pull_requests": "write",
    "issues": "write",
    "metadata": "read",
}


class GitHubApp:
    """The App: its key, one token cache, one HTTP client and one cache store per process."""

    def __init__(
        self,
        app_id: int | str,
        private_key: str,
        api_url: str = DEFAULT_API_URL,
        data_dir: str | Path | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        pacing: bool | None = None,
    ) -> None:
        if not str(app_id).strip():
            raise CredentialsError("set APP_ID to the App's id (or client id)")
        self.app_id = app_id
        self.api_url = api_url.rstrip("/")
        self.store = Store(None if data_dir is None else Path(data_dir) / "github-cache.sqlite3")
        self.sleep = sleep
        self.http = Http(self.api_url, sleep=sleep, etags=StoredEtags(self.store))
        self.tokens = TokenCache(app_id, load_private_key(private_key), self.http)
        if pacing is None:
            pacing = os.environ.get("PULLABLE_GITHUB_PACING", "1") != "0"
        self.pacing = pacing

    @classmethod
    def from_settings(cls, settings: Settings) -> GitHubApp:
        """One App object per (id, API URL, data dir) in the process, so tokens and ETags are shared
        by every job a worker runs."""
        key = (settings.app_id, settings.github_api_url, str(settings.data_dir))
        with _apps_lock:
            app = _apps.get(key)
            if app is None:
                pem = load_private_key(settings.private_key, settings.private_key_path)
                app = cls(settings.app_id, pem, settings.github_api_url or DEFAULT_API_URL, settings.data_dir)
                _apps[key] = app
            return app

    def jwt_auth(self) -> str:
        return f"Bearer {self.tokens.jwt()}"

    def session(
        self, installation_id: int, repository: str, permissions: Mapping[str, str] | None = None
    ) -> Session:
        """A session on ``repository`` (``owner/name``) with a token scoped to it alone."""
        return Session(self, installation_id, repository, dict(permissions or READ_PERMISSIONS))

    def installations(self) -> list[dict[str, Any]]:
        """Every installation of the App (JWT; paginated)."""
        return list(self._pages("/app/installations", self.jwt_auth, None, lambda d: d))

    def installation_repositories(self, installation_id: int) -> list[dict[str, Any]]:
        """The repositories an installation can see (a metadata-only token for the listing)."""

        owner = OWNER.get()

        def auth() -> str:
            return f"token {self.tokens.get(installation_id, None, {'metadata': 'read'}, owner).token}"

        return list(
            self._pages("/installation/repositories", auth, installation_id, lambda d: d["repositories"])
        )

    def _pages(
        self,
        path: str,
        auth: Callable[[], str],
        installation_id: int | None,
        items: Callable[[Any], list[dict[str, Any]]],
    ) -> Iterator[dict[str, Any]]:
        url: str | None = path
        params: dict[str, str] | None = {"per_page": "100"}
        while url:
            resp = self.http.request("GET", url, auth=auth(), params=params, installation_id=installation_id)
            yield from items(resp.json())
            url = resp.links.get("next", {}).get("url")
            params = None


_apps_lock = threading.Lock()
_apps: dict[tuple[str, str, str], GitHubApp] = {}


class Session:
    """One job's access to one repository: a scoped token, conditional GETs for reads, writes
    through :func:`bot.github.git.request`. Not shared between threads (each job makes its own)."""

    def __init__(
        self, app: GitHubApp, installation_id: int, full_name: str, permissions: dict[str, str]
    ) -> None:
        self.app = app
        self.installation_id = installation_id
        self.full_name = full_name
        self.permissions = permissions
        self.store = app.store
        self.owner = OWNER.get()  # the job it was made in (see bot.github.auth.job_tokens)

    def __repr__(self) -> str:
        return f"Session({self.full_name!r}, installation={self.installation_id})"

    @property
    def token(self) -> InstallationToken:
        return self.app.tokens.get(self.installation_id, self.full_name, self.permissions, self.owner)

    def auth(self) -> str:
        return f"token {self.token.token}"

    def _path(self, sub: str) -> str:
        return f"/repos/{self.full_name}/{sub}" if sub else f"/repos/{self.full_name}"

    def get_json(self, sub: str, params: Mapping[str, str] | None = None) -> Any:
        """GET ``/repos/{owner}/{repo}/{sub}``, revalidated with the stored ETag (304s are free)."""
        return self.app.http.get_json(
            self._path(sub),
            auth=self.auth(),
            scope=self.full_name.lower(),
            params=params,
            installation_id=self.installation_id,
        )

    def repository(self) -> dict[str, Any]:
        return self.get_json("")

    def blob(self, sha: str) -> bytes:
        """A blob's bytes (immutable, so never revalidated: the scan cache keys on its SHA)."""
        resp = self.app.http.request(
            "GET",
            self._path(f"git/blobs/{sha}"),
            auth=self.auth(),
            headers={"Accept": "application/vnd.github.raw+json"},
            installation_id=self.installation_id,
        )
        return resp.content

    def compare(self, base: str, head: str) -> list[dict[str, Any]] | None:
        """Files changed between two commits (GitHub lists at most 300); None when GitHub cannot
        compare them (unknown or unrelated commits, e.g. after a force push)."""
        try:
            data = self.app.http.request_json(
                "GET",
                self._path(f"compare/{base}...{head}"),
                auth=self.auth(),
                params={"per_page": "1"},
                installation_id=self.installation_id,
            )
        except GitHubError as exc:
            if exc.status in (404, 422):
                return None
            raise
        return list(data.get("files") or [])

    def changed_files(self, base: str, head: str) -> Changes:
        return changed_files(self, base, head)

    def rate_limit_remaining(self) -> int | None:
        """The remaining figure GitHub last reported for this session's installation."""
        return rate_limit_remaining(self.installation_id)

    def close(self, revoke: bool = False) -> None:
        """End the job's use of the session; ``revoke`` also revokes the token at GitHub (only
        when no other job may share it: tokens are cached per repository)."""
        if revoke:
            self.app.tokens.revoke(self.token)


def session(
    settings: Settings, installation_id: int, repository: str, permissions: Mapping[str, str] | None = None
) -> Session:
    """A job's session on ``repository`` with the App configured by ``settings``."""
    return GitHubApp.from_settings(settings).session(installation_id, repository, permissions)


def installation_ids(settings: Settings) -> list[int]:
    """The App's installations that are not suspended (JWT; paginated)."""
    app = GitHubApp.from_settings(settings)
    return [int(i["id"]) for i in app.installations() if not i.get("suspended_at")]


def installed_repositories(
    settings: Settings, installation_id: int | None = None
) -> Iterator[tuple[int, str]]:
    """(installation id, owner/name) of every repository the App can see (the schedule's list)."""
    app = GitHubApp.from_settings(settings)
    ids = [installation_id] if installation_id is not None else installation_ids(settings)
    for iid in ids:
        for repo in app.installation_repositories(iid):
            yield iid, repo["full_name"]


__all__ = [
    "RATE_LISTENERS",
    "READ_PERMISSIONS",
    "WRITE_PERMISSIONS",
    "Changes",
    "CredentialsError",
    "GitHubApp",
    "GitHubError",
    "InstallationToken",
    "RateLimited",
    "Session",
    "changed_files",
    "installation_ids",
    "installed_repositories",
    "job_tokens",
    "load_private_key",
    "rate_limit_remaining",
    "rate_limits",
    "record_rate",
    "session",
]
