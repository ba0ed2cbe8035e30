"""The OCI distribution protocol over one guarded, shared ``httpx.Client``.

Every response is untrusted: redirects are followed by hand (at most 3, each hop guarded,
credentials dropped as soon as the origin changes), bodies are streamed and capped both on the
wire and while being decoded (piece by piece: ``Content-Encoding: gzip, gzip`` turns 2 KB into
gigabytes), ``Link`` pages are followed only on the same origin, tags and digests are validated
before anyone sees them, and each reference and the whole job have deadlines that every socket
operation, DNS lookup included, obeys (httpx timeouts are per operation, so a server dripping
one byte at a time would otherwise hold us forever).

One client serves one scan, so it also bounds what a repository can make us do: requests per
registry host are capped, and a host that fails to answer (timeout, connection refused) is asked
no more for a while (a breaker), so a dead host costs one timeout, not one per reference.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from bot import __version__
from bot.reference import is_digest, is_tag
from bot.registry.auth import Challenge, TokenCache, parse_challenges, realm_may_receive
from bot.registry.config import DOCKER_HUB, Credentials, RegistryConfig
from bot.registry.guard import EgressDenied, GuardedBackend, check_url, guarded_transport

log = logging.getLogger(__name__)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# All four, always: without one, distribution answers 404 or silently serves another manifest.
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})

MANIFEST_CAP = 4 * 1024 * 1024
SMALL_CAP = 1024 * 1024  # token responses, tag pages, Hub API answers
MAX_REDIRECTS = 3
MAX_TAG_PAGES = 20
MAX_TAGS = 20_000
TAGS_PAGE_SIZE = 1000  # ECR refuses n > 1000
RETRY_AFTER_CAP_S = 10.0  # wait at most this long for one polite retry after a 429
DOCKER_HUB_API = "registry-1.docker.io"
HUB_REPOSITORY_API = "https://hub.docker.com/v2/repositories/{path}/"
USER_AGENT = f"pullable/{__version__} (+https://github.com/pullable)"
BREAKER_S = 60.0  # a host that failed to answer is not asked again for this long
BREAKER_FAILURES = 3  # ...after this many failures in a row once it has answered before (1 before)
_PIECE = 64 * 1024  # decoded bytes produced at a time
_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": 32 + zlib.MAX_WBITS}
MAX_ENCODINGS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_LINK_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*?\brel="?next"?', re.IGNORECASE)


class Blocked(Exception):
    """The guard or a protocol rule refused to contact a URL."""


class Unreachable(Exception):
    """DNS, connect, TLS, timeout, deadline or an oversized body."""

    def __init__(self, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.code = code


class Deadline:
    """A total time budget for everything one reference (or one job) needs."""

    def __init__(self, seconds: float, code: str = "DEADLINE", what: str = "deadline exceeded") -> None:
        self.at = time.monotonic() + seconds
        self.code, self.what = code, what

    def remaining(self) -> float:
        """Seconds left; raises when none are."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise Unreachable(self.what, self.code)
        return left


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a reference's domain is served and what may be sent there."""

    domain: str  # as in the reference: docker.io, ghcr.io, 127.0.0.1:5000
    base: httpx.URL  # the /v2/ API lives at base + "/v2/"
    credentials: Credentials | None
    configured: bool  # an operator-configured endpoint: trusted
    hub: bool  # Docker Hub itself (not a mirror): rate-limit headers, 401-for-missing

    def url(self, path: str, params: dict[str, str] | None = None) -> httpx.URL:
        """An API URL below the base (which may carry a path prefix)."""
        url = httpx.URL(str(self.base).rstrip("/") + path)
        return url.copy_merge_params(params) if params else url


