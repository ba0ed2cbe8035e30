"""Network guard: repository authors choose the hosts we contact, so every connection is checked
at socket level (security.md §1.6).

A name is resolved once; if *any* answer is loopback, private, link-local, metadata, multicast or
reserved (IPv4 embedded in IPv6 unwrapped), the whole name is refused; otherwise the socket goes
to the checked address, while httpcore keeps SNI and certificate checks on the name. Checking URLs
as strings is not enough (``2130706433``, ``127.1`` and DNS rebinding all pass such checks).
Origins the operator configured are trusted, and so are addresses inside ``network.allow``; an
origin marked with :meth:`GuardedBackend.trust_in_range` (chart repositories on another port or
plain http) is contacted only when every address its name resolves to lies inside those ranges.

Every socket operation (resolve, connect, TLS handshake, each read and write) is also bounded by
the calling thread's deadline (:meth:`GuardedBackend.deadline`): httpx's timeouts are per
operation, so a peer dripping one header byte at a time, or a resolver that takes minutes, would
otherwise hold a request for as long as it likes.
"""

from __future__ import annotations

import concurrent.futures
import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = frozenset({443})

_V4_BLOCKED = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT; Alibaba's metadata service lives at 100.100.100.200
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local; AWS/GCP/Azure metadata at 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
    )
)
_V6_BLOCKED = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",
        "::1/128",
        "::/96",  # IPv4-compatible
        "::ffff:0:0/96",  # IPv4-mapped
        "64:ff9b::/96",  # NAT64
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",  # includes Teredo 2001::/32
        "2001:db8::/32",
        "2002::/16",  # 6to4
        "fc00::/7",  # unique local; AWS metadata at fd00:ec2::254
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V4_COMPAT = ipaddress.IPv6Network("::/96")


class EgressDenied(Exception):
    """The guard refused a connection; the message never says whether the target was listening."""


def embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, compatible, 6to4, Teredo, NAT64)."""
    out: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        out.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip.teredo is not None:
        out.extend(ip.teredo)
    if ip in _NAT64 or ip in _V4_COMPAT:
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def ip_is_forbidden(ip: IPAddress, allow: Iterable[Network] = ()) -> bool:
    """True when a repository-named host must not reach ``ip``.

    Explicit CIDR lists first (CPython's ``is_global`` was wrong for several ranges before
    3.11.10, CVE-2024-4032), then ``is_global`` and friends as a catch-all.
    """
    allow = tuple(allow)
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        candidates += embedded_v4(ip)
    if any(c.version == n.version and c in n for c in candidates for n in allow):
        return False
    for c in candidates:
        blocked = _V4_BLOCKED if isinstance(c, ipaddress.IPv4Address) else _V6_BLOCKED
        if any(c in n for n in blocked):
            return True
        if not c.is_global or c.is_multicast or c.is_reserved or c.is_link_local or c.is_loopback:
            return True
    return False


def ip_in_ranges(ip: IPAddress, allow: Iterable[Network]) -> bool:
    """Whether ``ip`` lies inside one of the operator's ``network.allow`` ranges."""
    return any(ip.version == n.version and ip in n for n in allow)


def _origin(host: str, port: int) -> tuple[str, int]:
    return (host.strip("[]").lower(), port)


