"""Real registries on loopback for any test: Debian's ``docker-registry`` (distribution 2.8).

Session-scoped fixtures (one set per xdist worker), each a :class:`LocalRegistry`:

- ``registry_open``: anonymous read and write.
- ``registry_basic``: htpasswd (bcrypt) Basic auth; ``.username``/``.password``.
- ``registry_token``: Bearer token auth backed by :class:`TokenServer` (in-process, RS256 with a
  throwaway certificate). Like Docker Hub: anonymous callers may pull anything except
  ``private/*``; ``testuser``/``testpassword`` may do anything; bad credentials get 401.
- ``redis_url``: a private ``redis-server`` on loopback (``redis://127.0.0.1:PORT/0``).

Typical use::

    def test_fix(registry_open, tmp_path):
        digest = registry_open.push("demo/app", "1.2.3")                  # OCI image, returns digest
        registry_open.push("demo/app", "1.3.0", platforms=("linux/amd64", "linux/arm64"))  # index
        registry_open.push("demo/app", "latest", content="1.2.3")         # same content, same digest
        config = registry_open.config()                                   # RegistryConfig for Pullable
        (tmp_path / "pullable.yml").write_text(registry_open.config_yaml())
        ref = registry_open.ref("demo/app", "1.2.3")                      # "127.0.0.1:PORT/demo/app:1.2.3"

``config()``/``config_yaml()`` point the reference host (``127.0.0.1:PORT`` by default, or any
``host=`` you want references to name) at ``endpoint: http://127.0.0.1:PORT``; with
``credentials=True`` they add the registry's user, the password in ``PULLABLE_TEST_PASSWORD``
(``config()`` passes it directly; for ``config_yaml()`` set that variable, e.g. monkeypatch).
Images are a few hundred bytes; pushes go over the HTTP API (no skopeo). Every test also gets its
own ``PULLABLE_DATA_DIR`` (and no ``REDIS_URL``), so no cache leaks between tests or into ``~``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import socket
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.artifacts import binary

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_MEDIA = {
    "oci": (OCI_INDEX, OCI_MANIFEST, "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip"),
    "docker": (DOCKER_LIST, DOCKER_MANIFEST, "application/vnd.docker.container.image.v1+json",
               "application/vnd.docker.image.rootfs.diff.tar.gzip"),
}  # fmt: skip
USERNAME = "testuser"
PASSWORD = "testpassword"
PASSWORD_ENV = "PULLABLE_TEST_PASSWORD"
TOKEN_SERVICE = "test-registry"
TOKEN_ISSUER = "test-token-issuer"


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(text: str) -> tuple[bytes, bytes]:
    """A deterministic gzip'd tar holding /VERSION; returns (compressed, uncompressed)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = text.encode()
        info = tarfile.TarInfo("VERSION")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), tar_bytes


class TokenServer:
    """A Docker-style token endpoint (``GET /token?service=&scope=``) signing RS256 JWTs.

    The certificate goes into the registry's ``rootcertbundle``; tokens carry it in ``x5c``.
    ``requests`` counts token requests (tests assert the token cache with it).
    """

    def __init__(self, directory: Path) -> None:
        import datetime as dt

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_ISSUER)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(self.key, hashes.SHA256())
        )  # fmt: skip
        self.cert_path = directory / "token-signing.crt"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.requests = 0
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                url = urlsplit(self.path)
                if url.path != "/token":
                    self.send_error(404)
                    return
                query = parse_qs(url.query)
                user = server.authenticate(self.headers.get("Authorization"))
                if user is None:
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"details":"incorrect username or password"}')
                    return
                scopes = [s for item in query.get("scope", []) for s in item.split(" ") if s]
                token = server.mint(user, scopes)
                body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @staticmethod
    def authenticate(header: str | None) -> str | None:
        """ "" for anonymous, the user for good Basic credentials, None for bad ones."""
        if not header:
            return ""
        try:
            scheme, _, value = header.partition(" ")
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        return user if scheme.lower() == "basic" and (user, password) == (USERNAME, PASSWORD) else None

    def mint(self, user: str, scopes: Sequence[str], ttl: int = 300) -> str:
        """A token granting what ``user`` may do of ``scopes`` (the rest dropped silently)."""
        import jwt

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            granted = (
                wanted if user else [a for a in wanted if a == "pull" and not name.startswith("private/")]
            )
            if kind == "repository" and granted:
                access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": TOKEN_ISSUER, "sub": user, "aud": TOKEN_SERVICE, "exp": now + ttl, "nbf": now - 10,
            "iat": now, "jti": uuid.uuid4().hex, "access": access,
        }  # fmt: skip
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": [self.x5c]})

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()