@dataclass(frozen=True, slots=True)
class Reply:
    """A finished exchange. ``auth`` says how we authenticated: ``none``, ``anonymous`` (an
    anonymous token), ``credentials`` (accepted by the token server or sent as Basic),
    ``rejected`` (configured credentials refused) or ``refused`` (no anonymous token)."""

    status: int
    headers: httpx.Headers
    body: bytes
    url: httpx.URL
    auth: str = "none"
    retried: bool = False

    def error_code(self) -> str | None:
        """The first registry error code in a JSON error body (HEAD replies have none)."""
        try:
            errors = json.loads(self.body)["errors"]
            code = errors[0]["code"]
        except (ValueError, KeyError, IndexError, TypeError):
            return None
        return code if isinstance(code, str) and re.fullmatch(r"[A-Z_]{1,64}", code) else None

    def digest(self) -> str | None:
        """``Docker-Content-Digest`` if it is a well-formed sha256 digest."""
        value = self.headers.get("docker-content-digest", "").strip()
        return value if is_digest(value) else None

    def media_type(self) -> str | None:
        """The Content-Type without parameters, if it looks like a media type."""
        value = self.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        return value if re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", value) else None


def origin(url: httpx.URL) -> tuple[str, str, int]:
    """scheme, host, port with the default port filled in."""
    return (url.scheme, url.host.lower(), url.port or (443 if url.scheme == "https" else 80))


