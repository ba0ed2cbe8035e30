"""Against real distribution 2.8 registries on loopback: open, htpasswd Basic and token auth."""

from __future__ import annotations

import hashlib

import pytest

from bot.model import Status
from bot.registry import MemoryStore, Registry, RegistryConfig, SQLiteStore, TagsUnavailable
from tests.support.registry import FailingProxy

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def images(registry_open):
    """A few images on the open registry, and their digests."""
    r = registry_open
    return {
        "1.0": r.push("local/app", "1.0"),
        "1.1": r.push("local/app", "1.1"),
        "latest": r.push("local/app", "latest", content="local/app:1.1"),
        "multi": r.push("local/app", "2.0", platforms=("linux/amd64", "linux/arm64/v8")),
        "docker": r.push("local/app", "3.0-v2s2", media="docker"),
        "docker-list": r.push(
            "local/app", "3.0-list", platforms=("linux/amd64", "linux/arm/v7"), media="docker"
        ),
    }


def registry_for(reg, **kw):
    return Registry(reg.config(**kw), store=MemoryStore())


def test_statuses_on_an_open_registry(registry_open, images):
    r = registry_open
    with registry_for(r) as reg:
        res = reg.check_many(
            [
                r.ref("local/app", "1.0"),
                r.ref("local/app", "9.9.9"),
                r.ref("local/nope", "1.0"),
                r.ref("local/app", digest=images["1.0"]),
                r.ref("local/app", digest="sha256:" + "0" * 64),
                r.ref("local/app", "1.0", digest=images["1.1"]),
                "Not/A/Reference:",
            ]
        )
    got = {k: v.status for k, v in res.items()}
    assert got == {
        r.ref("local/app", "1.0"): Status.OK,
        r.ref("local/app", "9.9.9"): Status.TAG_MISSING,
        r.ref("local/nope", "1.0"): Status.REPO_MISSING,
        r.ref("local/app", digest=images["1.0"]): Status.OK,
        r.ref("local/app", digest="sha256:" + "0" * 64): Status.DIGEST_MISSING,
        r.ref("local/app", "1.0", digest=images["1.1"]): Status.OK,  # the digest is what gets pulled
        "Not/A/Reference:": Status.INVALID,
    }
    ok = res[r.ref("local/app", "1.0")].evidence
    assert ok.digest == images["1.0"]
    assert ok.http_status == 200
    assert ok.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert ok.checked_at and ok.checked_at.endswith("Z")
    assert res[r.ref("local/app", "9.9.9")].evidence.http_status == 404
    assert res[r.ref("local/nope", "1.0")].evidence.error_code == "NAME_UNKNOWN"
    assert res["Not/A/Reference:"].evidence.detail


def test_index_digest_platforms_and_docker_media_types(registry_open, images):
    r = registry_open
    with registry_for(r) as reg:
        multi = reg.check(r.ref("local/app", "2.0"))
        assert multi.status is Status.OK
        assert multi.evidence.digest == images["multi"]  # the index's own digest, not a child's
        assert multi.evidence.media_type == "application/vnd.oci.image.index.v1+json"
        assert reg.platforms(r.ref("local/app", "2.0")) == ("linux/amd64", "linux/arm64/v8")
        assert reg.platforms(r.ref("local/app", "1.0")) == ()
        # Docker media types: without the list type in Accept, 2.8 would answer with a child
        listed = reg.check(r.ref("local/app", "3.0-list"))
        assert listed.evidence.digest == images["docker-list"]
        assert listed.evidence.media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
        assert reg.platforms(r.ref("local/app", "3.0-list")) == ("linux/amd64", "linux/arm/v7")
        v2 = reg.check(r.ref("local/app", "3.0-v2s2"))
        assert v2.evidence.digest == images["docker"]  # not rewritten to schema 1
        assert reg.check(r.ref("local/app", "latest")).evidence.digest == images["1.1"]


def test_pinned_digest_hashes_the_bytes_received(registry_open, images):
    r = registry_open
    with registry_for(r) as reg:
        assert reg.pinned_digest(r.ref("local/app", "2.0")) == images["multi"]
        assert reg.pinned_digest(r.ref("local/app", digest=images["1.0"])) == images["1.0"]
        assert reg.pinned_digest(r.ref("local/app", "9.9.9")) is None
        body = r.http.get(
            "/v2/local/app/manifests/1.1", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
        ).content
        assert reg.pinned_digest(r.ref("local/app", "1.1")) == "sha256:" + hashlib.sha256(body).hexdigest()


