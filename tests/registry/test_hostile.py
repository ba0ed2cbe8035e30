"""Registries that fight back (issue 11): compression bombs, peers that drip header bytes or
resolve slowly, dead hosts, scans naming far too many images, and token realms that would pull
credentials onto plain HTTP. Loopback servers speak raw HTTP/1.1 so the test controls every byte."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable

import httpx
import pytest

from bot.model import Status
from bot.registry import MemoryStore, Registry, RegistryConfig
from bot.registry import client as client_mod

DIGEST = "sha256:" + "ab" * 32


class RawServer:
    """A loopback TCP server; ``handle(conn, request_head)`` answers each request as it likes."""

    def __init__(self, handle: Callable[[socket.socket, bytes], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.handle = handle
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while not self.closed.is_set():
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                self.requests.append(head)
                self.handle(conn, head)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


def answer(conn: socket.socket, status: int, headers: dict[str, str] | None = None, body: bytes = b"",
           head: bool = False) -> None:  # fmt: skip
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body)}")
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else body))


def is_head(request: bytes) -> bool:
    return request.startswith(b"HEAD ")


def configured(server: RawServer, **network: object) -> RegistryConfig:
    regs = {"r.test": {"endpoint": server.url}}
    return RegistryConfig.from_mapping({"registries": regs, "network": network})


@pytest.fixture
def servers():
    made: list[RawServer] = []

    def make(handle: Callable[[socket.socket, bytes], None]) -> RawServer:
        made.append(RawServer(handle))
        return made[-1]

    yield make
    for s in made:
        s.close()


# --- item 2: decompression bombs ----------------------------------------------------------------


def _gzip_zeros(size: int) -> bytes:
    """gzip of ``size`` zero bytes, built in pieces (never holding ``size`` bytes)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    piece = b"\0" * (1 << 20)
    out = [z.compress(piece) for _ in range(size >> 20)]
    return b"".join([*out, z.flush()])


def test_gzip_gzip_bomb_is_refused_while_streaming_with_memory_bounded(servers):
    """``Content-Encoding: gzip, gzip``: a few KB on the wire that decode to 256 MiB. The body is
    decoded piece by piece and refused past the cap; it never exists whole in memory."""
    bomb = gzip.compress(_gzip_zeros(256 << 20), 9)
    assert len(bomb) < 64 * 1024

    def handle(conn, request):
        if is_head(request):
            answer(conn, 200, head=True)  # no digest: the client must GET and hash
        else:
            answer(conn, 200, {"Content-Encoding": "gzip, gzip"}, bomb)

    server = servers(handle)
    with Registry(configured(server), store=MemoryStore()) as reg:
        tracemalloc.start()
        try:
            res = reg.check("r.test/x:1")
            digest = reg.pinned_digest("r.test/x:1")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert res.status is Status.UNREACHABLE
    assert res.evidence.error_code == "TOO_LARGE"
    assert digest is None
    assert peak < 3 * client_mod.MANIFEST_CAP, peak


def test_a_body_within_the_cap_is_decoded_through_every_layer(servers):
    manifest = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}'
    layered = gzip.compress(zlib.compress(manifest))

    def handle(conn, request):
        if is_head(request):
            answer(conn, 200, head=True)
        else:
            answer(conn, 200, {"Content-Encoding": "deflate, gzip"}, layered)

    server = servers(handle)
    with Registry(configured(server), store=MemoryStore()) as reg:
        assert reg.pinned_digest("r.test/x:1") == client_mod.sha256_digest(manifest)


def test_unknown_content_encodings_are_refused_not_guessed(servers):
    def handle(conn, request):
        if is_head(request):
            answer(conn, 200, head=True)
        else:
            answer(conn, 200, {"Content-Encoding": "br"}, b"\x0b\x02\x80{}\x03")

    server = servers(handle)
    with Registry(configured(server), store=MemoryStore()) as reg:
        res = reg.check("r.test/x:1")
    assert res.status is Status.UNREACHABLE
    assert "encoding" in (res.evidence.detail or "")