class Client:
    """Thread-safe protocol client: one pool, per-host concurrency limit, token cache."""

    def __init__(
        self,
        config: RegistryConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        per_host: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.backend = GuardedBackend(config.allow)
        for host in config.registries.values():
            if host.endpoint:
                u = httpx.URL(host.endpoint)
                self.backend.trust(*origin(u))
        self.http = httpx.Client(
            transport=transport or guarded_transport(self.backend, max_connections=4 * per_host),
            trust_env=False,
            follow_redirects=False,
            timeout=config.timeout_s,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )
        self.tokens = TokenCache()
        self.sleep = sleep
        self.per_host = per_host
        self.counts: Counter[str] = Counter()  # requests sent, by host (benchmarks, tests)
        self.job = Deadline(
            config.job_timeout_s,
            "JOB_DEADLINE",
            f"not asked: this scan used up its {config.job_timeout_s:g} s for registry requests",
        )
        self._challenges: dict[tuple[str, str, int], Challenge] = {}
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._probes: dict[str, threading.Lock] = {}
        self._answered: set[str] = set()  # hosts that have answered at least once
        self._failures: dict[str, tuple[int, float, str]] = {}  # host -> (in a row, open until, why)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the pool."""
        self.http.close()

    # -- endpoints ------------------------------------------------------------------------------

    def endpoint(self, domain: str) -> Endpoint:
        """Where ``domain``'s API is served: a configured endpoint, Docker Hub, or https://domain."""
        host = self.config.host(domain)
        creds = host.credentials if host else None
        if host and host.endpoint:
            return Endpoint(domain, httpx.URL(host.endpoint), creds, True, False)
        if domain == DOCKER_HUB:
            return Endpoint(domain, httpx.URL(f"https://{DOCKER_HUB_API}"), creds, False, True)
        try:
            base = httpx.URL(f"https://{domain}")
        except httpx.InvalidURL as exc:
            raise Blocked(f"{domain} is not a usable host") from exc
        return Endpoint(domain, base, creds, False, False)

    # -- the protocol ---------------------------------------------------------------------------

    def manifest(
        self,
        ep: Endpoint,
        path: str,
        ref: str,
        method: str,
        deadline: Deadline,
        *,
        if_none_match: str | None = None,
    ) -> Reply:
        """HEAD or GET a manifest by tag or digest, with the four-type Accept header (and a
        conditional ``If-None-Match``: a 304 reply means the cached answer still holds)."""
        if not (is_tag(ref) or is_digest(ref)):
            raise Blocked(f"{ref!r} is neither a tag nor a sha256 digest")
        url = ep.url(f"/v2/{path}/manifests/{ref}")
        extra = {"If-None-Match": if_none_match} if if_none_match else None
        return self.request(
            ep, method, url, path, deadline, accept=MANIFEST_ACCEPT, cap=MANIFEST_CAP, headers=extra
        )

    def tags(
        self, ep: Endpoint, path: str, deadline: Deadline, *, if_none_match: str | None = None
    ) -> tuple[list[str], Reply | None, int]:
        """Every valid tag over all pages (same-origin ``Link`` only, page and tag caps), the last
        reply and the number of pages. ``if_none_match`` makes the first page conditional: a 304
        comes back as the reply, with no tags."""
        url: httpx.URL | None = ep.url(f"/v2/{path}/tags/list", {"n": str(TAGS_PAGE_SIZE)})
        seen: dict[str, None] = {}
        reply: Reply | None = None
        pages = 0
        while url is not None and pages < MAX_TAG_PAGES and len(seen) < MAX_TAGS:
            extra = {"If-None-Match": if_none_match} if if_none_match and not pages else None
            reply = self.request(
                ep, "GET", url, path, deadline, accept="application/json", cap=SMALL_CAP, headers=extra
            )
            pages += 1
            if reply.status != 200:
                break
            try:
                listed = json.loads(reply.body).get("tags") or []
            except (ValueError, AttributeError):
                break
            if not isinstance(listed, list):
                break
            for tag in listed:
                if isinstance(tag, str) and is_tag(tag) and len(seen) < MAX_TAGS:
                    seen[tag] = None
            url = self._next_page(url, reply.headers.get("link", ""))
        return list(seen), reply, pages

    def hub_repository(self, path: str, deadline: Deadline) -> int | None:
        """Status of Docker Hub's public repository API for ``path`` (no credentials sent)."""
        url = httpx.URL(HUB_REPOSITORY_API.format(path=path))
        try:
            status, _, _, _ = self._send(
                "GET", url, {"Accept": "application/json"}, auth_origin=None, deadline=deadline, cap=SMALL_CAP
            )
        except (Blocked, Unreachable):
            return None
        return status

    @staticmethod
    def _next_page(current: httpx.URL, link: str) -> httpx.URL | None:
        m = _LINK_NEXT.search(link)
        if m is None:
            return None
        try:
            nxt = current.join(m.group(1))
        except httpx.InvalidURL:
            return None
        if origin(nxt) != origin(current):
            log.warning("ignoring a tag page on another origin (%s)", nxt.host)
            return None
        return nxt

    def request(
        self,
        ep: Endpoint,
        method: str,
        url: httpx.URL,
        path: str,
        deadline: Deadline,
        *,
        accept: str,
        cap: int,
        headers: dict[str, str] | None = None,
        sink: Callable[[bytes], None] | None = None,
    ) -> Reply:
        """One registry request with the auth dance and one polite retry after a 429. With
        ``sink``, a 200 reply's decoded body goes to it piece by piece (same caps and deadlines)
        instead of into ``Reply.body``, which is then empty: for bodies too large to hold."""
        reply = self._authorised(
            ep, method, url, path, deadline=deadline, accept=accept, cap=cap, extra=headers, sink=sink
        )
        if reply.status == 429:
            wait = _retry_after(reply.headers.get("retry-after"))
            if wait is not None and wait <= min(RETRY_AFTER_CAP_S, deadline.remaining()):
                self.sleep(wait)
                again = self._authorised(
                    ep, method, url, path, deadline=deadline, accept=accept, cap=cap, extra=headers, sink=sink
                )
                return Reply(again.status, again.headers, again.body, again.url, again.auth, True)
        return reply

    def _authorised(
        self,
        ep: Endpoint,
        method: str,
        url: httpx.URL,
        path: str,
        *,
        deadline: Deadline,
        accept: str,
        cap: int,
        extra: dict[str, str] | None = None,
        sink: Callable[[bytes], None] | None = None,
    ) -> Reply:
        scope = f"repository:{path}:pull"
        headers = {"Accept": accept, **(extra or {})}
        api = origin(ep.base)
        known = self._challenges.get(api)
        state = "none"
        if known is not None:  # skip the 401 round trip once we know how this host authenticates
            auth, state = self._authorization(ep, known, scope, deadline, cached_only=False)
            if auth:
                headers["Authorization"] = auth
        status, rh, body, final = self._send(
            method, url, headers, auth_origin=api, deadline=deadline, cap=cap, sink=sink
        )
        if status != 401:
            return Reply(status, rh, body, final, state)
        challenges = parse_challenges(", ".join(rh.get_list("www-authenticate")))
        chosen = next((c for c in challenges if c.scheme == "bearer" and c.params.get("realm")), None)
        if chosen is None:
            chosen = next((c for c in challenges if c.scheme == "basic"), None)
        if chosen is None:
            return Reply(status, rh, body, final, state)
        if chosen.scheme == "basic" and headers.get("Authorization", "").startswith("Basic "):
            return Reply(status, rh, body, final, "rejected")  # our Basic credentials were refused
        with self._lock:
            self._challenges[api] = chosen
        if headers.get("Authorization", "").startswith("Bearer "):
            if chosen.params.get("error") != "invalid_token":
                return Reply(status, rh, body, final, state)  # a valid token, and still no: final
            self.tokens.drop(self._token_key(ep, chosen, scope))  # expired or revoked: ask once more
        auth, state = self._authorization(ep, chosen, scope, deadline, cached_only=False)
        if auth is None:
            return Reply(status, rh, body, final, state)
        headers["Authorization"] = auth
        status, rh, body, final = self._send(
            method, url, headers, auth_origin=api, deadline=deadline, cap=cap, sink=sink
        )
        if status == 401 and chosen.scheme == "basic":
            state = "rejected"
        return Reply(status, rh, body, final, state)

    def _token_key(self, ep: Endpoint, ch: Challenge, scope: str) -> tuple[str, str, str, str]:
        creds = self._realm_credentials(ep, ch)
        return (
            ch.params.get("realm", ""),
            ch.params.get("service", ""),
            scope,
            creds.username if creds else "",
        )

    def _realm_credentials(self, ep: Endpoint, ch: Challenge) -> Credentials | None:
        if ep.credentials is None:
            return None
        try:
            realm = httpx.URL(ch.params.get("realm", ""))
        except httpx.InvalidURL:
            return None
        if not _realm_is_ours(ep, realm) and realm.scheme != "https":
            return None  # never onto plain http the operator did not choose
        trusted = ep.base.host if ep.configured else None
        return ep.credentials if realm_may_receive(ep.base.host, realm.host, trusted) else None

    def _authorization(
        self, ep: Endpoint, ch: Challenge, scope: str, deadline: Deadline, *, cached_only: bool
    ) -> tuple[str | None, str]:
        """An Authorization value for ``ch`` and how we got it (see :class:`Reply`)."""
        if ch.scheme == "basic":
            if ep.credentials is None:
                return None, "none"
            raw = f"{ep.credentials.username}:{ep.credentials.password}".encode()
            return "Basic " + base64.b64encode(raw).decode(), "credentials"
        key = self._token_key(ep, ch, scope)
        creds = self._realm_credentials(ep, ch)
        kind = "credentials" if creds else "anonymous"
        token = self.tokens.get(key)
        if token is not None:
            return f"Bearer {token}", kind
        if cached_only:
            return None, "none"
        try:
            realm = httpx.URL(ch.params["realm"])
        except httpx.InvalidURL as exc:
            raise Blocked("the token realm is not a URL") from exc
        if _realm_is_ours(ep, realm):  # the operator's host runs its token server
            self.backend.trust(*origin(realm))
        params = {"scope": scope}
        if ch.params.get("service"):
            params["service"] = ch.params["service"]
        headers = {"Accept": "application/json"}
        if creds is not None:
            raw = f"{creds.username}:{creds.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        status, _, body, _ = self._send(
            "GET",
            realm.copy_merge_params(params),
            headers,
            auth_origin=origin(realm),
            deadline=deadline,
            cap=SMALL_CAP,
        )
        if status in (401, 403):
            return None, "rejected" if creds else "refused"
        if status != 200:
            return None, "refused"
        try:
            data = json.loads(body)
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            return None, "refused"
        if not isinstance(token, str) or not re.fullmatch(r"[A-Za-z0-9._~+/=-]{1,16384}", token):
            return None, "refused"
        self.tokens.put(key, token, data.get("expires_in"))
        return f"Bearer {token}", kind

    # -- one exchange, redirects by hand ---------------------------------------------------------

    def _send(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        *,
        auth_origin: tuple[str, str, int] | None,
        deadline: Deadline,
        cap: int,
        sink: Callable[[bytes], None] | None = None,
    ) -> tuple[int, httpx.Headers, bytes, httpx.URL]:
        headers = dict(headers)
        for _hop in range(MAX_REDIRECTS + 1):
            if origin(url) != auth_origin:
                headers.pop("Authorization", None)  # never again, even if a later hop comes back
                auth_origin = None
            host = url.netloc.decode("ascii", "replace").lower()
            try:
                check_url(url, self.backend)
                with self._slot(host, deadline):
                    self._admit(host, url.host)
                    at = min(deadline.at, self.job.at)
                    timeout = min(self.config.timeout_s, self._left(deadline))
                    request = self.http.build_request(method, url, headers=headers, timeout=timeout)
                    self.counts[url.host] += 1
                    with self.backend.deadline(at):
                        response = self.http.send(request, stream=True)
                        try:
                            location = response.headers.get("location")
                            self._answered_by(host)
                            if response.status_code in _REDIRECTS and location:
                                nxt = url.join(location)
                                if url.scheme == "https" and nxt.scheme != "https":
                                    raise Blocked("a redirect to plain http")
                                url = nxt
                                continue
                            if method == "HEAD":
                                response.read()  # empty; lets h11 finish so the connection is reused
                                body = b""
                            elif sink is not None and response.status_code == 200:
                                for piece in _pieces(response, cap, deadline, self.job):
                                    sink(piece)
                                body = b""
                            else:
                                body = _read(response, cap, deadline, self.job)
                            return response.status_code, response.headers, body, url
                        finally:
                            response.close()
            except EgressDenied as exc:
                raise Blocked(str(exc)) from None
            except httpx.TimeoutException:
                self._failed(host, "timeout")
                log.info("timeout talking to %s", host)
                self._left(deadline)  # the deadline, when that is what ended it
                raise Unreachable("timeout talking to the registry", "TIMEOUT") from None
            except httpx.InvalidURL:
                raise Blocked("an invalid URL") from None
            except httpx.HTTPError as exc:
                self._failed(host, type(exc).__name__)
                log.info("cannot reach %s: %s", host, type(exc).__name__)
                # the host may be the operator's own mirror: findings reach PR bodies, logs do not
                raise Unreachable(f"cannot reach the registry ({type(exc).__name__})", "CONNECT") from None
        raise Blocked(f"more than {MAX_REDIRECTS} redirects")

    def _left(self, deadline: Deadline) -> float:
        """Seconds left for this reference within the job (raises when none are)."""
        return min(self.job.remaining(), deadline.remaining())

    def _admit(self, host: str, name: str) -> None:
        """Refuse a request the per-host cap or an open breaker rules out (under the host slot).
        ``host`` is host[:port] (the breaker's unit), ``name`` the host name (the cap's)."""
        with self._lock:
            failure = self._failures.get(host)
            if failure is not None and failure[1] > time.monotonic():
                raise Unreachable(
                    f"not asked: the registry did not answer earlier in this scan ({failure[2]})",
                    "HOST_DOWN",
                )
            if self.counts[name] >= self.config.max_requests_per_host:
                raise Unreachable(
                    f"not asked: this scan reached its cap of {self.config.max_requests_per_host} "
                    "requests to this registry (network.max_requests_per_host)",
                    "HOST_CAP",
                )

    def _answered_by(self, host: str) -> None:
        with self._lock:
            self._answered.add(host)
            self._failures.pop(host, None)

    def _failed(self, host: str, why: str) -> None:
        """Count a failure to answer; open the breaker at once for a host that never answered."""
        with self._lock:
            row = self._failures.get(host, (0, 0.0, why))[0] + 1
            limit = BREAKER_FAILURES if host in self._answered else 1
            until = time.monotonic() + BREAKER_S if row >= limit else 0.0
            self._failures[host] = (row, until, why)

    @contextmanager
    def _slot(self, host: str, deadline: Deadline) -> Iterator[None]:
        """At most ``per_host`` requests in flight per host; until a host has answered once, only
        one (so a dead host is found out by one request, not by a wave of them)."""
        with self._lock:
            slot = self._slots.setdefault(host, threading.BoundedSemaphore(self.per_host))
            probe = self._probes.setdefault(host, threading.Lock())
        held = None
        if host not in self._answered:
            if not probe.acquire(timeout=self._left(deadline)):
                self._left(deadline)
                raise Unreachable("timeout waiting to talk to the registry", "TIMEOUT")
            held = probe
            if host in self._answered:  # it answered someone while we waited: go in parallel
                probe.release()
                held = None
        try:
            if not slot.acquire(timeout=self._left(deadline)):
                self._left(deadline)
                raise Unreachable("timeout waiting to talk to the registry", "TIMEOUT")
            try:
                yield
            finally:
                slot.release()
        finally:
            if held is not None:
                held.release()


