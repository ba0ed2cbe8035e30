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
docker_config: /etc/pullable/docker-config.json  # optional Docker config: auths, credHelpers, credsStore
rules: [/etc/pullable/rules]                     # more rule directories, merged with the built-ins
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

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from bot.registry import dockerconfig
from bot.registry.auth import register_secret
from bot.registry.guard import Network
from bot.registry.hosts import DOCKER_HUB, HUB_ALIASES, ConfigError, Credentials, normalise_host

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_JOB_TIMEOUT_S = 900.0
DEFAULT_MAX_REFERENCES = 5_000
DEFAULT_MAX_REQUESTS_PER_HOST = 10_000


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
    rules: tuple[str, ...] = ()  # operator rule directories or files (the rule table reads them)
    # Docker configs whose helpers are asked lazily, per host, for hosts without operator credentials.
    logins: tuple[dockerconfig.Source, ...] = field(default=(), compare=False, repr=False)
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
        return cls.from_mapping(data if data is not None else {}, base=Path(path).parent)

    @classmethod
    def from_mapping(
        cls, data: object, env: Mapping[str, str] | None = None, base: Path | None = None
    ) -> RegistryConfig:
        """Validate a parsed config; ``env`` supplies ``password_env`` values (os.environ);
        relative ``rules`` paths are taken from ``base`` (the config file's directory)."""
        env = os.environ if env is None else env
        top = _mapping(data, "config")
        _known(top, "", {"registries", "docker_config", "network", "rules"})
        auths: dict[str, Credentials] = {}
        logins: tuple[dockerconfig.Source, ...] = ()
        docker_config = top.get("docker_config")
        if docker_config is not None:
            if not isinstance(docker_config, str) or not docker_config:
                raise ConfigError("docker_config: must be a file path")
            login = dockerconfig.read(docker_config)
            auths = dict(login.auths)
            if login.helpers or login.store:
                logins = (dockerconfig.Source(login),)
        rules = _rule_paths(top.get("rules"), base)
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
            rules,
            logins,
            job_timeout_s=float(job),
            max_references=_count(network, "max_references", DEFAULT_MAX_REFERENCES),
            max_requests_per_host=_count(network, "max_requests_per_host", DEFAULT_MAX_REQUESTS_PER_HOST),
        )

    def with_docker_login(self, path: str | Path, warn: dockerconfig.Warn | None = None) -> RegistryConfig:
        """This configuration plus a Docker login file (the CLI user's own): its ``auths`` and
        helpers serve the hosts the operator configuration gives no credentials. A missing file
        changes nothing; a broken one is a :class:`ConfigError`."""
        if not Path(path).is_file():
            return self
        login = dockerconfig.read(path, where=str(path))
        return replace(self, logins=(*self.logins, dockerconfig.Source(login, warn)))

    def host(self, domain: str) -> HostConfig | None:
        """The entry for a reference's domain, matched exactly (docker.io aliases folded); a
        host without configured credentials gets those of a Docker login, if one has them."""
        key = DOCKER_HUB if domain in HUB_ALIASES else domain
        entry = self.registries.get(key)
        if entry is not None and entry.credentials is not None:
            return entry
        for source in self.logins:
            creds = source.get(key)
            if creds is not None:
                return HostConfig(key, entry.endpoint if entry else None, creds)
        return entry


def load_docker_config(path: str) -> dict[str, Credentials]:
    """Credentials from a Docker ``config.json`` ``auths`` map (``auth`` or username/password);
    its helpers are asked through :class:`~bot.registry.dockerconfig.Source`."""
    return dict(dockerconfig.read(path).auths)


def _rule_paths(value: object, base: Path | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        raise ConfigError("rules: must be a directory path or a list of them")
    out = []
    for i, item in enumerate(items):
        p = Path(item).expanduser()
        if not p.is_absolute() and base is not None:
            p = base / p
        if not p.exists():
            raise ConfigError(f"rules[{i}]: {item}: no such directory or file")
        out.append(str(p))
    return tuple(out)


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
