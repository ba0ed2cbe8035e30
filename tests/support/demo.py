"""The stand-in registries of ``scripts/demo``: what the live registries would hold for the sample
repository in ``examples/`` (minus the images that rotted), served by Debian's docker-registry.

Shared by the demo and by the test of the installed wheel, so both run against the same world.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.registry import LocalRegistry

# What the live registries hold (repository -> tags). Equal content means equal digests, so
# "latest" can be traced to the versioned tag it points at.
LIVE: dict[str, list[str]] = {
    "library/nginx": ["1.25.4", "1.27.0", "1.27.3", "1.27", "latest=1.27.3"],
    "library/busybox": ["1.36.0", "1.36.1", "latest=1.36.1"],
    "library/redis": ["7.2", "7.2.5", "7.2.6", "latest=7.2.6"],
    "library/python": ["3.12", "3.12-slim", "3.12.7-slim"],
    "library/node": ["18", "18.20.4-alpine", "18.20.5-alpine"],
    "library/postgres": ["13", "13.16", "13.18"],
    "library/alpine": ["3", "3.20.3"],
    "docker/dockerfile": ["1", "1.10.0"],
    "alpine/kubectl": ["1.30.6", "1.31.0", "1.31.4", "1.32.1"],
    "nginx/nginx-prometheus-exporter": ["1.0.3", "1.1.0"],
    "fluent/fluent-bit": ["3.0.7", "3.1.9"],
    "bitnamilegacy/postgresql": ["16", "16.4.0-debian-12-r0"],
    "bitnamilegacy/redis": ["7.2"],
    "bitnamilegacy/memcached": ["1.6.29"],
    "bitnamilegacy/nginx": ["1.25.4"],
    "bitnamilegacy/nginx-exporter": ["1.3.0-debian-12-r2"],
    "bitnamilegacy/kubectl": ["1.30"],  # COPY --from keeps Bitnami's paths: the frozen copy
    "prometheus/memcached-exporter": ["v0.14.4"],  # quay.io; the tag comes from role defaults
    "pause": ["3.9", "3.10"],  # registry.k8s.io/pause
}
HOSTS = ["docker.io", "registry.k8s.io", "quay.io", "ghcr.io"]


@contextmanager
def registries(work: Path) -> Iterator[Path]:
    """Start the stand-in registries under ``work``; yields the operator config that points
    Docker Hub, registry.k8s.io, quay.io and ghcr.io at them (and k8s.gcr.io at an empty one)."""
    (work / "live").mkdir(parents=True)
    (work / "frozen").mkdir()
    live = LocalRegistry(work / "live")
    try:
        frozen = LocalRegistry(work / "frozen")  # k8s.gcr.io: answers, but holds nothing
    except BaseException:
        live.stop()
        raise
    try:
        for repo, tags in LIVE.items():
            for spec in tags:
                tag, _, same_as = spec.partition("=")
                live.push(repo, tag, content=f"{repo}:{same_as or tag}")
        config = work / "pullable.yml"
        lines = ["registries:"]
        lines += [f"  {h}:\n    endpoint: {live.url}" for h in HOSTS]
        lines += [f"  k8s.gcr.io:\n    endpoint: {frozen.url}"]
        config.write_text("\n".join(lines) + "\n")
        yield config
    finally:
        live.stop()
        frozen.stop()
