"""Registry authentication: challenge parsing, the Bearer token cache, where credentials may go,
and the log redaction that keeps them out of every log line.

Credentials go only to the exact normalised registry host, and to its token realm only when the
realm is that host or a known pair (registry-1.docker.io -> auth.docker.io): Renovate sends them
to whatever realm a registry names, which hands them to any registry that asks.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from dataclasses import dataclass, field

# Registry API host -> token realm hosts that may receive its credentials.
KNOWN_REALMS: dict[str, frozenset[str]] = {
    "registry-1.docker.io": frozenset({"auth.docker.io"}),
    "registry.gitlab.com": frozenset({"gitlab.com"}),
    "quay.io": frozenset({"quay.io"}),
    "ghcr.io": frozenset({"ghcr.io"}),
    "public.ecr.aws": frozenset({"public.ecr.aws"}),
}
MIN_TOKEN_TTL = 60.0  # the token spec: expires_in "never less than 60"

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SPACE = re.compile(r"[\s,]*")


@dataclass(frozen=True, slots=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: scheme in lower case, parameter names in lower case."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges in a header, including several in one (``Bearer realm=..,Basic realm=..``)."""
    out: list[Challenge] = []
    i, n = 0, len(header)
    while i < n:
        i = _SPACE.match(header, i).end()  # type: ignore[union-attr]  # matches the empty string
        m = _TOKEN.match(header, i)
        if m is None:
            break
        name, j = m.group(), m.end()
        while j < n and header[j] in " \t":
            j += 1
        if j < n and header[j] == "=" and out:
            j += 1
            while j < n and header[j] in " \t":
                j += 1
            value, j = _value(header, j)
            out[-1].params.setdefault(name.lower(), value)
            i = j
        else:
            out.append(Challenge(name.lower(), {}))
            i = j
    return out


def _value(header: str, i: int) -> tuple[str, int]:
    if i < len(header) and header[i] == '"':
        buf: list[str] = []
        i += 1
        while i < len(header) and header[i] != '"':
            if header[i] == "\\" and i + 1 < len(header):
                i += 1
            buf.append(header[i])
            i += 1
        return "".join(buf), i + 1
    m = _TOKEN.match(header, i)
    return (m.group(), m.end()) if m else ("", i)


def realm_may_receive(api_host: str, realm_host: str, trusted_host: str | None = None) -> bool:
    """Whether credentials for ``api_host`` may be sent to a token realm on ``realm_host``.

    ``trusted_host`` is the host of an operator-configured endpoint: its token server is trusted.
    """
    api_host, realm_host = api_host.lower(), realm_host.lower()
    if realm_host == api_host or (trusted_host is not None and realm_host == trusted_host.lower()):
        return True
    return realm_host in KNOWN_REALMS.get(api_host, frozenset())


class TokenCache:
    """Bearer tokens per (realm, service, scope, identity), kept for their ``expires_in``."""

    def __init__(self, clock: object = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str, str]) -> str | None:
        """A token still valid for at least a few seconds, or None."""
        with self._lock:
            hit = self._tokens.get(key)
            if hit is None:
                return None
            token, expires = hit
            if expires - 5 <= self._now():
                del self._tokens[key]
                return None
            return token

    def put(self, key: tuple[str, str, str, str], token: str, expires_in: object) -> None:
        """Store with the server's lifetime, never less than 60 s (missing -> 60 s)."""
        try:
            ttl = max(MIN_TOKEN_TTL, float(expires_in))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            ttl = MIN_TOKEN_TTL
        register_secret(token)
        with self._lock:
            self._tokens[key] = (token, self._now() + ttl)

    def drop(self, key: tuple[str, str, str, str]) -> None:
        """Forget a token the registry refused (revoked or expired early)."""
        with self._lock:
            self._tokens.pop(key, None)

    def _now(self) -> float:
        return float(self._clock())  # type: ignore[operator]


# --- log hygiene -------------------------------------------------------------------------------

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
_AUTH_WORDS = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s@]+@")
_installed: list[bool] = []  # set once the record factory is wrapped
REDACTED = "[redacted]"


def register_secret(secret: str, password: str | None = None) -> None:
    """Redact ``secret`` from every log record; with ``password``, also base64(user:password)."""
    values = [secret] if password is None else [base64.b64encode(f"{secret}:{password}".encode()).decode()]
    with _SECRETS_LOCK:
        _SECRETS.update(v for v in values if len(v) >= 4)
    install_log_hygiene()


def redact(text: str) -> str:
    """The text with registered secrets, Authorization values and URL userinfo removed."""
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    text = _AUTH_WORDS.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)


def install_log_hygiene() -> None:
    """Redact at record creation, so every logger and handler (caplog too) sees clean text, and
    quiet httpx/httpcore, which log full URLs at INFO."""
    if _installed:
        return
    _installed.append(True)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is the caller's bug, not ours to hide
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    logging.setLogRecordFactory(factory)
