"""What distribution 2.8 cannot show: Docker Hub's headers, 401-for-missing and repository API,
429 with Retry-After, registry.k8s.io redirects, Link pagination and hostile answers. These use
httpx.MockTransport, which sees every request the client sends (no sockets)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json

import httpx
import pytest

from bot.model import Status
from bot.registry import MemoryStore, Registry, RegistryConfig
from bot.registry import client as client_mod

DIGEST = "sha256:" + "ab" * 32
HUB_CHALLENGE = (
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:{}:pull"'
)


def make(handler, config=None, **kw):
    """A Registry whose every request goes to ``handler``; returns (registry, seen requests)."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return Registry(config, store=MemoryStore(), transport=httpx.MockTransport(record), **kw), seen


def hub(missing=(), private=(), extra=None):
    """A Docker Hub lookalike: anonymous tokens, 401 for anything not public, repository API."""
    public = {"library/alpine", "bitnami/kubectl"}

    def handler(request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        if extra and (r := extra(request)) is not None:
            return r
        if host == "auth.docker.io":
            assert "Authorization" not in request.headers
            return httpx.Response(200, json={"token": "anon-token-123456", "expires_in": 300})
        if host == "hub.docker.com":
            repo = path.removeprefix("/v2/repositories/").rstrip("/")
            return httpx.Response(404 if repo in missing else 200, json={})
        assert host == "registry-1.docker.io"
        name = path.split("/manifests/")[0].removeprefix("/v2/")
        if request.headers.get("Authorization") != "Bearer anon-token-123456":
            return httpx.Response(401, headers={"WWW-Authenticate": HUB_CHALLENGE.format(name)})
        if name not in public:
            challenge = HUB_CHALLENGE.format(name) + ',error="insufficient_scope"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return httpx.Response(
            200,
            headers={
                "Docker-Content-Digest": DIGEST,
                "Content-Type": "application/vnd.oci.image.index.v1+json",
                "ratelimit-limit": "100;w=21600",
                "ratelimit-remaining": "20;w=21600",
                "docker-ratelimit-source": "192.0.2.1",
            },
        )

    return handler


def test_docker_hub_names_head_only_and_rate_limit_headers():
    reg, seen = make(hub())
    res = reg.check("alpine:3.20")
    assert res.status is Status.OK
    assert res.reference == "docker.io/library/alpine:3.20"
    assert res.evidence.digest == DIGEST
    assert "ratelimit-remaining: 20;w=21600" in (res.evidence.detail or "")
    manifest_requests = [r for r in seen if "/manifests/" in r.url.path]
    assert {r.method for r in manifest_requests} == {"HEAD"}  # HEAD does not count as a pull
    assert {str(r.url) for r in manifest_requests} == {
        "https://registry-1.docker.io/v2/library/alpine/manifests/3.20"
    }
    accept = manifest_requests[-1].headers["Accept"]
    for media in (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ):
        assert media in accept
    token_request = next(r for r in seen if r.url.host == "auth.docker.io")
    assert token_request.url.params["scope"] == "repository:library/alpine:pull"
    assert token_request.url.params["service"] == "registry.docker.io"


def test_docker_hub_401_for_a_missing_repository_asks_its_repository_api():
    reg, seen = make(hub(missing={"nobody/missing"}))
    res = reg.check("nobody/missing:1.0")
    assert res.status is Status.REPO_MISSING
    assert res.evidence.http_status == 401
    api = [r for r in seen if r.url.host == "hub.docker.com"]
    assert [str(r.url) for r in api] == ["https://hub.docker.com/v2/repositories/nobody/missing/"]
    assert "Authorization" not in api[0].headers


def test_docker_hub_401_for_an_existing_repository_is_auth_required():
    reg, _ = make(hub())
    res = reg.check("someone/private:1.0")
    assert res.status is Status.AUTH_REQUIRED
    assert res.evidence.error_code == "insufficient_scope"


def test_docker_hub_credentials_go_to_auth_docker_io_only():
    creds = base64.b64encode(b"robot:s3cret-pass").decode()
    tokens = []

    def extra(request):
        if request.url.host == "auth.docker.io":
            tokens.append(request.headers.get("Authorization"))
            return httpx.Response(200, json={"token": "anon-token-123456"})
        return None

    config = RegistryConfig.from_mapping(
        {"registries": {"index.docker.io": {"username": "robot", "password_env": "P"}}},
        env={"P": "s3cret-pass"},
    )
    reg, seen = make(hub(extra=extra), config)
    assert reg.check("docker.io/library/alpine:3.20").status is Status.OK
    assert tokens == [f"Basic {creds}"]
    assert all(
        "Basic" not in r.headers.get("Authorization", "") for r in seen if r.url.host != "auth.docker.io"
    )


