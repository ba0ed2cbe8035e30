"""The network guard (security.md §1.6, §7.3 S1-S19): a mocked resolver, and loopback listeners
that must receive zero connections."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from bot.model import Status
from bot.registry import MemoryStore, Registry, RegistryConfig
from bot.registry.guard import EgressDenied, GuardedBackend, guarded_transport, ip_is_forbidden

REAL_GETADDRINFO = socket.getaddrinfo


class Sink:
    """A listening socket nobody should reach; ``connections()`` drains and counts."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.bind((address, port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.seen = 0

    def connections(self) -> int:
        self.sock.setblocking(False)
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return self.seen
            conn.close()
            self.seen += 1

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.close()


class Server:
    """A loopback HTTP server whose answers a test scripts: ``handle(handler) -> None``."""

    def __init__(self, handle, address: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                outer.requests.append(
                    (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                handle(self)

            do_GET = do_HEAD = _any

            def log_message(self, format, *args):
                pass

        self.httpd = ThreadingHTTPServer((address, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{address}:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(handler, status, headers=None, body=b""):
    handler.send_response(status)
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def fake_resolver(table, lookups):
    """getaddrinfo answering names in ``table`` (a list of IPs, or a list of lists: one per call)."""

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in table:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        lookups.append(host)
        answer = table[host]
        if answer and isinstance(answer[0], list):
            answer = answer[min(len(lookups), len(answer)) - 1]
        out = []
        for ip in answer:
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            addr = (ip, port, 0, 0) if fam == socket.AF_INET6 else (ip, port)
            out.append((fam, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", addr))
        return out

    return getaddrinfo


FORBIDDEN = [
    "127.0.0.1", "127.1.2.3", "0.0.0.0", "10.0.0.5", "172.16.1.1", "192.168.1.1", "169.254.169.254",
    "100.100.100.200", "100.64.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255", "198.18.0.1",
    "192.0.2.1", "::1", "::", "fd00:ec2::254", "fd00::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1",
    "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::127.0.0.1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:db8::1", "fec0::1",
]  # fmt: skip


@pytest.mark.parametrize("ip", FORBIDDEN)
def test_forbidden_addresses(ip):
    assert ip_is_forbidden(ipaddress.ip_address(ip))


@pytest.mark.parametrize(
    "ip", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"]
)
def test_public_addresses(ip):
    assert not ip_is_forbidden(ipaddress.ip_address(ip))


def test_operator_allowed_networks():
    allow = [ipaddress.ip_network("10.20.0.0/16")]
    assert not ip_is_forbidden(ipaddress.ip_address("10.20.3.4"), allow)
    assert not ip_is_forbidden(ipaddress.ip_address("::ffff:10.20.3.4"), allow)
    assert ip_is_forbidden(ipaddress.ip_address("10.21.0.1"), allow)


def test_repository_named_private_hosts_are_blocked_and_never_contacted(sink, monkeypatch):
    lookups: list[str] = []
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        fake_resolver(
            {
                "ten.test": ["10.0.0.5"],
                "ula.test": ["fd00::1"],
                "linklocal.test": ["fe80::1%eth0"],
                "alibaba.test": ["100.100.100.200"],
                "nat64.test": ["64:ff9b::a9fe:a9fe"],
                "sixtofour.test": ["2002:a9fe:a9fe::1"],
                "mixed.test": ["93.184.216.34", "127.0.0.1"],
                "metadata.google.internal": ["169.254.169.254"],
            },
            lookups,
        ),
    )
    refs = [
        f"127.0.0.1:{sink.port}/x:1",
        f"localhost:{sink.port}/x:1",
        f"[::1]:{sink.port}/x:1",
        "169.254.169.254/latest/meta-data:x",
        "169.254.169.254:80/a:1",
        "2130706433:443/x:1",
        "0x7f000001:443/x:1",
        "127.1:443/x:1",
        "0:443/x:1",
        "localhost/x:1",
        "ten.test/x:1",
        "ula.test/x:1",
        "linklocal.test/x:1",
        "alibaba.test/x:1",
        "nat64.test/x:1",
        "sixtofour.test/x:1",
        "mixed.test/x:1",
        "metadata.google.internal/computemetadata/v1:x",
    ]
    with Registry(store=MemoryStore()) as reg:
        res = reg.check_many(refs)
    assert {k: v.status for k, v in res.items() if v.status is not Status.BLOCKED} == {}
    assert all(v.evidence.error_code == "BLOCKED" for v in res.values())
    assert sink.connections() == 0
    assert len(lookups) == len(set(lookups))  # one lookup per name


def test_port_scan_probes_get_the_same_answer_whatever_listens(sink):
    with Registry(store=MemoryStore()) as reg:
        details = {
            reg.check(f"example.com:{port}/x:1").evidence.detail.replace(str(port), "P")  # type: ignore[union-attr]
            for port in (22, 25, 6379, sink.port)
        }
    assert len(details) == 1
    assert sink.connections() == 0


def test_dns_rebinding_connects_to_the_checked_address(monkeypatch):
    good = Server(lambda h: reply(h, 200, body=b"ok"), "127.0.0.1")
    evil = Sink("127.0.0.2", good.port)
    lookups: list[str] = []
    monkeypatch.setattr(
        socket, "getaddrinfo", fake_resolver({"rebind.test": [["127.0.0.1"], ["127.0.0.2"]]}, lookups)
    )
    backend = GuardedBackend(allow=[ipaddress.ip_network("127.0.0.1/32")], ports=frozenset({good.port}))
    try:
        with httpx.Client(transport=guarded_transport(backend)) as client:
            assert client.get(f"http://rebind.test:{good.port}/").text == "ok"
        assert lookups == ["rebind.test"]
        assert evil.connections() == 0
        assert len(good.requests) == 1
    finally:
        good.close()
        evil.close()


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "127.1", "2130706433", "0x7f000001", "localhost"])
def test_obfuscated_loopback_urls_are_refused(sink, host):
    """Forms Docker's grammar refuses but a redirect or realm URL could carry."""
    backend = GuardedBackend(ports=frozenset({sink.port}))
    with httpx.Client(transport=guarded_transport(backend)) as client, pytest.raises(EgressDenied):
        client.get(f"http://{host}:{sink.port}/")
    assert sink.connections() == 0


def test_any_forbidden_answer_poisons_the_name(sink, monkeypatch):
    lookups: list[str] = []
    monkeypatch.setattr(
        socket, "getaddrinfo", fake_resolver({"mixed.test": ["127.0.0.1", "93.184.216.34"]}, lookups)
    )
    backend = GuardedBackend(ports=frozenset({sink.port}))
    with httpx.Client(transport=guarded_transport(backend)) as client, pytest.raises(EgressDenied):
        client.get(f"http://mixed.test:{sink.port}/")
    assert sink.connections() == 0


def configured(*servers: Server, **kw) -> RegistryConfig:
    regs = {f"r{i}.test": {"endpoint": s.url} for i, s in enumerate(servers)}
    return RegistryConfig.from_mapping({"registries": regs, **kw})


def test_redirects_to_private_addresses_are_refused(sink):
    targets = iter(
        ["http://169.254.169.254/latest/meta-data/", f"http://127.0.0.1:{sink.port}/", "https://10.0.0.1/"]
    )
    server = Server(lambda h: reply(h, 302 if "1" in h.path else 307, {"Location": next(targets)}))
    try:
        with Registry(configured(server), store=MemoryStore()) as reg:
            for tag in ("1", "2", "3"):
                assert reg.check(f"r0.test/x:{tag}").status is Status.BLOCKED
    finally:
        server.close()
    assert sink.connections() == 0


def test_credentials_never_cross_origins_on_redirect(monkeypatch):
    b = Server(lambda h: reply(h, 200, {"Docker-Content-Digest": "sha256:" + "c" * 64}))

    def a_handle(h):
        if "authorization" not in {k.lower() for k in h.headers}:
            reply(h, 401, {"WWW-Authenticate": 'Basic realm="a"'})
        else:
            reply(h, 307, {"Location": f"{b.url}/v2/x/manifests/1"})

    a = Server(a_handle)
    try:
        a_entry = {"endpoint": a.url, "username": "u", "password_env": "P"}
        regs = {"a.test": a_entry, "b.test": {"endpoint": b.url}}
        config = RegistryConfig.from_mapping({"registries": regs}, env={"P": "redirect-secret"})
        with Registry(config, store=MemoryStore()) as reg:
            assert reg.check("a.test/x:1").status is Status.OK
        assert a.requests[-1][2]["authorization"].startswith("Basic ")
        assert len(b.requests) == 1
        assert not {"authorization", "proxy-authorization", "cookie"} & set(b.requests[0][2])
    finally:
        a.close()
        b.close()


def test_total_deadline_stops_a_slow_drip():
    def drip(h):
        if h.command == "HEAD":
            reply(h, 200)  # no digest: the client must GET and hash
            return
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        try:
            for _ in range(1000):
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    server = Server(drip)
    try:
        config = configured(server, network={"timeout_s": 0.2})
        with Registry(config, store=MemoryStore()) as reg:
            res = reg.check("r0.test/x:1")
        assert res.status is Status.UNREACHABLE
        assert res.evidence.error_code in {"DEADLINE", "TIMEOUT"}
    finally:
        server.close()


def test_proxy_environment_is_ignored(registry_open, sink, monkeypatch):
    registry_open.push("guard/app", "1.0")
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{sink.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with Registry(registry_open.config(), store=MemoryStore()) as reg:
        assert reg.check(registry_open.ref("guard/app", "1.0")).status is Status.OK
    assert sink.connections() == 0


def test_http_only_for_configured_endpoints(registry_open):
    registry_open.push("guard/app", "1.0")
    with Registry(registry_open.config(), store=MemoryStore()) as reg:
        # https to the configured http origin is refused; only what the operator wrote is trusted
        client = reg.client
        with pytest.raises(EgressDenied):
            from bot.registry.guard import check_url

            check_url(httpx.URL(f"https://{registry_open.host}/v2/"), client.backend)
        check_url(httpx.URL(f"{registry_open.url}/v2/"), client.backend)
        with pytest.raises(EgressDenied):
            check_url(httpx.URL("http://example.com/v2/"), client.backend)
        with pytest.raises(EgressDenied):
            check_url(httpx.URL("https://user:pw@example.com/v2/"), client.backend)


def test_tls_pinned_to_the_checked_address_keeps_sni_and_certificate_checks(tmp_path, monkeypatch):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("registry.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda sslobj, server_name, ctx: sni.append(server_name)
    server = Server(lambda h: reply(h, 200, body=b"tls"))
    server.httpd.socket = server_ctx.wrap_socket(server.httpd.socket, server_side=True)
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "c.pem"))
    lookups: list[str] = []
    table = {"registry.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}
    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver(table, lookups))
    backend = GuardedBackend(allow=[ipaddress.ip_network("127.0.0.1/32")], ports=frozenset({server.port}))
    try:
        with httpx.Client(transport=guarded_transport(backend, verify=client_ctx)) as client:
            assert client.get(f"https://registry.test:{server.port}/").text == "tls"
            assert sni == ["registry.test"]
            with pytest.raises(httpx.ConnectError, match=re.compile("hostname|match", re.I)):
                client.get(f"https://other.test:{server.port}/")
    finally:
        server.close()