class LocalRegistry:
    """One ``docker-registry serve`` process on 127.0.0.1 plus a tiny image pusher."""

    def __init__(self, root: Path, kind: str = "open") -> None:
        self.kind = kind
        self.root = root
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.username: str | None = None
        self.password: str | None = None
        self.token_server: TokenServer | None = None
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": "local-test-secret"},
        }
        if kind == "basic":
            import bcrypt

            self.username, self.password = USERNAME, PASSWORD
            hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
            (root / "htpasswd").write_text(f"{USERNAME}:{hashed}\n")
            config["auth"] = {"htpasswd": {"realm": "basic-realm", "path": str(root / "htpasswd")}}
        elif kind == "token":
            self.username, self.password = USERNAME, PASSWORD
            self.token_server = TokenServer(root)
            config["auth"] = {"token": {
                "realm": self.token_server.realm, "service": TOKEN_SERVICE, "issuer": TOKEN_ISSUER,
                "rootcertbundle": str(self.token_server.cert_path),
            }}  # fmt: skip
        elif kind != "open":
            raise ValueError(kind)
        config_path = root / "config.yml"
        config_path.write_text(json.dumps(config))  # JSON is YAML
        self._log = (root / "registry.log").open("wb")
        self.process = subprocess.Popen(
            [binary("docker-registry"), "serve", str(config_path)], stdout=self._log, stderr=subprocess.STDOUT
        )
        self.http = httpx.Client(base_url=self.url, timeout=10, trust_env=False)
        self._wait()

    def _wait(self) -> None:
        for _ in range(500):
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.root / 'registry.log').read_text()}")
            try:
                self.http.get("/v2/")
                return
            except httpx.TransportError:
                time.sleep(0.01)
        raise RuntimeError("docker-registry did not start")

    def stop(self) -> None:
        """Stop the registry process (and the token server)."""
        self.http.close()
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        if self.token_server is not None:
            self.token_server.stop()

    # -- what tests use ---------------------------------------------------------------------------

    def ref(
        self, repo: str, tag: str | None = None, digest: str | None = None, host: str | None = None
    ) -> str:
        """A reference string naming this registry (or ``host`` when you configured an alias)."""
        return f"{host or self.host}/{repo}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")

    def config_mapping(self, *, host: str | None = None, credentials: bool = False) -> dict[str, Any]:
        """The operator configuration (as parsed YAML) pointing ``host`` at this registry."""
        entry: dict[str, Any] = {"endpoint": self.url}
        if credentials:
            entry.update(username=self.username, password_env=PASSWORD_ENV)
        return {"registries": {host or self.host: entry}}

    def config(self, *, host: str | None = None, credentials: bool = False) -> Any:
        """A ``bot.registry.RegistryConfig`` for this registry (password passed directly)."""
        from bot.registry import RegistryConfig

        env = {PASSWORD_ENV: self.password or ""}
        return RegistryConfig.from_mapping(self.config_mapping(host=host, credentials=credentials), env=env)

    def config_yaml(self, *, host: str | None = None, credentials: bool = False) -> str:
        """The same as a YAML file body (set ``PULLABLE_TEST_PASSWORD`` for credentials)."""
        return json.dumps(self.config_mapping(host=host, credentials=credentials), indent=2)

    def push(
        self,
        repo: str,
        tag: str,
        *,
        content: str | None = None,
        platforms: Sequence[str] = (),
        media: str = "oci",
    ) -> str:
        """Push a tiny image (an index when ``platforms`` are given) and return its digest.

        ``content`` defaults to ``repo:tag``: equal content gives equal digests. ``media`` is
        ``"oci"`` or ``"docker"`` (schema 2 / manifest list).
        """
        index_type, manifest_type, config_type, layer_type = _MEDIA[media]
        text = content if content is not None else f"{repo}:{tag}"
        if not platforms:
            body = self._image(repo, text, "linux/amd64", manifest_type, config_type, layer_type)
            return self.push_manifest(repo, tag, body, manifest_type)
        entries = []
        for plat in platforms:
            body = self._image(repo, f"{text}:{plat}", plat, manifest_type, config_type, layer_type)
            digest = self.push_manifest(repo, _digest(body), body, manifest_type)
            os_, arch, *variant = plat.split("/")
            platform = {"architecture": arch, "os": os_} | ({"variant": variant[0]} if variant else {})
            entries.append(
                {"mediaType": manifest_type, "digest": digest, "size": len(body), "platform": platform}
            )
        index = json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": entries}).encode()
        return self.push_manifest(repo, tag, index, index_type)

    def push_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        """PUT any manifest bytes; returns the registry's digest (checked against ours)."""
        r = self.http.put(
            f"/v2/{repo}/manifests/{ref}",
            content=body,
            headers={"Content-Type": media_type, **self._auth(repo)},
        )
        r.raise_for_status()
        assert r.headers["Docker-Content-Digest"] == _digest(body)
        return _digest(body)

    def push_blob(self, repo: str, data: bytes) -> str:
        """Monolithic blob upload (POST then PUT ?digest=)."""
        digest = _digest(data)
        auth = self._auth(repo)
        if self.http.head(f"/v2/{repo}/blobs/{digest}", headers=auth).status_code == 200:
            return digest
        r = self.http.post(f"/v2/{repo}/blobs/uploads/", headers=auth)
        r.raise_for_status()
        location = httpx.URL(self.url).join(r.headers["Location"]).copy_merge_params({"digest": digest})
        r = self.http.put(
            location, content=data, headers={"Content-Type": "application/octet-stream", **auth}
        )
        r.raise_for_status()
        return digest

    def delete_manifest(self, repo: str, digest: str) -> None:
        """Delete by digest (every tag pointing at it disappears)."""
        self.http.delete(f"/v2/{repo}/manifests/{digest}", headers=self._auth(repo)).raise_for_status()

    def _image(
        self, repo: str, text: str, plat: str, manifest_type: str, config_type: str, layer_type: str
    ) -> bytes:
        layer, tar_bytes = _layer(text)
        os_, arch, *_ = plat.split("/")
        config = json.dumps(
            {"architecture": arch, "os": os_, "config": {},
             "rootfs": {"type": "layers", "diff_ids": [_digest(tar_bytes)]}}
        ).encode()  # fmt: skip
        self.push_blob(repo, layer)
        self.push_blob(repo, config)
        return json.dumps(
            {"schemaVersion": 2, "mediaType": manifest_type,
             "config": {"mediaType": config_type, "digest": _digest(config), "size": len(config)},
             "layers": [{"mediaType": layer_type, "digest": _digest(layer), "size": len(layer)}]}
        ).encode()  # fmt: skip

    def _auth(self, repo: str) -> dict[str, str]:
        if self.kind == "basic":
            return {"Authorization": "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()}
        if self.token_server is not None:
            token = self.token_server.mint(USERNAME, [f"repository:{repo}:pull,push,delete"])
            return {"Authorization": f"Bearer {token}"}
        return {}


class FailingProxy:
    """A loopback proxy in front of a :class:`LocalRegistry` that answers ``failing[repo]`` (an
    HTTP status) for every request about that repository and passes everything else through:
    an outage of one repository of a registry that otherwise answers. ``config_mapping`` points
    ``host`` at the proxy. Use as a context manager."""

    PASSED = ("content-type", "docker-content-digest", "link", "www-authenticate", "content-length")

    def __init__(self, registry: LocalRegistry) -> None:
        self.registry = registry
        self.failing: dict[str, int] = {}
        self.failed: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                path = urlsplit(self.path).path
                for repo, status in proxy.failing.items():
                    if path.startswith(f"/v2/{repo}/"):
                        proxy.failed.append(f"{self.command} {path}")
                        body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "outage"}]}).encode()
                        self.send_response(status)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        if self.command != "HEAD":
                            self.wfile.write(body)
                        return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
                resp = proxy.registry.http.request(self.command, self.path, headers=headers)
                self.send_response(resp.status_code)
                for k, v in resp.headers.items():
                    if k.lower() in proxy.PASSED:
                        self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.content)

            do_GET = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def config_mapping(self, *, host: str) -> dict[str, Any]:
        return {"registries": {host: {"endpoint": self.url}}}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FailingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _start(tmp_path_factory: pytest.TempPathFactory, kind: str) -> Iterator[LocalRegistry]:
    reg = LocalRegistry(tmp_path_factory.mktemp(f"registry-{kind}"), kind)
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def registry_open(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """An anonymous distribution 2.8 registry on 127.0.0.1."""
    yield from _start(tmp_path_factory, "open")


@pytest.fixture(scope="session")
def registry_basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry behind htpasswd Basic auth (testuser / testpassword)."""
    yield from _start(tmp_path_factory, "basic")


@pytest.fixture(scope="session")
def registry_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry with Bearer token auth; anonymous pull except ``private/*``."""
    yield from _start(tmp_path_factory, "token")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway ``redis-server`` on loopback (no persistence)."""
    port = free_port()
    directory = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(500):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.01)
        else:
            raise RuntimeError("redis-server did not start")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.fixture(autouse=True)
def _pullable_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own cache directory, no Redis unless it asks for one, and an empty
    Docker login (the CLI reads the user's own ~/.docker/config.json)."""
    monkeypatch.setenv("PULLABLE_DATA_DIR", str(tmp_path_factory.mktemp("pullable-data")))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path_factory.mktemp("docker-config")))
    monkeypatch.delenv("REDIS_URL", raising=False)
