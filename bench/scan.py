"""Scan speed, memory and linearity over generated trees, every file read (issue 14 §1).

For each generated tree it prints wall time, files/s, MB/s and peak RSS, in one process and in
the contained pool (``bot.scan.sandbox``: two workers, what big CLI scans and the App use), plus
CPU seconds (this process and the workers) so figures stay comparable on a loaded machine, and
microseconds per file and per MB so a cost that grows faster than the tree shows.

Trees: ``mixed`` (manifests, values, compose, Dockerfiles, workflows, sources, docs) at 1k, 10k
and 50k files; ``install`` (10k mixed files plus four 2-MB multi-document install.yaml files,
CRDs first, as argo-cd's manifests/); ``gitops`` (about 2,400 files and 17 MB of YAML, the shape of
the repository performance.md measured: Renovate 18.2 s, libyaml compose of the image documents
0.19 s, walk and read 0.05 s).

Targets: at least 20x Renovate on the gitops tree (under 0.9 s) with every file read, peak RSS
under 150 MB per process, cost per file and per MB flat from 1k to 50k files.

    python bench/scan.py              # mixed 1k, 10k, 50k + install + gitops (about a minute)
    python bench/scan.py --short      # mixed 1k + install (10k files) + gitops (CI)
    python bench/scan.py PATH         # one existing directory
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{i}
  labels: {{app: svc-{i}}}
spec:
  replicas: 2
  template:
    spec:
      initContainers:
        - name: init
          image: busybox:1.36
          command: ["sh", "-c", "echo init"]
      containers:
        - name: app
          image: registry.example.com/team/svc-{i}:1.{i}.0
          ports: [{{containerPort: 8080}}]
          env:
            - name: MODE
              value: production
"""
CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg-{i}
data:
  settings.json: |
    {{"feature": {i}, "enabled": true, "items": [1, 2, 3]}}
  level: info
"""
VALUES = """global:
  imageRegistry: ""
image:
  registry: docker.io
  repository: bitnami/app-{i}
  tag: 1.{i}.3-debian-12-r1
  digest: ""
resources:
  limits: {{cpu: 100m, memory: 128Mi}}
"""
COMPOSE = """services:
  web:
    image: ${{WEB_IMAGE:-nginx:1.27}}
    ports: ["80:80"]
  db:
    image: postgres:16.{i}
"""
DOCKERFILE = """# syntax=docker/dockerfile:1
ARG BASE=python:3.12-slim
FROM ${{BASE}} AS build
RUN pip install app=={i}
FROM gcr.io/distroless/python3
COPY --from=build /app /app
"""
PYTHON = '''"""Module {i}."""


def f{i}(x: int) -> int:
    return x * {i}
'''
MARKDOWN = "# Doc {i}\n\nSome text about image processing and repositories.\n" * 3
WORKFLOW = """name: ci-{i}
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    container: node:20
    steps:
      - uses: actions/checkout@v4
      - run: docker pull redis:7.{i}
"""

KINDS = [
    ("k8s/deploy-{i}.yaml", DEPLOYMENT, 25),
    ("k8s/config-{i}.yaml", CONFIGMAP, 20),
    ("charts/c{i}/values.yaml", VALUES, 10),
    ("compose/{i}/docker-compose.yml", COMPOSE, 5),
    ("images/{i}/Dockerfile", DOCKERFILE, 5),
    ("src/pkg{d}/mod{i}.py", PYTHON, 25),
    ("docs/{i}.md", MARKDOWN, 8),
    (".github/workflows/ci-{i}.yml", WORKFLOW, 2),
]


def generate(root: Path, n: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    weights = [w for _, _, w in KINDS]
    for i in range(n):
        path, body, _ = rnd.choices(KINDS, weights)[0]
        p = root / path.format(i=i, d=i % 50)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body.format(i=i))


def install_files(root: Path, count: int, size: int = 2 << 20) -> None:
    """``count`` install.yaml-style files of ``size`` bytes (tests/support/generated.py)."""
    from tests.support.generated import install_yaml

    text, _images = install_yaml(size)
    for k in range(count):
        p = root / f"manifests/v{k}/install.yaml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def gitops(root: Path) -> None:
    """About 2,400 files and 17 MB of YAML: five 2-MB install files, CRD bundles, workloads."""
    generate(root, 2_300)
    install_files(root, 5)
    from tests.support.generated import install_yaml

    for k in range(60):
        text, _ = install_yaml(100_000, workloads=2)
        p = root / f"crds/bundle-{k}.yaml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def measure(root: Path, contain: bool) -> dict[str, float]:
    from bot.scan import sandbox, scan_tree

    boxes: list[sandbox.Sandbox] = []
    real = sandbox.Sandbox

    class Watched(real):  # type: ignore[misc,valid-type]
        def __init__(self, *a: object, **k: object) -> None:
            super().__init__(*a, **k)  # type: ignore[arg-type]
            boxes.append(self)

    sandbox.Sandbox = Watched  # type: ignore[misc]
    try:
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        res = scan_tree(root, contain=contain)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    finally:
        sandbox.Sandbox = real  # type: ignore[misc]
    workers_cpu = sum(sum(b.cpu.values()) for b in boxes)
    worker_rss = max((b.peak_rss for b in boxes), default=0) / 1024
    return {
        "wall": wall,
        "cpu": cpu,
        "workers_cpu": workers_cpu,
        "files": res.files,
        "mb": res.bytes / 1e6,
        "refs": len(res.refs),
        "errors": len(res.errors),
        "worker_rss": worker_rss,
    }


def report(name: str, root: Path) -> None:
    walked = sum(1 for p in root.rglob("*") if p.is_file())
    for contain in (False, True):
        m = measure(root, contain)
        mode = "pool x2" if contain else "1 proc "
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{name:<14} {mode} {walked:>6} files {m['mb']:6.1f} MB  wall {m['wall']:6.2f} s  "
            f"{walked / m['wall']:7,.0f} files/s {m['mb'] / m['wall']:5.1f} MB/s  "
            f"cpu {m['cpu']:5.2f}+{m['workers_cpu']:5.2f} s  "
            f"{1e6 * (m['cpu'] + m['workers_cpu']) / max(walked, 1):4.0f} us/file  "
            f"rss {rss:4.0f}/{m['worker_rss']:4.0f} MB  refs {m['refs']} errors {m['errors']}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", nargs="?", help="directory to scan (default: the generated trees)")
    ap.add_argument("--short", action="store_true", help="leave out the plain 10k and 50k trees")
    args = ap.parse_args()

    from bot.scan import finders

    finders()  # import cost is start-up, not scan time
    print("rss: this process / largest worker; cpu: this process + workers")
    if args.path:
        report(Path(args.path).name, Path(args.path))
        return
    sizes = [1_000] if args.short else [1_000, 10_000, 50_000]
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp), n)
            report(f"mixed {n // 1000}k", Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), 10_000)
        install_files(Path(tmp), 4)
        report("10k+4 install", Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        gitops(Path(tmp))
        report("gitops 17MB", Path(tmp))
    print("gitops target: wall <= 0.91 s (20x Renovate's 18.2 s on the 17 MB repo of performance.md)")


if __name__ == "__main__":
    main()