def test_429_retry_after_one_polite_retry_then_ok():
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "2"})
        return httpx.Response(200, headers={"Docker-Content-Digest": DIGEST})

    reg, _ = make(handler)
    slept: list[float] = []
    reg.client.sleep = slept.append
    assert reg.check("ghcr.io/o/r:1").status is Status.OK
    assert slept == [2.0]


def test_429_twice_is_rate_limited():
    reg, seen = make(
        lambda r: httpx.Response(
            429, headers={"Retry-After": "1"}, json={"errors": [{"code": "TOOMANYREQUESTS"}]}
        )
    )
    slept: list[float] = []
    reg.client.sleep = slept.append
    res = reg.check("ghcr.io/o/r:1")
    assert res.status is Status.RATE_LIMITED
    assert res.evidence.http_status == 429
    assert len(seen) == 2
    assert slept == [1.0]


def test_429_with_a_long_retry_after_is_not_waited_for():
    reg, seen = make(lambda r: httpx.Response(429, headers={"Retry-After": "3600"}))
    slept: list[float] = []
    reg.client.sleep = slept.append
    assert reg.check("ghcr.io/o/r:1").status is Status.RATE_LIMITED
    assert slept == []
    assert len(seen) == 1


def test_registry_k8s_io_redirect_is_followed_without_credentials():
    target = "https://europe-west4-docker.pkg.dev/v2/k8s-artifacts-prod/images/pause/manifests/3.9"

    def handler(request):
        if request.url.host == "registry.k8s.io":
            if "Authorization" not in request.headers:
                return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="k8s"'})
            return httpx.Response(307, headers={"Location": target})
        assert str(request.url) == target
        return httpx.Response(200, headers={"Docker-Content-Digest": DIGEST})

    config = RegistryConfig.from_mapping(
        {"registries": {"registry.k8s.io": {"username": "u", "password_env": "P"}}}, env={"P": "pw-k8s-123"}
    )
    reg, seen = make(handler, config)
    res = reg.check("registry.k8s.io/pause:3.9")
    assert res.status is Status.OK
    assert res.evidence.digest == DIGEST
    assert seen[-1].url.host == "europe-west4-docker.pkg.dev"
    assert "Authorization" not in seen[-1].headers


def test_redirects_are_capped_and_never_downgrade():
    def loop(request):
        n = int(request.url.params.get("n", "0"))
        return httpx.Response(302, headers={"Location": f"https://r{n}.example/v2/x/manifests/1?n={n + 1}"})

    reg, seen = make(loop)
    res = reg.check("ghcr.io/o/r:1")
    assert res.status is Status.BLOCKED
    assert len(seen) == client_mod.MAX_REDIRECTS + 1
    reg2, seen2 = make(
        lambda r: httpx.Response(302, headers={"Location": "http://ghcr.io/v2/o/r/manifests/1"})
    )
    assert reg2.check("ghcr.io/o/r:1").status is Status.BLOCKED
    assert len(seen2) == 1


