"""Pullable end to end on ``examples/``, with no internet: a local registry stands in for Docker
Hub, registry.k8s.io and the others, holding the images the sample repository names — except the
ones that rotted (retired Bitnami images, the frozen k8s.gcr.io, tags that never existed).

Run through ``scripts/demo``, which installs what this needs first.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.registry import LocalRegistry  # noqa: E402 - after the path is set

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


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pullable-demo-") as tmp:
        work = Path(tmp)
        (work / "live").mkdir()
        (work / "frozen").mkdir()
        live = LocalRegistry(work / "live")
        frozen = LocalRegistry(work / "frozen")  # k8s.gcr.io: answers, but holds nothing
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
            repo = work / "examples"
            shutil.copytree(ROOT / "examples", repo)
            exe = str(Path(sys.executable).parent / "pullable")
            env_note = f"(registries served from {live.url}; operator config {config})"
            print(f"$ pullable scan examples --config pullable.yml   {env_note}\n", flush=True)
            subprocess.run([exe, "scan", str(repo), "--config", str(config)], check=False)  # noqa: S603
            print("\n$ pullable fix examples --config pullable.yml --dry-run\n", flush=True)
            subprocess.run([exe, "fix", str(repo), "--config", str(config), "--dry-run"], check=False)  # noqa: S603
        finally:
            live.stop()
            frozen.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