def test_tags_are_listed_validated_and_deduplicated(registry_open, images):
    r = registry_open
    with registry_for(r) as reg:
        assert sorted(reg.tags(r.ref("local/app"))) == sorted(
            ["1.0", "1.1", "latest", "2.0", "3.0-v2s2", "3.0-list"]
        )
        assert reg.tags(r.ref("local/nope")) == []
        assert reg.tags(r.ref("local/app", "1.0")) == []  # a name, not a reference
        assert reg.tags("Not A Name") == []


def test_identical_references_are_asked_once(registry_open, images):
    r = registry_open
    with registry_for(r) as reg:
        refs = [r.ref("local/app", "1.0")] * 5 + [r.ref("local/app", "1.1")] * 3
        res = reg.check_many(refs)
        assert reg.requests == 2
        assert set(res) == set(refs)
        again = reg.check_many(refs)  # memory cache
        assert reg.requests == 2
        assert again == res


def test_shared_sqlite_store_answers_a_second_instance(registry_open, images, tmp_path):
    r = registry_open
    refs = [r.ref("local/app", "1.0"), r.ref("local/app", "9.9.9")]
    with Registry(r.config(), store=SQLiteStore(tmp_path / "c.sqlite3")) as first:
        want = first.check_many(refs)
        assert first.requests == 3  # HEAD, HEAD 404 + tag-list probe
    with Registry(r.config(), store=SQLiteStore(tmp_path / "c.sqlite3")) as second:
        assert second.check_many(refs) == want
        assert second.requests == 0


def test_default_store_is_sqlite_under_the_data_dir(registry_open, images, tmp_path, monkeypatch):
    monkeypatch.setenv("PULLABLE_DATA_DIR", str(tmp_path / "data"))
    with Registry(registry_open.config()) as reg:
        assert isinstance(reg.cache.store, SQLiteStore)
        reg.check(registry_open.ref("local/app", "1.0"))
    assert (tmp_path / "data" / "registry-cache.sqlite3").exists()


@pytest.mark.redis
def test_redis_store_when_redis_url_is_set(registry_open, images, redis_url, monkeypatch):
    from bot.registry import RedisStore

    monkeypatch.setenv("REDIS_URL", redis_url)
    ref = registry_open.ref("local/app", "1.1")
    with Registry(registry_open.config()) as first:
        assert isinstance(first.cache.store, RedisStore)
        want = first.check(ref)
        assert first.requests == 1
    with Registry(registry_open.config()) as second:
        assert second.check(ref) == want
        assert second.requests == 0


def test_a_broken_store_costs_speed_not_answers(registry_open, images, monkeypatch):
    from bot.registry import RedisStore

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    with Registry(registry_open.config()) as reg:
        assert isinstance(reg.cache.store, RedisStore)
        assert reg.check(registry_open.ref("local/app", "1.0")).status is Status.OK


def test_endpoint_alias_host(registry_open, images):
    """References may name any host the operator maps to an endpoint (a mirror)."""
    r = registry_open
    with Registry(r.config(host="registry.example.test"), store=MemoryStore()) as reg:
        res = reg.check(r.ref("local/app", "1.0", host="registry.example.test"))
        assert res.status is Status.OK
        assert res.reference == "registry.example.test/local/app:1.0"
        # the real host is not configured: repository-named loopback stays blocked
        assert reg.check(r.ref("local/app", "1.0")).status is Status.BLOCKED


def test_from_file_reads_pullable_config(registry_open, images, tmp_path, monkeypatch):
    path = tmp_path / "pullable.yml"
    path.write_text(registry_open.config_yaml())
    monkeypatch.setenv("PULLABLE_CONFIG", str(path))
    with Registry.from_file(None) as reg:
        assert reg.check(registry_open.ref("local/app", "1.0")).status is Status.OK
    with Registry.from_file(None) as reg2, Registry.from_file(str(path)) as reg3:
        assert reg2.config == reg3.config


