"""Docker's login file (``config.json``): ``auths``, ``credsStore`` and ``credHelpers``.

The CLI reads the user's own file (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``)
so it sees what ``docker pull`` sees, as crane, skopeo and Trivy do; the App reads only the file
its operator names (``docker_config:``). For a host, Docker asks ``credHelpers[host]``, else
``credsStore``, else uses ``auths[host]``; so do we, except that a helper which is missing, fails
or knows nothing about the host falls back to ``auths`` (with a warning, never silently).

A helper is run as the docker-credential-helpers protocol says: ``docker-credential-<name> get``
with the server URL on stdin (``https://index.docker.io/v1/`` for Docker Hub, else the host),
answering JSON ``{"ServerURL", "Username", "Secret"}``. Credentials are looked up per exact
normalised host, once, and only when a reference on that host is checked.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.registry.auth import register_secret
from bot.registry.hosts import ConfigError, Credentials, normalise_host

log = logging.getLogger(__name__)

HUB_SERVER = "https://index.docker.io/v1/"
HELPER_TIMEOUT_S = 30.0
_HELPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NOT_FOUND = "credentials not found"

Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Login:
    """What a Docker config says about credentials, parsed and validated (no helper run yet)."""

    path: str
    auths: Mapping[str, Credentials] = field(default_factory=dict)
    helpers: Mapping[str, str] = field(default_factory=dict)  # host -> helper name
    store: str | None = None  # credsStore


def user_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json`` (Docker's own lookup)."""
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def read(path: str | os.PathLike[str], where: str = "docker_config") -> Login:
    """Parse a Docker config; every mistake is a ``ConfigError`` naming the key."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(f"{where}: {path} is not JSON") from None
    top = _mapping(data, where)
    auths: dict[str, Credentials] = {}
    for key, value in _mapping(top.get("auths") or {}, f"{where}.auths").items():
        at = f"{where}.auths.{key}"
        entry = _mapping(value, at)
        if entry.get("auth"):
            try:
                user, sep, password = (
                    base64.b64decode(str(entry["auth"]), validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                raise ConfigError(f"{at}.auth: not base64 of user:password") from None
            if not sep:
                raise ConfigError(f"{at}.auth: not base64 of user:password")
        elif entry.get("username") and entry.get("password"):
            user, password = str(entry["username"]), str(entry["password"])
        else:
            continue  # an empty entry (a helper holds the secret) or an identity token: none here
        register_secret(password)
        register_secret(user, password)
        auths[normalise_host(str(key), at)] = Credentials(user, password)
    helpers: dict[str, str] = {}
    for key, name in _mapping(top.get("credHelpers") or {}, f"{where}.credHelpers").items():
        at = f"{where}.credHelpers.{key}"
        helpers[normalise_host(str(key), at)] = _helper_name(name, at)
    store = top.get("credsStore")
    store = _helper_name(store, f"{where}.credsStore") if store else None
    return Login(str(path), auths, helpers, store)


class Source:
    """Credentials per host from one Docker config, asking its helpers lazily and once per host."""

    def __init__(self, login: Login, warn: Warn | None = None) -> None:
        self.login = login
        self.warn = warn or log.warning
        self._answers: dict[str, Credentials | None] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def get(self, host: str) -> Credentials | None:
        """``Credentials`` for the exact normalised ``host``, or None."""
        with self._lock:
            if host not in self._answers:
                self._answers[host] = self._lookup(host)
            return self._answers[host]

    def _lookup(self, host: str) -> Credentials | None:
        helper = self.login.helpers.get(host) or self.login.store
        if helper is not None:
            creds = self._ask(helper, host)
            if creds is not None:
                return creds
        return self.login.auths.get(host)

    def _ask(self, helper: str, host: str) -> Credentials | None:
        exe = shutil.which(f"docker-credential-{helper}")
        if exe is None:
            where = f"{self.login.path}: credential helper docker-credential-{helper}"
            self._once(helper, f"{where} is not on PATH; its registries are asked without its credentials")
            return None
        server = HUB_SERVER if host == "docker.io" else host
        try:
            done = subprocess.run(  # noqa: S603 - the user's own helper, named by their own config
                [exe, "get"],
                input=server,
                capture_output=True,
                text=True,
                timeout=HELPER_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._once(
                f"{helper}:{host}", f"docker-credential-{helper} failed for {host}: {type(exc).__name__}"
            )
            return None
        if done.returncode != 0:
            said = (done.stdout.strip() or done.stderr.strip()).splitlines()
            if not said or _NOT_FOUND not in said[0].lower():
                first = said[0][:200] if said else f"exit status {done.returncode}"
                self._once(f"{helper}:{host}", f"docker-credential-{helper} failed for {host}: {first}")
            return None
        try:
            answer = json.loads(done.stdout)
            user, secret = str(answer["Username"]), str(answer["Secret"])
        except (ValueError, KeyError, TypeError):
            self._once(f"{helper}:{host}", f"docker-credential-{helper} gave an unreadable answer for {host}")
            return None
        if not secret:
            return None
        if user == "<token>":
            what = f"docker-credential-{helper} holds an identity token for {host}"
            self._once(f"{helper}:{host}", f"{what}, which Pullable does not use; asking without credentials")
            return None
        register_secret(secret)
        register_secret(user, secret)
        return Credentials(user, secret)

    def _once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.warn(message)


def _helper_name(value: object, where: str) -> str:
    if not isinstance(value, str) or not _HELPER_NAME.match(value):
        raise ConfigError(f"{where}: {value!r} is not a credential helper name (docker-credential-<name>)")
    return value


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: must be a mapping")
    return value