# --- item 3: deadlines that hold whatever the peer does ----------------------------------------


def test_header_drip_is_cut_at_the_reference_deadline(servers):
    """One header byte every 50 ms never trips a per-read timeout; the reference's deadline
    (3 x timeout_s) closes the exchange anyway."""

    def drip(conn, request):
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
        for _ in range(400):  # 20 s if nobody hangs up
            conn.sendall(b"a")
            time.sleep(0.05)

    server = servers(drip)
    with Registry(configured(server, timeout_s=0.3), store=MemoryStore()) as reg:
        started = time.monotonic()
        res = reg.check("r.test/x:1")
        took = time.monotonic() - started
    assert res.status is Status.UNREACHABLE
    assert res.evidence.error_code in {"DEADLINE", "TIMEOUT"}
    assert took < 5, took  # the deadline is 0.9 s; the drip would last 20 s


def test_slow_dns_is_inside_the_deadline(monkeypatch):
    real = socket.getaddrinfo

    def slow(host, *args, **kwargs):
        if host == "slow.example":
            time.sleep(4)
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    config = RegistryConfig.from_mapping({"network": {"timeout_s": 0.3}})
    with Registry(config, store=MemoryStore()) as reg:
        started = time.monotonic()
        res = reg.check("slow.example/x:1")
        took = time.monotonic() - started
    assert res.status is Status.UNREACHABLE
    assert res.evidence.error_code in {"DEADLINE", "TIMEOUT"}
    assert took < 3, took


def test_the_job_deadline_bounds_the_whole_scan(servers):
    """Each answer is slow but honest (0.3 s): no reference misses its own deadline, yet a scan of
    30 of them stops at the job's deadline and says so for the rest."""

    def slow(conn, request):
        time.sleep(0.3)
        answer(conn, 200, {"Docker-Content-Digest": DIGEST}, head=is_head(request))

    server = servers(slow)
    config = configured(server, timeout_s=2, job_timeout_s=1)
    with Registry(config, store=MemoryStore(), workers=1) as reg:
        started = time.monotonic()
        results = reg.check_many([f"r.test/x:{i}" for i in range(30)])
        took = time.monotonic() - started
    statuses = [r.status for r in results.values()]
    assert Status.OK in statuses
    late = [r for r in results.values() if r.status is not Status.OK]
    assert late
    assert all(r.evidence.error_code == "JOB_DEADLINE" for r in late)
    assert took < 4, took  # 9 s without a job deadline


# --- item 6: caps on work per scan, and a breaker per host -------------------------------------


def test_a_dead_host_costs_one_timeout_not_one_per_reference(servers):
    """A host that accepts and never answers: the first request times out, the other 19
    references are answered at once from the breaker, saying why."""

    def silent(conn, request):
        time.sleep(30)

    server = servers(silent)
    with Registry(configured(server, timeout_s=0.5), store=MemoryStore()) as reg:
        started = time.monotonic()
        results = reg.check_many([f"r.test/x:{i}" for i in range(20)])
        took = time.monotonic() - started
    assert all(r.status is Status.UNREACHABLE for r in results.values())
    assert len(server.requests) == 1
    codes = sorted(r.evidence.error_code or "" for r in results.values())
    assert codes.count("HOST_DOWN") == 19
    down = next(r for r in results.values() if r.evidence.error_code == "HOST_DOWN")
    assert "did not answer" in (down.evidence.detail or "")
    assert took < 5, took


def test_a_host_that_answered_is_not_cut_off_by_one_failure():
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        if calls["n"] == 2:
            raise httpx.ConnectError("one reset")
        return httpx.Response(200, headers={"Docker-Content-Digest": DIGEST})

    with Registry(store=MemoryStore(), transport=httpx.MockTransport(handler), workers=1) as reg:
        results = reg.check_many([f"quay.io/o/r:{i}" for i in range(5)])
    assert [r.status for r in results.values()].count(Status.OK) == 4


