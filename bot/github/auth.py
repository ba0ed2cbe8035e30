"""App authentication: the private key, the App's JWT, and installation tokens scoped to one job.

A job gets a token limited to ONE repository and the permissions it needs, so a bug or a leaked
token cannot touch the rest of an installation. Tokens minted while a job runs (inside
:func:`job_tokens`) are that job's own: no other job reuses them, and they are revoked at GitHub
(``DELETE /installation/token``) when the job ends, whether it succeeded or failed (security.md
C2), so a token outlives its job only when the process dies with it (it then expires within the
hour GitHub gives it). PyGithub cannot scope tokens to repositories, so
tokens are minted with a direct POST to ``/app/installations/{id}/access_tokens``. Tokens are
never logged, and their length is never assumed (GitHub's ``ghs_APPID_JWT`` format is longer).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import logging
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from github import Auth

if TYPE_CHECKING:
    from bot.github.http import Http

REFRESH_MARGIN = 300.0  # a cached token is replaced 5 minutes before it expires

log = logging.getLogger(__name__)

# The job whose tokens are being minted (None outside jobs: tokens then are shared and cached).
OWNER: contextvars.ContextVar[str | None] = contextvars.ContextVar("pullable_token_owner", default=None)
_caches: weakref.WeakSet[TokenCache] = weakref.WeakSet()


@contextlib.contextmanager
def job_tokens(owner: str) -> Iterator[None]:
    """Run a job: the tokens minted inside belong to ``owner`` alone and are revoked on the way
    out, however the block ends. Revocation failures are logged, never raised (the token expires
    anyway, and the job's own outcome is what matters)."""
    mark = OWNER.set(owner)
    try:
        yield
    finally:
        OWNER.reset(mark)
        for cache in list(_caches):
            cache.release(owner)


class CredentialsError(RuntimeError):
    """The App's id or key is missing or unreadable."""


def load_private_key(text: str = "", path: str | Path = "") -> str:
    """The App's PEM from ``PRIVATE_KEY`` (PEM, PEM with ``\\n`` escapes, or base64 of a PEM, as
    Probot accepts) or else from the file at ``PRIVATE_KEY_PATH``."""
    raw = text.strip()
    if not raw and path:
        try:
            raw = Path(path).read_text().strip()
        except OSError as exc:
            raise CredentialsError(f"PRIVATE_KEY_PATH: {exc.strerror}") from None
    if not raw:
        raise CredentialsError("set PRIVATE_KEY or PRIVATE_KEY_PATH to the App's private key")
    if not raw.startswith("-----BEGIN"):
        try:
            raw = base64.b64decode(raw, validate=False).decode().strip()
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError("PRIVATE_KEY is neither a PEM nor a base64-encoded PEM") from None
    raw = raw.replace("\\n", "\n")
    if not raw.startswith("-----BEGIN") or "PRIVATE KEY-----" not in raw:
        raise CredentialsError("PRIVATE_KEY is neither a PEM nor a base64-encoded PEM")
    return raw + "\n"


@dataclass(frozen=True)
class InstallationToken:
    """A minted token. ``repr`` hides the secret so it cannot end up in a log line."""

    token: str
    expires_at: float  # epoch seconds
    installation_id: int
    repository: str | None
    permissions: tuple[tuple[str, str], ...]

    def __repr__(self) -> str:
        return f"InstallationToken(installation={self.installation_id}, repository={self.repository!r}, ...)"

    def fresh(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) < self.expires_at - REFRESH_MARGIN


class _Signer:
    """Signs the App's JWT (the claims PyGithub builds) with the key parsed once: PyGithub's
    default signer parses the PEM again for every JWT, and parsing an RSA key checks it (about
    50 ms of CPU, three times a scan job: most of a steady-state rescan's time)."""

    def __init__(self, pem: str) -> None:
        self._pem = pem
        self._key: object | None = None
        self._lock = threading.Lock()

    def __call__(self, claims: dict[str, object]) -> str:
        import jwt
        from jwt.algorithms import RSAAlgorithm

        with self._lock:
            if self._key is None:  # first use: a bad key fails where it always did, at signing
                self._key = RSAAlgorithm(RSAAlgorithm.SHA256).prepare_key(self._pem)
        return jwt.encode(claims, self._key, algorithm="RS256")  # type: ignore[arg-type]


class TokenCache:
    """Installation tokens per (installation, repository, permissions), reused until 5 minutes
    before expiry; one mint at a time per key, so concurrent jobs share a token."""

    def __init__(self, app_id: int | str, private_key: str, http: Http) -> None:
        self.app_auth = Auth.AppAuth(app_id, sign_func=_Signer(private_key))
        self.http = http
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[object, ...], threading.Lock] = {}
        self._tokens: dict[tuple[object, ...], InstallationToken] = {}
        _caches.add(self)

    def jwt(self) -> str:
        """A fresh App JWT (PyGithub signs it: iat 60 s back, 5 minutes valid)."""
        return self.app_auth.create_jwt()

    def get(
        self,
        installation_id: int,
        repository: str | int | None = None,
        permissions: Mapping[str, str] | None = None,
        owner: str | None = None,
    ) -> InstallationToken:
        """A token for ``installation_id``; ``repository`` (``owner/name``, ``name`` or numeric id)
        limits it to that repository, ``permissions`` down-scopes it; ``owner`` (a job, see
        :func:`job_tokens`) keeps it from every other job."""
        perms = tuple(sorted((permissions or {}).items()))
        key = (installation_id, repository, perms, owner)
        with self._lock:
            tok = self._tokens.get(key)
            if tok is not None and tok.fresh():
                return tok
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                tok = self._tokens.get(key)
                if tok is not None and tok.fresh():
                    return tok
            tok = self._mint(installation_id, repository, perms)
            with self._lock:
                self._tokens[key] = tok
            return tok

    def _mint(
        self, installation_id: int, repository: str | int | None, perms: tuple[tuple[str, str], ...]
    ) -> InstallationToken:
        body: dict[str, object] = {}
        if isinstance(repository, int):
            body["repository_ids"] = [repository]
        elif repository:
            body["repositories"] = [repository.rsplit("/", 1)[-1]]
        if perms:
            body["permissions"] = dict(perms)
        data = self.http.request_json(
            "POST",
            f"/app/installations/{installation_id}/access_tokens",
            auth=f"Bearer {self.jwt()}",
            json=body,
            installation_id=installation_id,
        )
        expires = datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00")).timestamp()
        name = None if repository is None else str(repository)
        return InstallationToken(str(data["token"]), expires, installation_id, name, perms)

    def revoke(self, token: InstallationToken) -> None:
        """Revoke ``token`` at GitHub (DELETE /installation/token) and forget it."""
        with self._lock:
            for key, tok in list(self._tokens.items()):
                if tok.token == token.token:
                    del self._tokens[key]
        self.http.request("DELETE", "/installation/token", auth=f"token {token.token}")

    def release(self, owner: str) -> int:
        """Revoke and forget every token of ``owner``; how many were revoked."""
        with self._lock:
            mine = [k for k in self._tokens if k[-1] == owner]
            tokens = [self._tokens.pop(k) for k in mine]
            for k in mine:
                self._key_locks.pop(k, None)
        done = 0
        for tok in tokens:
            if tok.expires_at <= time.time() + 5:
                continue  # expired (or about to): GitHub would refuse the DELETE
            try:
                self.http.request("DELETE", "/installation/token", auth=f"token {tok.token}")
                done += 1
            except Exception as exc:  # noqa: BLE001 - see job_tokens
                log.warning("could not revoke a token of installation %s: %s", tok.installation_id, exc)
        return done

    def forget_all(self) -> None:
        with self._lock:
            self._tokens.clear()
