"""Operator configuration (``--config FILE`` or ``PULLABLE_CONFIG``).

```yaml
registries:
  docker.io:
    endpoint: https://harbor.internal/v2-proxy   # where this host's /v2/ API is served (a mirror)
    username: robot$pullable
    password_env: HARBOR_TOKEN                   # the password is read from this variable
  registry.gitlab.com:
    username: deploy-token
    password_env: GITLAB_REGISTRY_TOKEN
docker_config: /etc/pullable/docker-config.json  # optional Docker `auths` file
network:
  allow: ["10.20.0.0/16"]                        # private ranges repository-named hosts may reach
  timeout_s: 10                                  # per operation; a reference gets 3x in total
  job_timeout_s: 900                             # every registry request of one scan, in total
  max_references: 5000                           # distinct references checked per scan
  max_requests_per_host: 10000                   # requests to one registry host per scan
```

``endpoint`` serves the same repository paths as the host it stands for: ``/v2/<name>/...`` is
appended to it. Endpoints are trusted (any port, plain http allowed, no address check), which is
how tests point Pullable at ``http://127.0.0.1:PORT``. Credentials are matched to the exact
normalised host only (``docker.io``, ``index.docker.io`` and ``registry-1.docker.io`` are one
host). The caps bound what one repository can make Pullable do (a 700 KB compose file can name
20,000 images): references past ``max_references`` are reported ``unchecked``, requests past
``max_requests_per_host`` fail as ``unreachable`` (code ``HOST_CAP``), and past ``job_timeout_s``
as ``unreachable`` (code ``JOB_DEADLINE``); the findings say which cap was hit. Every mistake
raises :class:`ConfigError` naming the key, so the CLI can exit 2 with it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.registry.auth import register_secret
from bot.registry.guard import Network

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_JOB_TIMEOUT_S = 900.0
DEFAULT_MAX_REFERENCES = 5_000
DEFAULT_MAX_REQUESTS_PER_HOST = 10_000


class ConfigError(ValueError):
    """Bad operator configuration; the message starts with the offending key."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and secret for exactly one registry host (never printed)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class HostConfig:
    """One ``registries.<host>`` entry."""

    host: str
    endpoint: str | None = None
    credentials: Credentials | None = None


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """Everything the operator can set; the defaults contact public registries anonymously."""

    registries: Mapping[str, HostConfig] = field(default_factory=dict)
    docker_config: str | None = None
    allow: tuple[Network, ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S
    job_timeout_s: float = DEFAULT_JOB_TIMEOUT_S
    max_references: int = DEFAULT_MAX_REFERENCES
    max_requests_per_host: int = DEFAULT_MAX_REQUESTS_PER_HOST

    @classmethod
    def load(cls, path: str) -> RegistryConfig:
        """Read a YAML file (operator-owned, so a plain safe load is fine)."""
        import yaml

        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh)
        except OSError as exc:
            raise ConfigError(f"config: cannot read {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config: {path} is not valid YAML: {exc}") from None
        return cls.from_mapping(data if data is not None else {})

    @classmethod
    def from_mapping(cls, data: object, env: Mapping[str, str] | None = None) -> RegistryConfig:
        """Validate a parsed config; ``env`` supplies ``password_env`` values (os.environ)."""
        env = os.environ if env is None else env
        top = _mapping(data, "config")
        _known(top, "", {"registries", "docker_config", "network"})
        auths: dict[str, Credentials] = {}
        docker_config = top.get("docker_config")
        if docker_config is not None:
            if not isinstance(docker_config, str) or not docker_config:
                raise ConfigError("docker_config: must be a file path")
            auths = load_docker_config(docker_config)
        hosts: dict[str, HostConfig] = {}
        for key, value in _mapping(top.get("registries") or {}, "registries").items():
            where = f"registries.{key}"
            host = normalise_host(str(key), where)
            if host in hosts:
                raise ConfigError(f"{where}: the same host as another entry ({host})")
            entry = _mapping(value or {}, where)
            _known(entry, where + ".", {"endpoint", "username", "password_env"})
            endpoint = entry.get("endpoint")
            if endpoint is not None:
                endpoint = _endpoint(endpoint, where + ".endpoint")
            creds = _credentials(entry, where, env) or auths.get(host)
            hosts[host] = HostConfig(host, endpoint, creds)
        for host, creds in auths.items():
            hosts.setdefault(host, HostConfig(host, None, creds))
        network = _mapping(top.get("network") or {}, "network")
        _known(
            network,
            "network.",
            {"allow", "timeout_s", "job_timeout_s", "max_references", "max_requests_per_host"},
        )
        allow_raw = network.get("allow") or []
        if not isinstance(allow_raw, list):
            raise ConfigError("network.allow: must be a list of networks")
        allow: list[Network] = []
        for i, item in enumerate(allow_raw):
            try:
                allow.append(ipaddress.ip_network(str(item), strict=False))
            except ValueError:
                raise ConfigError(f"network.allow[{i}]: {item!r} is not a network") from None
        timeout = network.get("timeout_s", DEFAULT_TIMEOUT_S)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 300:
            raise ConfigError("network.timeout_s: must be a number of seconds between 0 and 300")
        job = network.get("job_timeout_s", DEFAULT_JOB_TIMEOUT_S)
        if isinstance(job, bool) or not isinstance(job, int | float) or not 0 < job <= 86_400:
            raise ConfigError("network.job_timeout_s: must be a number of seconds between 0 and 86400")
        return cls(
            hosts,
            docker_config,
            tuple(allow),
            float(timeout),
            float(job),
            _count(network, "max_references", DEFAULT_MAX_REFERENCES),
            _count(network, "max_requests_per_host", DEFAULT_MAX_REQUESTS_PER_HOST),
        )

    def host(self, domain: str) -> HostConfig | None:
        """The entry for a reference's domain, matched exactly (docker.io aliases folded)."""
        key = DOCKER_HUB if domain in _HUB_ALIASES else domain
        return self.registries.get(key)