# getaddrinfo has no timeout: it runs here, and the caller stops waiting at its deadline. Few
# threads: a resolver that hangs for everyone makes lookups wait (and time out), never pile up.
_RESOLVER = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="pullable-dns")


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every operation ends by the deadline of the thread using it (a pooled
    connection serves many requests, each with its own deadline)."""

    def __init__(self, inner: httpcore.NetworkStream, backend: GuardedBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._backend.budget(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.budget(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # CPython bounds the whole handshake by one timeout (not each read): a drip cannot stretch it
        budget = self._backend.budget(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, budget), self._backend)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """httpcore network backend that resolves once, checks every answer and connects to it."""

    def __init__(self, allow: Iterable[Network] = (), ports: frozenset[int] = DEFAULT_PORTS) -> None:
        self.allow = tuple(allow)
        self.ports = ports
        self._trusted: dict[tuple[str, int], str] = {}
        self._in_range: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    @contextmanager
    def deadline(self, at: float) -> Iterator[None]:
        """Bound every network operation of this thread by ``at`` (``time.monotonic``) while
        inside; nested deadlines keep the earliest."""
        previous: float | None = getattr(self._local, "at", None)
        self._local.at = at if previous is None else min(previous, at)
        try:
            yield
        finally:
            self._local.at = previous

    def budget(self, timeout: float | None, expired: type[Exception]) -> float | None:
        """``timeout`` shortened to what is left of this thread's deadline; raises ``expired``
        when nothing is."""
        at: float | None = getattr(self._local, "at", None)
        if at is None:
            return timeout
        left = at - time.monotonic()
        if left <= 0:
            raise expired("deadline exceeded")
        return left if timeout is None else min(timeout, left)

    def resolve(self, host: str, port: int, timeout: float | None) -> list[str]:
        """The addresses of ``host``, within the deadline (an IP literal is its own answer)."""
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        wait = self.budget(timeout, httpcore.ConnectTimeout)
        future = _RESOLVER.submit(
            socket.getaddrinfo, host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        try:
            infos = future.result(timeout=wait)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise httpcore.ConnectTimeout(f"resolving {host} took too long") from None
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}") from exc
        return [str(sockaddr[0]).split("%", 1)[0] for *_, sockaddr in infos]

    def trust(self, scheme: str, host: str, port: int) -> None:
        """Mark an operator-configured origin: any port, no address check, its scheme only."""
        with self._lock:
            self._trusted[_origin(host, port)] = scheme

    def trust_in_range(self, scheme: str, host: str, port: int) -> None:
        """Let an origin use ``scheme`` and any port *provided* every address its name resolves
        to lies inside ``network.allow`` (checked at connect time, on the one resolution that is
        connected to): the operator trusts those ranges, whatever name a repository uses."""
        with self._lock:
            self._in_range[_origin(host, port)] = scheme

    def trusted_scheme(self, host: str, port: int) -> str | None:
        """The scheme the operator configured (or allowed by range) for this host and port."""
        o = _origin(host, port)
        return self._trusted.get(o) or self._in_range.get(o)

    def is_trusted(self, host: str, port: int) -> bool:
        """Whether the operator configured this exact host and port."""
        return _origin(host, port) in self._trusted

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Refuse, or connect to an address that was checked (never resolve twice)."""
        trusted = self.is_trusted(host, port)
        in_range = not trusted and _origin(host, port) in self._in_range
        if not trusted and port not in self.ports and not in_range:
            raise EgressDenied(f"port {port} is not allowed for {host}")
        ips: list[str] = []
        for answer in self.resolve(host, port, timeout):
            ip = ipaddress.ip_address(answer)
            if not trusted and ip_is_forbidden(ip, self.allow):
                raise EgressDenied(f"{host} resolves to an address Pullable will not contact")
            if in_range and not ip_in_ranges(ip, self.allow):
                raise EgressDenied(f"{host} resolves outside network.allow (port {port})")
            ips.append(str(ip))
        if not ips:
            raise httpcore.ConnectError(f"cannot resolve {host}")
        last: Exception | None = None
        for addr in dict.fromkeys(ips):
            try:
                stream = super().connect_tcp(
                    addr,
                    port,
                    self.budget(timeout, httpcore.ConnectTimeout),
                    local_address,
                    socket_options,
                )
            except httpcore.ConnectError as exc:  # try the next checked address
                last = exc
                continue
            return _DeadlineStream(stream, self)
        assert last is not None
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Never: a registry is a TCP host."""
        raise EgressDenied("unix sockets are not allowed")


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying context per process: loading the CA bundle costs ~100 ms each time."""
    return httpx.create_ssl_context()


def guarded_transport(
    backend: GuardedBackend, *, max_connections: int = 64, verify: ssl.SSLContext | None = None
) -> httpx.HTTPTransport:
    """An httpx transport whose connection pool uses ``backend`` (no proxies, no HTTP/2).

    httpx has no hook for the network backend, so the pool it built is replaced by one with the
    same TLS context (relies on ``HTTPTransport._pool``; tests/registry/test_guard.py pins it).
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    transport = httpx.HTTPTransport(
        verify=verify or _ssl_context(), limits=limits, trust_env=False, retries=0
    )
    old = transport._pool
    transport._pool = httpcore.ConnectionPool(
        ssl_context=old._ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        retries=0,
        network_backend=backend,
    )
    return transport


def check_url(url: httpx.URL, backend: GuardedBackend) -> None:
    """URL-level rules the socket cannot see: https only, plain http only to trusted origins."""
    if url.userinfo:
        raise EgressDenied("credentials in URLs are not allowed")
    trusted = backend.trusted_scheme(url.host, url.port or (443 if url.scheme == "https" else 80))
    if trusted is not None and trusted != url.scheme:
        raise EgressDenied(f"{url.scheme} is not allowed for {url.host}")
    if url.scheme == "https" or trusted == "http":
        return
    raise EgressDenied(f"{url.scheme} is not allowed for {url.host}")