def test_missing_docker_content_digest_means_get_and_hash():
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
    ).encode()

    def handler(request):
        if request.method == "HEAD":
            return httpx.Response(200, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        return httpx.Response(
            200, content=body, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        )

    reg, seen = make(handler)
    res = reg.check("quay.io/o/r:1")
    assert res.status is Status.OK
    assert res.evidence.digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert [r.method for r in seen] == ["HEAD", "GET"]
    assert reg.pinned_digest("quay.io/o/r:1") == res.evidence.digest


def test_digest_header_that_does_not_match_the_body_is_never_pinned():
    body = b'{"schemaVersion":2}'
    reg, _ = make(lambda r: httpx.Response(200, content=body, headers={"Docker-Content-Digest": DIGEST}))
    assert reg.pinned_digest("quay.io/o/r:1") is None
    good = "sha256:" + hashlib.sha256(body).hexdigest()
    reg2, _ = make(lambda r: httpx.Response(200, content=body, headers={"Docker-Content-Digest": good}))
    assert reg2.pinned_digest("quay.io/o/r:1") == good
    assert reg2.pinned_digest(f"quay.io/o/r@{DIGEST}") is None  # served other content for a digest


def test_decompressed_body_is_capped():
    bomb = gzip.compress(b"\0" * (client_mod.MANIFEST_CAP + 1024 * 1024))
    assert len(bomb) < 64 * 1024

    def handler(request):
        if request.method == "HEAD":
            return httpx.Response(200)
        return httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"})

    reg, _ = make(handler)
    res = reg.check("quay.io/o/r:1")
    assert res.status is Status.UNREACHABLE
    assert res.evidence.error_code == "TOO_LARGE"
    assert reg.pinned_digest("quay.io/o/r:1") is None


def test_tag_pages_follow_link_on_the_same_origin_only():
    pages = {
        None: (["1.0", "1.1", "bad tag", "1.0"], '</v2/o/r/tags/list?last=1.1&n=1000>; rel="next"'),
        "1.1": (
            ["1.1", "2.0", "x" * 129, "@everyone", "1.0<script>", "a\nb"],
            '<https://ghcr.io/v2/o/r/tags/list?last=2.0>; rel="next"',
        ),
        "2.0": (["3.0"], '<https://evil.example/v2/o/r/tags/list?last=3.0>; rel="next"'),
    }  # fmt: skip

    def handler(request):
        assert request.url.host == "ghcr.io", "followed a Link to another origin"
        tags, link = pages[request.url.params.get("last")]
        return httpx.Response(200, json={"name": "o/r", "tags": tags}, headers={"Link": link})

    reg, seen = make(handler)
    assert reg.tags("ghcr.io/o/r") == ["1.0", "1.1", "2.0", "3.0"]
    assert len(seen) == 3
    assert seen[0].url.params["n"] == "1000"


def test_tag_pages_are_capped():
    def handler(request):
        n = int(request.url.params.get("last", "0"))
        tags = [f"{n}.{i}" for i in range(1000)]
        return httpx.Response(
            200, json={"tags": tags}, headers={"Link": f'</v2/o/r/tags/list?last={n + 1}>; rel="next"'}
        )

    reg, seen = make(handler)
    tags = reg.tags("ghcr.io/o/r")
    assert len(seen) == client_mod.MAX_TAG_PAGES
    assert len(tags) == len(set(tags)) == client_mod.MAX_TAG_PAGES * 1000


def test_credentials_match_the_exact_host_only():
    config = RegistryConfig.from_mapping(
        {"registries": {"registry.example.com": {"username": "u", "password_env": "P"}}},
        env={"P": "exact-host-pw"},
    )

    def handler(request):
        if "Authorization" not in request.headers:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        return httpx.Response(200, headers={"Docker-Content-Digest": DIGEST})

    reg, seen = make(handler, config)
    for ref in (
        "registry.example.com.evil.net/x:1",
        "evil.net/registry.example.com/x:1",
        "registry.example.com:444/x:1",
        "REGISTRY.example.com/x:1",
        "ghcr.io/registry.example.com/x:1",
    ):
        assert reg.check(ref).status is Status.AUTH_REQUIRED, ref
    assert all("Authorization" not in r.headers for r in seen)
    assert reg.check("registry.example.com/x:1").status is Status.OK
    assert seen[-1].headers["Authorization"].startswith("Basic ")


def test_realm_on_another_host_gets_no_credentials_and_private_realms_are_blocked():
    config = RegistryConfig.from_mapping(
        {"registries": {"registry.example.com": {"username": "u", "password_env": "P"}}},
        env={"P": "realm-pw-1234"},
    )

    def handler(request):
        if request.url.host == "evil.example":
            return httpx.Response(200, json={"token": "evil-token-1"})
        if request.headers.get("Authorization") == "Bearer evil-token-1":
            return httpx.Response(200, headers={"Docker-Content-Digest": DIGEST})
        return httpx.Response(
            401, headers={"WWW-Authenticate": 'Bearer realm="https://evil.example/token",service="s"'}
        )

    reg, seen = make(handler, config)
    assert reg.check("registry.example.com/x:1").status is Status.OK
    realm = [r for r in seen if r.url.host == "evil.example"]
    assert len(realm) == 1
    assert "Authorization" not in realm[0].headers

    metadata = 'Bearer realm="http://169.254.169.254/token",service="s"'
    reg2, seen2 = make(lambda r: httpx.Response(401, headers={"WWW-Authenticate": metadata}))
    res = reg2.check("ghcr.io/o/r:1")
    assert res.status is Status.BLOCKED
    assert all(r.url.host != "169.254.169.254" for r in seen2)


def test_anonymous_token_refused_is_auth_required():
    def handler(request):
        if request.url.path == "/token":
            return httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED"}]})
        return httpx.Response(
            401, headers={"WWW-Authenticate": 'Bearer realm="https://ghcr.io/token",service="ghcr.io"'}
        )

    reg, _ = make(handler)
    assert reg.check("ghcr.io/o/private:1").status is Status.AUTH_REQUIRED


def test_a_revoked_cached_token_is_fetched_again_once():
    issued: list[str] = []
    revoked: set[str] = set()

    def handler(request):
        if request.url.path == "/token":
            issued.append(f"tok-{len(issued)}-abcdef")
            return httpx.Response(200, json={"access_token": issued[-1], "expires_in": 3600})
        challenge = 'Bearer realm="https://ghcr.io/token",service="ghcr.io"'
        auth = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if auth in issued and auth not in revoked:
            return httpx.Response(200, headers={"Docker-Content-Digest": DIGEST})
        if auth:
            challenge += ',error="invalid_token"'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})

    reg, seen = make(handler)
    assert reg.check("ghcr.io/o/r:1").status is Status.OK
    assert len(issued) == 1
    revoked.add(issued[0])
    before = len(seen)
    assert reg.check("ghcr.io/o/r:2").status is Status.OK
    assert len(issued) == 2
    assert len(seen) - before == 3  # refused cached token, new token, retry


