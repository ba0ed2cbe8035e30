"""Scan speed and memory: files/s, MB/s and peak RSS for a generated tree of mixed files, or for
any directory given. Targets (issue 2 §6, one core of the 2-core machine): >= 1,500 files/s over
the generated 10,000-file tree, peak RSS < 150 MB.

    python bench/scan.py                 # generate 10,000 files in a temp dir and scan them
    python bench/scan.py --files 2000    # a smaller tree
    python bench/scan.py PATH            # scan an existing directory
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", nargs="?", help="directory to scan (default: a generated tree)")
    ap.add_argument("--files", type=int, default=10_000, help="size of the generated tree")
    args = ap.parse_args()

    from bot.scan import finders, scan_tree

    finders()  # import cost is start-up, not scan time
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.path) if args.path else Path(tmp)
        if not args.path:
            generate(root, args.files)
        total = sum(1 for p in root.rglob("*") if p.is_file())
        t0 = time.perf_counter()
        res = scan_tree(root)
        dt = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"tree:          {args.path or f'generated, {args.files} files'}")
    print(f"files walked:  {total}")
    print(f"files read:    {res.files} ({res.bytes / 1e6:.1f} MB)")
    print(f"references:    {len(res.refs)}   errors: {len(res.errors)}")
    print(f"wall:          {dt:.2f} s")
    print(f"files/s:       {total / dt:,.0f}   (target >= 1,500)")
    print(f"MB/s:          {res.bytes / 1e6 / dt:.1f}")
    print(f"peak RSS:      {rss_mb:.0f} MB   (target < 150 MB)")


if __name__ == "__main__":
    main()
