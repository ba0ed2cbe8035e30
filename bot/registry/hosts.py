"""What the operator configuration and a Docker login both speak: a registry host's normalised
name, credentials for one host, and the error for bad configuration. Kept apart from
:mod:`bot.registry.config` so that :mod:`bot.registry.dockerconfig`, which the config reads, can
use them without importing the config back (no import circle).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

__all__ = ["DOCKER_HUB", "HUB_ALIASES", "ConfigError", "Credentials", "normalise_host"]

DOCKER_HUB = "docker.io"
HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


class ConfigError(ValueError):
    """Bad operator configuration; the message starts with the offending key."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and secret for exactly one registry host (never printed)."""

    username: str
    password: str = field(repr=False)


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
    if host in HUB_ALIASES:
        return DOCKER_HUB
    return host if not port or port == "443" else f"{host}:{port}"