# -- htpasswd Basic ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 429, 403, 401, 500])
def test_tags_that_could_not_be_listed_are_no_empty_list(registry_open, images, status):
    """An outage of one repository must not read as "it has no tags" (issue 11 §5)."""
    r = registry_open
    with FailingProxy(r) as proxy:
        config = RegistryConfig.from_mapping(proxy.config_mapping(host=r.host))
        with Registry(config, store=MemoryStore()) as reg:
            assert "1.1" in reg.tags(r.ref("local/app"))
            assert reg.tags(r.ref("local/nope")) == []  # the registry's answer: no such repository
        proxy.failing["local/app"] = status
        # a new run with nothing stored (a run keeps its first answer, the store keeps it fresh)
        failing = pytest.raises(TagsUnavailable, match=f"HTTP {status}")
        with Registry(config, store=MemoryStore()) as reg, failing:
            reg.tags(r.ref("local/app"))
    dead = RegistryConfig.from_mapping({"registries": {r.host: {"endpoint": "http://127.0.0.1:9"}}})
    with Registry(dead, store=MemoryStore()) as reg, pytest.raises(TagsUnavailable):  # nobody listening
        reg.tags(r.ref("local/app"))


@pytest.fixture(scope="module")
def basic_image(registry_basic):
    return registry_basic.push("team/app", "1.0")


def test_basic_auth(registry_basic, basic_image):
    r = registry_basic
    with registry_for(r) as anon:
        assert anon.check(r.ref("team/app", "1.0")).status is Status.AUTH_REQUIRED
        assert anon.check(r.ref("team/nope", "1.0")).status is Status.AUTH_REQUIRED  # nothing leaked
        with pytest.raises(TagsUnavailable, match="HTTP 401"):  # refused: no answer, not "no tags"
            anon.tags(r.ref("team/app"))
    with registry_for(r, credentials=True) as reg:
        res = reg.check_many([r.ref("team/app", "1.0"), r.ref("team/app", "2.0"), r.ref("team/nope", "1.0")])
        assert [v.status for v in res.values()] == [Status.OK, Status.TAG_MISSING, Status.REPO_MISSING]
        assert res[r.ref("team/app", "1.0")].evidence.digest == basic_image
        assert reg.tags(r.ref("team/app")) == ["1.0"]
        before = reg.requests
        reg.check(r.ref("team/app", "1.0", digest=basic_image))
        assert reg.requests == before + 1  # Basic is sent up front once the challenge is known


def test_basic_auth_wrong_password_is_auth_failed(registry_basic, basic_image):
    r = registry_basic
    config = RegistryConfig.from_mapping(
        r.config_mapping(credentials=True), env={"PULLABLE_TEST_PASSWORD": "wrong"}
    )
    with Registry(config, store=MemoryStore()) as reg:
        res = reg.check(r.ref("team/app", "1.0"))
    assert res.status is Status.AUTH_FAILED
    assert res.evidence.http_status == 401


# -- Bearer tokens -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_images(registry_token):
    r = registry_token
    return {
        "public": r.push("pub/app", "1.0"),
        "public2": r.push("pub/app", "1.1"),
        "private": r.push("private/app", "1.0"),
    }


def test_token_auth_anonymous_and_with_credentials(registry_token, token_images):
    r = registry_token
    with registry_for(r) as anon:
        res = anon.check_many(
            [r.ref("pub/app", "1.0"), r.ref("pub/nope", "1.0"), r.ref("private/app", "1.0")]
        )
        assert [v.status for v in res.values()] == [Status.OK, Status.REPO_MISSING, Status.AUTH_REQUIRED]
        private = res[r.ref("private/app", "1.0")].evidence
        assert private.http_status == 401
        assert private.error_code == "insufficient_scope"
    with registry_for(r, credentials=True) as reg:
        res = reg.check(r.ref("private/app", "1.0"))
        assert res.status is Status.OK
        assert res.evidence.digest == token_images["private"]
        assert reg.tags(r.ref("private/app")) == ["1.0"]


def test_token_rejected_credentials_are_auth_failed(registry_token, token_images):
    r = registry_token
    config = RegistryConfig.from_mapping(
        r.config_mapping(credentials=True), env={"PULLABLE_TEST_PASSWORD": "nope"}
    )
    with Registry(config, store=MemoryStore()) as reg:
        assert reg.check(r.ref("private/app", "1.0")).status is Status.AUTH_FAILED


def test_tokens_are_cached_per_scope(registry_token, token_images):
    r = registry_token
    server = r.token_server
    assert server is not None
    with registry_for(r) as reg:
        start = server.requests
        reg.check(r.ref("pub/app", "1.0"))
        assert server.requests == start + 1
        assert reg.requests == 3  # 401, token, HEAD
        reg.check(r.ref("pub/app", "1.1"))  # same scope: the cached token goes up front
        assert server.requests == start + 1
        assert reg.requests == 4
        reg.check(r.ref("pub/app", digest=token_images["public"]))
        assert reg.requests == 5
        reg.tags(r.ref("pub/app"))
        assert server.requests == start + 1
        reg.check(r.ref("private/app", "1.0"))  # new scope: token first, no 401 round trip
        assert server.requests == start + 2