def test_references_per_scan_are_capped_and_the_rest_say_so():
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, headers={"Docker-Content-Digest": DIGEST})

    config = RegistryConfig.from_mapping({"network": {"max_references": 5}})
    with Registry(config, store=MemoryStore(), transport=httpx.MockTransport(handler)) as reg:
        results = reg.check_many([f"quay.io/o/r:{i}" for i in range(12)])
    checked = [r for r in results.values() if r.status is Status.OK]
    capped = [r for r in results.values() if r.status is Status.UNCHECKED]
    assert len(checked) == 5 and len(capped) == 7
    assert len(seen) == 5
    assert all("5 references" in (r.evidence.detail or "") for r in capped)
    assert all(r.evidence.error_code == "SCAN_CAP" for r in capped)


def test_requests_per_registry_host_are_capped():
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(404)  # manifest 404 -> a tag-list probe: two requests each

    config = RegistryConfig.from_mapping({"network": {"max_requests_per_host": 7}})
    with Registry(config, store=MemoryStore(), transport=httpx.MockTransport(handler), workers=1) as reg:
        results = reg.check_many([f"quay.io/o/r:{i}" for i in range(10)])
        others = reg.check("ghcr.io/o/r:1")  # another host has its own budget
    assert len([r for r in seen if r.url.host == "quay.io"]) == 7
    capped = [r for r in results.values() if r.evidence.error_code == "HOST_CAP"]
    assert capped
    assert all("7 requests" in (r.evidence.detail or "") for r in capped)
    assert others.status is Status.REPO_MISSING


# --- item 8: no credentials onto plain HTTP, no trust for what a registry names -----------------


def test_http_realm_for_an_https_registry_gets_no_credentials_and_is_not_trusted():
    config = RegistryConfig.from_mapping(
        {"registries": {"harbor.example": {"endpoint": "https://harbor.example", "username": "u",
                                            "password_env": "P"}}},
        env={"P": "harbor-secret-1"},
    )  # fmt: skip
    realm = "http://harbor.example:8080/token"

    def handler(request):
        if request.url.port == 8080:
            return httpx.Response(200, json={"token": "t0ken-plain"})
        return httpx.Response(401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="s"'})

    seen: list[httpx.Request] = []

    def record(request):
        seen.append(request)
        return handler(request)

    with Registry(config, store=MemoryStore(), transport=httpx.MockTransport(record)) as reg:
        res = reg.check("harbor.example/x:1")
        trusted = reg.client.backend.is_trusted("harbor.example", 8080)
    plain = [r for r in seen if r.url.scheme == "http"]
    assert all("authorization" not in {k.lower() for k in r.headers} for r in plain)
    assert plain == []  # refused outright: an https registry's token server is https too
    assert not trusted
    assert res.status is Status.BLOCKED


def test_https_realm_on_another_port_of_the_configured_host_still_works():
    config = RegistryConfig.from_mapping(
        {"registries": {"harbor.example": {"endpoint": "https://harbor.example", "username": "u",
                                            "password_env": "P"}}},
        env={"P": "harbor-secret-2"},
    )  # fmt: skip
    realm = "https://harbor.example:8443/token"

    def handler(request):
        if request.url.port == 8443:
            assert request.headers["Authorization"].startswith("Basic ")
            return httpx.Response(200, json={"token": "t0ken-tls"})
        if request.headers.get("Authorization") == "Bearer t0ken-tls":
            return httpx.Response(200, headers={"Docker-Content-Digest": DIGEST})
        return httpx.Response(401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="s"'})

    with Registry(config, store=MemoryStore(), transport=httpx.MockTransport(handler)) as reg:
        assert reg.check("harbor.example/x:1").status is Status.OK