def normalise_host(text: str, where: str) -> str:
    """Lower-case, IDNA, no scheme/path, no default port; Docker Hub's aliases become docker.io."""
    raw = text.strip()
    if "://" in raw:
        url = httpx.URL(raw)
        raw = url.netloc.decode("ascii")
    else:
        raw = raw.split("/", 1)[0]
    if not raw or any(c.isspace() or c in "@?#" for c in raw):
        raise ConfigError(f"{where}: {text!r} is not a registry host")
    host, _, port = raw.rpartition(":") if raw.count(":") == 1 else (raw, "", "")
    if port and not port.isdigit():
        raise ConfigError(f"{where}: {text!r} has a bad port")
    try:
        host = host.lower().encode("idna").decode("ascii") if not host.startswith("[") else host.lower()
    except UnicodeError:
        raise ConfigError(f"{where}: {text!r} is not a valid host name") from None
    if host in _HUB_ALIASES:
        return DOCKER_HUB
    return host if not port or port == "443" else f"{host}:{port}"


def load_docker_config(path: str) -> dict[str, Credentials]:
    """Credentials from a Docker ``config.json`` ``auths`` map (``auth`` or username/password)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ConfigError(f"docker_config: cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(f"docker_config: {path} is not JSON") from None
    auths = _mapping(data, "docker_config").get("auths") or {}
    out: dict[str, Credentials] = {}
    for key, value in _mapping(auths, "docker_config.auths").items():
        where = f"docker_config.auths.{key}"
        entry = _mapping(value, where)
        if entry.get("auth"):
            try:
                user, sep, password = (
                    base64.b64decode(str(entry["auth"]), validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                raise ConfigError(f"{where}.auth: not base64 of user:password") from None
            if not sep:
                raise ConfigError(f"{where}.auth: not base64 of user:password")
        elif entry.get("username") and entry.get("password"):
            user, password = str(entry["username"]), str(entry["password"])
        else:
            continue  # identity tokens and helpers are not supported; anonymous then
        register_secret(password)
        register_secret(user, password)
        out[normalise_host(str(key), where)] = Credentials(user, password)
    return out


def _credentials(entry: Mapping[str, Any], where: str, env: Mapping[str, str]) -> Credentials | None:
    username, password_env = entry.get("username"), entry.get("password_env")
    if username is None and password_env is None:
        return None
    if not isinstance(username, str) or not username:
        raise ConfigError(f"{where}.username: required with password_env")
    if not isinstance(password_env, str) or not password_env:
        raise ConfigError(f"{where}.password_env: required with username (an environment variable name)")
    password = env.get(password_env)
    if not password:
        raise ConfigError(f"{where}.password_env: environment variable {password_env} is not set")
    register_secret(password)
    register_secret(username, password)
    return Credentials(username, password)


def _endpoint(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: must be an http(s) URL")
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        raise ConfigError(f"{where}: {value!r} is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"{where}: must be an http(s) URL")
    if url.userinfo or url.query or url.fragment:
        raise ConfigError(f"{where}: no credentials, query or fragment (use username/password_env)")
    return str(url).rstrip("/")


def _count(network: Mapping[str, Any], key: str, default: int) -> int:
    value = network.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"network.{key}: must be a whole number above 0")
    return value


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: must be a mapping")
    return value


def _known(entry: Mapping[str, Any], prefix: str, keys: set[str]) -> None:
    for key in entry:
        if key not in keys:
            raise ConfigError(f"{prefix}{key}: unknown key (expected one of {', '.join(sorted(keys))})")