def _push_created(r, repo: str, tag: str, created: str | None, platforms: tuple[str, ...] = ()) -> None:
    """An OCI image whose config says when it was ``created`` (an index when ``platforms``)."""
    import json

    def image(plat: str) -> tuple[bytes, int]:
        os_, arch = plat.split("/")[:2]
        config = {"architecture": arch, "os": os_, "rootfs": {"type": "layers", "diff_ids": []}}
        if created is not None:
            config["created"] = created
        data = json.dumps(config).encode()
        digest = r.push_blob(repo, data)
        body = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest,
                       "size": len(data)},
            "layers": [],
        }).encode()  # fmt: skip
        return body, len(body)

    if not platforms:
        body, _ = image("linux/amd64")
        r.push_manifest(repo, tag, body, "application/vnd.oci.image.manifest.v1+json")
        return
    entries = []
    for plat in platforms:
        body, size = image(plat)
        digest = r.push_manifest(repo, "sha256:" + hashlib.sha256(body).hexdigest(), body,
                                 "application/vnd.oci.image.manifest.v1+json")  # fmt: skip
        os_, arch = plat.split("/")[:2]
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                        "size": size, "platform": {"os": os_, "architecture": arch}})  # fmt: skip
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": entries}).encode()  # fmt: skip
    r.push_manifest(repo, tag, index, "application/vnd.oci.image.index.v1+json")


def test_created_reads_the_image_config(registry_open):
    """The minimum release age needs when an image was built: its config blob's ``created``
    (through the index to a platform's manifest), nanoseconds and offsets allowed."""
    import datetime as dt

    r = registry_open
    _push_created(r, "age/app", "1.0", "2026-12-06T23:59:58.123456789Z")
    _push_created(r, "age/app", "2.0", "2026-12-01T10:00:00+02:00", platforms=("linux/arm64", "linux/amd64"))
    _push_created(r, "age/app", "3.0", None)
    _push_created(r, "age/app", "4.0", "not a date")
    with registry_for(r) as reg:
        assert reg.created(r.ref("age/app", "1.0")) == dt.datetime(2026, 12, 6, 23, 59, 58, 123456, dt.UTC)
        assert reg.created(r.ref("age/app", "2.0")) == dt.datetime(2026, 12, 1, 8, 0, 0, tzinfo=dt.UTC)
        assert reg.created(r.ref("age/app", "3.0")) is None
        assert reg.created(r.ref("age/app", "4.0")) is None
        assert reg.created(r.ref("age/app", "9.9")) is None


def test_when_an_image_was_created_is_kept_by_its_digest(registry_open, tmp_path):
    """A second run (another process: the store is shared) asks the registry nothing more for
    the release age: a config's ``created`` never changes for the bytes a digest names, and a
    config that states no time is an answer too. Another tag of the same bytes costs its check."""
    import datetime as dt

    from bot.registry.cache import SQLiteStore

    r = registry_open
    _push_created(r, "age/kept", "1.0", "2026-12-01T00:00:00Z")
    _push_created(r, "age/kept", "2.0", None)
    store = tmp_path / "cache.sqlite3"

    def run(ref: str) -> tuple[dt.datetime | None, list[str]]:
        with Registry(r.config(), store=SQLiteStore(store)) as reg:
            seen: list[str] = []
            build = reg.client.http.build_request

            def counted(method: str, url: object, **kw: object) -> object:
                seen.append(f"{method} {url}")
                return build(method, url, **kw)  # type: ignore[arg-type]

            reg.client.http.build_request = counted  # type: ignore[assignment,method-assign]
            return reg.created(ref), seen

    when, first = run(r.ref("age/kept", "1.0"))
    assert when == dt.datetime(2026, 12, 1, tzinfo=dt.UTC) and any("/blobs/" in s for s in first)
    assert run(r.ref("age/kept", "1.0")) == (when, [])
    none, first = run(r.ref("age/kept", "2.0"))
    assert none is None and first and run(r.ref("age/kept", "2.0")) == (None, [])
    _push_created(r, "age/kept", "1.1", "2026-12-01T00:00:00Z")  # the very bytes of 1.0
    again, asked = run(r.ref("age/kept", "1.1"))
    assert again == when and [a.split()[0] for a in asked] == ["HEAD"]  # its check; the time is kept
