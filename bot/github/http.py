"""HTTP to GitHub: the App's one client (token minting, conditional requests, every read and
write), its retry policy, and the last rate-limit figures seen.

It honours ``Retry-After`` and secondary rate limits, retries 502/503/504 with backoff, and gives up
(raise) rather than sleep past ``max_wait``: a job is retried later by the queue, which is cheaper
than a worker thread asleep for an hour. This client is GitHub's alone; registry calls have
their own (``bot.registry``), so neither can leak credentials to the other.
"""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from bot import __version__

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
USER_AGENT = f"pullable/{__version__}"
RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_ATTEMPTS = 5
MAX_WAIT = 900.0  # seconds; a longer wait (primary limit reset) is raised for the queue to handle
SECONDARY_WAIT = 60.0  # GitHub: "wait at least one minute" when no Retry-After is given

RateListener = Callable[[int | None, str, int], None]
_rate_lock = threading.Lock()
_rate: dict[tuple[int | None, str], int] = {}
RATE_LISTENERS: list[RateListener] = []
"""Called with (installation id or None, resource, remaining) on every response that carries
``X-RateLimit-Remaining`` (the metrics module subscribes here: bot.github never imports it)."""


def rate_limit_remaining(installation_id: int | None = None, resource: str = "core") -> int | None:
    """The last ``X-RateLimit-Remaining`` seen for an installation (None: the App itself)."""
    with _rate_lock:
        return _rate.get((installation_id, resource))


def rate_limits() -> dict[tuple[int | None, str], int]:
    """Every (installation, resource) -> remaining figure seen by this process."""
    with _rate_lock:
        return dict(_rate)


def record_rate(installation_id: int | None, headers: Mapping[str, str]) -> None:
    remaining = headers.get("X-RateLimit-Remaining") or headers.get("x-ratelimit-remaining")
    if remaining is None or not str(remaining).isdigit():
        return
    resource = headers.get("X-RateLimit-Resource") or headers.get("x-ratelimit-resource") or "core"
    with _rate_lock:
        _rate[(installation_id, resource)] = int(remaining)
    for listener in list(RATE_LISTENERS):
        try:
            listener(installation_id, resource, int(remaining))
        except Exception:  # a metrics hiccup must not fail a GitHub call
            log.exception("rate-limit listener failed")


class GitHubError(Exception):
    """A GitHub answer the caller has to handle (status, message, headers kept)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"GitHub answered {status}: {message}")
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class RateLimited(GitHubError):
    """GitHub asks for a longer pause than a job should sleep; ``wait`` says how long."""

    def __init__(
        self, status: int, message: str, wait: float, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, message, headers)
        self.wait = wait


def retry_after(status: int, headers: Mapping[str, str], body: str, now: float | None = None) -> float | None:
    """Seconds to wait before retrying, from GitHub's rate-limit rules; None if not retryable."""
    if status in (403, 429):
        value = headers.get("retry-after") or headers.get("Retry-After")
        if value:
            if value.strip().isdigit():
                return float(value)
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - (now or time.time()))
        if (headers.get("x-ratelimit-remaining") or headers.get("X-RateLimit-Remaining")) == "0":
            reset = headers.get("x-ratelimit-reset") or headers.get("X-RateLimit-Reset") or "0"
            return max(1.0, float(reset) - (now or time.time()) + 1)
        if "secondary rate limit" in body.lower() or status == 429:
            return SECONDARY_WAIT
        return None
    if status in RETRY_STATUSES:
        return 0.0  # backoff decides
    return None


class Http:
    """A GitHub REST client on httpx with retries, ETag revalidation and rate-limit recording."""

    def __init__(
        self,
        base_url: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = MAX_ATTEMPTS,
        max_wait: float = MAX_WAIT,
        backoff: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        etags: EtagStore | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.backoff = backoff
        self.etags = etags if etags is not None else EtagStore()
        self.client = httpx.Client(
            base_url=self.base_url,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": USER_AGENT,
            },
            timeout=httpx.Timeout(30.0, connect=10.0),
            transport=transport,
            follow_redirects=False,
        )
        self.calls = 0  # requests sent, retries and 304s included
        self.not_modified = 0

    def close(self) -> None:
        self.client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        auth: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        installation_id: int | None = None,
        retry_server_errors: bool = True,
    ) -> httpx.Response:
        """Send with retries; raise :class:`GitHubError` for any final status >= 400.
        ``retry_server_errors=False`` raises a 5xx at once: for a create GitHub cannot
        de-duplicate (an issue, a comment), whose 502 may hide a write that was applied, the
        caller looks before it sends again (:func:`bot.github.git.create_once`)."""
        hdrs = {"Authorization": auth, **(headers or {})}
        attempt = 0
        while True:
            attempt += 1
            self.calls += 1
            resp = self.client.request(method, path, json=json, params=params, headers=hdrs)
            record_rate(installation_id, resp.headers)
            if resp.status_code < 400:
                return resp
            wait = retry_after(resp.status_code, resp.headers, resp.text)
            if wait is None or attempt >= self.max_attempts:
                raise GitHubError(resp.status_code, _message(resp), resp.headers)
            if resp.status_code in RETRY_STATUSES and not retry_server_errors:
                raise GitHubError(resp.status_code, _message(resp), resp.headers)
            if resp.status_code in RETRY_STATUSES:
                wait = min(self.backoff * 2 ** (attempt - 1), 30.0)
            if wait > self.max_wait:
                raise RateLimited(resp.status_code, _message(resp), wait, resp.headers)
            log.info("GitHub %s on %s %s: retrying in %.0fs", resp.status_code, method, path, wait)
            self.sleep(wait)

    def request_json(self, method: str, path: str, **kw: Any) -> Any:
        return self.request(method, path, **kw).json()

    def get_json(
        self,
        path: str,
        *,
        auth: str,
        scope: str,
        params: Mapping[str, str] | None = None,
        installation_id: int | None = None,
    ) -> Any:
        """GET revalidated with the stored ETag: an unchanged answer is a 304, which costs no rate
        limit. ``scope`` keys the stored answers (the repository), never the token itself."""
        key = f"{scope} {path}?{'&'.join(f'{k}={v}' for k, v in sorted((params or {}).items()))}"
        cached = self.etags.get(key)
        headers = {"If-None-Match": cached[0]} if cached else None
        resp = self.request(
            "GET", path, auth=auth, params=params, headers=headers, installation_id=installation_id
        )
        if resp.status_code == 304 and cached is not None:
            self.not_modified += 1
            return json.loads(cached[1])
        etag = resp.headers.get("ETag")
        if etag:
            self.etags.put(key, etag, resp.text)
        return resp.json()


def _message(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("message", resp.reason_phrase))[:500]
    except (ValueError, AttributeError):
        return resp.reason_phrase


class EtagStore:
    """ETag -> body of GET answers; in memory, bounded (the persistent one is in ``store``)."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._items: dict[str, tuple[str, str]] = {}

    def get(self, key: str) -> tuple[str, str] | None:
        with self._lock:
            return self._items.get(key)

    def put(self, key: str, etag: str, body: str) -> None:
        with self._lock:
            self._items.pop(key, None)
            self._items[key] = (etag, body)
            while len(self._items) > self.limit:
                self._items.pop(next(iter(self._items)))