def test_other_statuses():
    reg, _ = make(lambda r: httpx.Response(403, json={"errors": [{"code": "DENIED", "message": "no"}]}))
    res = reg.check("ghcr.io/o/r:1")
    assert (res.status, res.evidence.http_status) == (Status.FORBIDDEN, 403)
    reg2, _ = make(lambda r: httpx.Response(503))
    assert reg2.check("ghcr.io/o/r:1").status is Status.UNREACHABLE
    reg3, _ = make(lambda r: (_ for _ in ()).throw(httpx.ConnectTimeout("slow")))
    res3 = reg3.check("ghcr.io/o/r:1")
    assert (res3.status, res3.evidence.error_code) == (Status.UNREACHABLE, "TIMEOUT")
    reg4, _ = make(lambda r: (_ for _ in ()).throw(httpx.ConnectError("dns")))
    assert reg4.check("ghcr.io/o/r:1").status is Status.UNREACHABLE


def test_invalid_digest_headers_are_ignored():
    body = b'{"schemaVersion":2}'
    reg, seen = make(
        lambda r: httpx.Response(
            200, content=body, headers={"Docker-Content-Digest": "sha256:NOT-HEX\nX-Evil: 1"}
        )
    )
    res = reg.check("ghcr.io/o/r:1")
    assert res.evidence.digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert [r.method for r in seen] == ["HEAD", "GET"]


@pytest.mark.parametrize("name", ["ghcr.io/o/r", "docker.io/alpine/kubectl"])
def test_tags_of_unknown_repositories_are_empty(name):
    reg, _ = make(lambda r: httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN"}]}))
    assert reg.tags(name) == []


def test_a_lying_digest_header_never_reaches_a_proposed_pin():
    """HEAD's Docker-Content-Digest is what a registry claims; the digest written into a file
    must be the hash of the manifest bytes (issue 3 §1), so a mismatch is advice, not a pin."""
    from bot import rules
    from bot.rules import Options
    from tests.rules.fakes import image_ref

    body = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
    tags = {"tags": ["1.2.3", "1.2.9"]}

    def handler(request):
        if request.url.path.endswith("/tags/list"):
            return httpx.Response(200, json=tags)
        if request.url.path.endswith("/manifests/1.2.3"):
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        headers = {
            "Docker-Content-Digest": DIGEST,
            "Content-Type": "application/vnd.oci.image.manifest.v1+json",
        }
        return httpx.Response(200, content=b"" if request.method == "HEAD" else body, headers=headers)

    reg, _ = make(handler)
    ref = image_ref("quay.io/o/r:1.2.3")
    res = reg.check(str(ref.reference))
    assert res.status is Status.TAG_MISSING
    decision = rules.evaluate(ref, res, reg, rules.load(), Options(pin_digest=True))
    assert decision is not None and decision.target is None
    assert DIGEST not in str(decision.advice)
    # a registry whose header matches the body gets its pin
    good = "sha256:" + hashlib.sha256(body).hexdigest()

    def honest(request):
        r = handler(request)
        if r.headers.get("Docker-Content-Digest") == DIGEST:
            r.headers["Docker-Content-Digest"] = good
        return r

    reg2, _ = make(honest)
    decision = rules.evaluate(
        ref, reg2.check(str(ref.reference)), reg2, rules.load(), Options(pin_digest=True)
    )
    assert decision is not None and str(decision.target) == f"quay.io/o/r:1.2.9@{good}"