def _realm_is_ours(ep: Endpoint, realm: httpx.URL) -> bool:
    """Whether a token realm belongs to the operator's configured endpoint: its host, over
    https, or over plain http only when the operator configured that host as plain http."""
    if not ep.configured or realm.host != ep.base.host:
        return False
    return realm.scheme == "https" or (realm.scheme == "http" and ep.base.scheme == "http")


def _read(response: httpx.Response, cap: int, deadline: Deadline, job: Deadline) -> bytes:
    """The decoded body, whole (see :func:`_pieces`)."""
    return b"".join(_pieces(response, cap, deadline, job))


def _pieces(response: httpx.Response, cap: int, deadline: Deadline, job: Deadline) -> Iterator[bytes]:
    """The decoded body piece by piece, refused past ``cap`` bytes on the wire or decoded, or
    past a deadline: a reader that keeps only what it needs (a Helm repository's index) never
    holds the whole body.

    We decode ourselves (httpx would inflate a whole network read at once, before any check):
    each ``Content-Encoding`` layer yields at most 64 KiB at a time, and we count as we go.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise Unreachable(f"response larger than {cap} bytes", "TOO_LARGE")
    if response.is_stream_consumed:  # built in memory (httpx.MockTransport): httpx decoded it
        if len(response.content) > cap:
            raise Unreachable(f"response larger than {cap} bytes", "TOO_LARGE")
        yield response.content
        return
    names = [
        n.strip().lower()
        for value in response.headers.get_list("content-encoding")
        for n in value.split(",")
        if n.strip() and n.strip().lower() != "identity"
    ]
    if len(names) > MAX_ENCODINGS or any(n not in _ENCODINGS for n in names):
        shown = ", ".join(n[:20] for n in names[:4])
        raise Unreachable(f"unsupported response encoding ({shown})", "ENCODING")
    wire = 0

    def raw() -> Iterator[bytes]:
        nonlocal wire
        for chunk in response.iter_raw():
            wire += len(chunk)
            if wire > cap:
                raise Unreachable(f"response larger than {cap} bytes", "TOO_LARGE")
            job.remaining()
            deadline.remaining()
            yield chunk

    pieces: Iterator[bytes] = raw()
    for name in reversed(names):  # the last encoding listed was applied last
        pieces = _inflate(pieces, _ENCODINGS[name])
    size = 0
    try:
        for piece in pieces:
            size += len(piece)
            if size > cap:
                raise Unreachable(f"response larger than {cap} bytes", "TOO_LARGE")
            yield piece
    except zlib.error:
        raise Unreachable("a response body that does not decode", "ENCODING") from None


def _inflate(chunks: Iterator[bytes], wbits: int) -> Iterator[bytes]:
    """One decoding layer, producing at most ``_PIECE`` bytes per step however small the input."""
    d = zlib.decompressobj(wbits)
    for chunk in chunks:
        data = chunk
        while data and not d.eof:
            out = d.decompress(data, _PIECE)
            data = d.unconsumed_tail
            if out:
                yield out
    while not d.eof:
        out = d.decompress(b"", _PIECE)  # output zlib still holds
        if not out:
            break
        yield out


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds only; dates are not worth a retry)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def sha256_digest(body: bytes) -> str:
    """The digest of the bytes we received, which is what gets written into files."""
    return "sha256:" + hashlib.sha256(body).hexdigest()
