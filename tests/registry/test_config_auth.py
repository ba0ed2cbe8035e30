"""Operator configuration, challenge parsing, the token cache, and secrets kept out of logs."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from bot.model import Evidence, Resolution, Status
from bot.registry import ConfigError, MemoryStore, Registry, RegistryConfig, SQLiteStore
from bot.registry.auth import TokenCache, parse_challenges, realm_may_receive, redact, register_secret
from bot.registry.cache import ResultCache, decode, encode


def test_the_documented_configuration(tmp_path):
    path = tmp_path / "pullable.yml"
    path.write_text(
        "registries:\n"
        "  docker.io:\n"
        "    endpoint: https://harbor.internal/v2-proxy\n"
        "    username: robot$pullable\n"
        "    password_env: HARBOR_TOKEN\n"
        "  registry.gitlab.com:\n"
        "    username: deploy-token\n"
        "    password_env: GITLAB_REGISTRY_TOKEN\n"
        "network:\n"
        '  allow: ["10.20.0.0/16"]\n'
        "  timeout_s: 10\n"
    )
    env = {"HARBOR_TOKEN": "harbor-secret", "GITLAB_REGISTRY_TOKEN": "gitlab-secret"}
    import yaml

    config = RegistryConfig.from_mapping(yaml.safe_load(path.read_text()), env=env)
    hub = config.host("docker.io")
    assert hub is not None and hub.endpoint == "https://harbor.internal/v2-proxy"
    assert hub.credentials is not None and hub.credentials.username == "robot$pullable"
    assert config.host("registry.gitlab.com").credentials.password == "gitlab-secret"  # type: ignore[union-attr]
    assert [str(n) for n in config.allow] == ["10.20.0.0/16"]
    assert config.timeout_s == 10
    assert "harbor-secret" not in repr(config)
    with Registry(config, store=MemoryStore()) as reg:
        url = reg.client.endpoint("docker.io").url("/v2/library/alpine/manifests/3")
        assert str(url) == "https://harbor.internal/v2-proxy/v2/library/alpine/manifests/3"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"registry": {}}, "registry"),
        ({"registries": {"ghcr.io": {"passwd_env": "X"}}}, "registries.ghcr.io.passwd_env"),
        ({"registries": {"ghcr.io": {"username": "u"}}}, "registries.ghcr.io.password_env"),
        ({"registries": {"ghcr.io": {"password_env": "UNSET_VAR"}}}, "registries.ghcr.io.username"),
        (
            {"registries": {"ghcr.io": {"username": "u", "password_env": "UNSET_VAR"}}},
            "registries.ghcr.io.password_env",
        ),
        ({"registries": {"ghcr.io": {"endpoint": "ftp://x"}}}, "registries.ghcr.io.endpoint"),
        ({"registries": {"ghcr.io": {"endpoint": "https://u:p@x"}}}, "registries.ghcr.io.endpoint"),
        ({"registries": {"ghcr.io": "yes"}}, "registries.ghcr.io"),
        ({"registries": {"bad host": {}}}, "registries.bad host"),
        ({"registries": {"docker.io": {}, "index.docker.io": {}}}, "registries.index.docker.io"),
        ({"network": {"allow": ["10.0.0.0/33"]}}, "network.allow[0]"),
        ({"network": {"allow": "10.0.0.0/8"}}, "network.allow"),
        ({"network": {"timeout_s": "soon"}}, "network.timeout_s"),
        ({"network": {"timeout_s": 0}}, "network.timeout_s"),
        ({"network": {"proxy": "x"}}, "network.proxy"),
        ({"docker_config": "/nonexistent/config.json"}, "docker_config"),
        ([1, 2], "config"),
    ],
)
def test_bad_configuration_names_the_key(data, key):
    with pytest.raises(ConfigError) as err:
        RegistryConfig.from_mapping(data, env={})
    assert str(err.value).startswith(key + ":")


def test_bad_yaml_and_missing_files(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("registries: [\n")
    with pytest.raises(ConfigError, match=r"^config:"):
        Registry.from_file(str(bad))
    with pytest.raises(ConfigError, match=r"^config:"):
        Registry.from_file(str(tmp_path / "missing.yml"))


def test_docker_config_auths(tmp_path):
    auth = base64.b64encode(b"hubuser:hub-pass-1").decode()
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": auth},
                    "registry.example.com:443": {"username": "ex", "password": "ex-pass-1"},
                    "ghcr.io": {"identitytoken": "ignored"},
                },
                "credsStore": "desktop",
            }
        )
    )
    config = RegistryConfig.from_mapping({"docker_config": str(path)}, env={})
    assert config.host("docker.io").credentials.username == "hubuser"  # type: ignore[union-attr]
    assert config.host("registry-1.docker.io").credentials.password == "hub-pass-1"  # type: ignore[union-attr]
    assert config.host("registry.example.com").credentials.username == "ex"  # type: ignore[union-attr]
    assert config.host("ghcr.io") is None
    path.write_text(json.dumps({"auths": {"ghcr.io": {"auth": "!!notbase64"}}}))
    with pytest.raises(ConfigError, match=r"^docker_config\.auths\.ghcr\.io\.auth:"):
        RegistryConfig.from_mapping({"docker_config": str(path)}, env={})


def test_operator_credentials_win_over_docker_config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"ghcr.io": {"username": "a", "password": "docker-cfg-pw"}}}))
    config = RegistryConfig.from_mapping(
        {"docker_config": str(path), "registries": {"ghcr.io": {"username": "b", "password_env": "P"}}},
        env={"P": "operator-pw"},
    )
    assert config.host("ghcr.io").credentials.username == "b"  # type: ignore[union-attr]


def test_challenge_parsing():
    [bearer] = parse_challenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"'
    )
    assert bearer.scheme == "bearer"
    assert bearer.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:a/b:pull,push",
    }
    several = parse_challenges('Bearer realm="https://codeberg.org/v2/token",scope="*", Basic realm="Gitea"')
    assert [(c.scheme, c.params) for c in several] == [
        ("bearer", {"realm": "https://codeberg.org/v2/token", "scope": "*"}),
        ("basic", {"realm": "Gitea"}),
    ]
    assert parse_challenges('Basic realm="a \\"quoted\\" realm", charset=UTF-8')[0].params == {
        "realm": 'a "quoted" realm',
        "charset": "UTF-8",
    }
    assert parse_challenges("") == []
    assert parse_challenges(",,,") == []


def test_realm_credential_pairs():
    assert realm_may_receive("registry-1.docker.io", "auth.docker.io")
    assert realm_may_receive("ghcr.io", "ghcr.io")
    assert realm_may_receive("registry.example.com", "REGISTRY.example.com")
    assert not realm_may_receive("registry.example.com", "evil.example")
    assert not realm_may_receive("registry-1.docker.io", "auth.docker.io.evil.net")
    assert realm_may_receive("127.0.0.1", "127.0.0.1", trusted_host="127.0.0.1")


def test_token_cache_honours_expires_in_with_a_60s_floor():
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    cache.put(("r", "s", "a", ""), "short-token", 1)
    cache.put(("r", "s", "b", ""), "long-token", 600)
    cache.put(("r", "s", "c", ""), "no-expiry-token", None)
    cache.put(("r", "s", "a", "user"), "user-token", 600)
    now[0] += 50
    assert cache.get(("r", "s", "a", "")) == "short-token"
    assert cache.get(("r", "s", "c", "")) == "no-expiry-token"
    now[0] += 20
    assert cache.get(("r", "s", "a", "")) is None
    assert cache.get(("r", "s", "c", "")) is None
    assert cache.get(("r", "s", "b", "")) == "long-token"
    assert cache.get(("r", "s", "a", "user")) == "user-token"  # anonymous and user tokens kept apart
    now[0] += 600
    assert cache.get(("r", "s", "b", "")) is None


def test_redaction():
    register_secret("hunter2-password")
    register_secret("alice", "hunter2-password")
    b64 = base64.b64encode(b"alice:hunter2-password").decode()
    text = redact(
        f"pw=hunter2-password auth={b64} Authorization: Bearer eyJhbGciOi.abc.def https://bob:pw@host/x"
    )
    assert "hunter2" not in text
    assert b64 not in text
    assert "eyJhbGciOi" not in text
    assert "bob:pw" not in text


def test_no_secret_reaches_the_logs(registry_basic, registry_token, caplog):
    """C1: capture everything with httpx/httpcore at DEBUG; no password, base64 or token."""
    registry_basic.push("logs/app", "1.0")
    registry_token.push("private/logs", "1.0")
    caplog.set_level(logging.DEBUG)
    found_tokens: list[str] = []
    for r, repo in ((registry_basic, "logs/app"), (registry_token, "private/logs")):
        with Registry(r.config(credentials=True), store=MemoryStore()) as reg:
            logging.getLogger("httpx").setLevel(logging.DEBUG)
            logging.getLogger("httpcore").setLevel(logging.DEBUG)
            assert reg.check(r.ref(repo, "1.0")).status is Status.OK
            found_tokens += [t for t, _ in reg.client.tokens._tokens.values()]
            logging.getLogger("bot").warning("careless: %s %s", r.password, reg.client.config)
    assert found_tokens
    assert "HTTP Request" in caplog.text  # httpx really logged
    for secret in [
        "testpassword",
        base64.b64encode(b"testuser:testpassword").decode(),
        *found_tokens,
    ]:
        assert secret not in caplog.text


def test_cache_round_trip_and_store_ttl(tmp_path):
    res = Resolution(
        "ghcr.io/o/r:1",
        Status.OK,
        Evidence(
            200, None, "sha256:" + "a" * 64, "application/json", "2026-01-01T00:00:00Z", "x", ("linux/amd64",)
        ),
    )
    assert decode(encode(res)) == res
    assert decode("{not json") is None
    store = SQLiteStore(tmp_path / "c.sqlite3")
    store.set_many({"k1": "v1"}, ttl=60)
    store.set_many({"k2": "v2"}, ttl=-1)  # already expired
    assert store.get_many(["k1", "k2", "k3"]) == {"k1": "v1"}
    cache = ResultCache(store)
    transient = Resolution("ghcr.io/o/r:2", Status.UNREACHABLE, Evidence(detail="timeout"))
    cache.put_many({"a": res, "b": transient})
    assert ResultCache(SQLiteStore(tmp_path / "c.sqlite3")).get_many(["a", "b"]) == {"a": res}
    assert cache.get_many(["a", "b"]) == {"a": res, "b": transient}  # memory keeps transient for the run
    assert ResultCache.key("r", "endpoint\0user-a") != ResultCache.key("r", "endpoint\0user-b")
