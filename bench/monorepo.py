"""One big repository through the App (issue 11, load): a generated monorepo of 20,000 files holding
5,000 image references, scanned by the ``scan`` job (inventory -> PR writer -> dashboard) through
the fake GitHub, every reference checked against a loopback registry (Debian ``docker-registry``).

Prints wall time, peak RSS (of the whole process, and above the fake GitHub holding the
repository), GitHub calls (rate-limited ones; token minting and revocation apart) and registry
requests, for a first scan and for a rescan of the unchanged repository. Targets: the first scan
under 120 s and 300 MB above the fake's own memory; the rescan under 10 s with <= 5 GitHub calls.

    .venv/bin/python bench/monorepo.py            # 20,000 files, 5,000 references
    .venv/bin/python bench/monorepo.py --short    # 1,000 files, 250 references (CI)
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PULLABLE_GITHUB_PACING", "0")

from bot.jobs import dashboard, requests  # noqa: E402
from bot.jobs.queue import Queue, execute  # noqa: E402
from bot.registry import Registry  # noqa: E402
from tests.support.fakegithub import FakeGitHub  # noqa: E402
from tests.support.registry import LocalRegistry  # noqa: E402
from tests.support.webhooks import app_settings  # noqa: E402

TOKENS = ("apps/create-installation-access-token", "apps/revoke-installation-access-token")
DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: svc-{i}}}
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: {a}
      containers:
        - name: app
          image: {b}
"""
COMPOSE = "services:\n  app:\n    image: {a}\n  sidecar:\n    image: {b}\n"
DOCKERFILE = "FROM {a} AS build\nRUN make\nFROM {b}\nCOPY --from=build /out /out\n"
FILLER = [
    ("src/pkg{d}/mod{i}.py", '"""Module {i}."""\n\n\ndef f(x: int) -> int:\n    return x * {i}\n'),
    ("docs/{d}/page{i}.md", "# Page {i}\n\nAbout images and repositories.\n"),
    (
        "k8s/config/cm-{i}.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}}}\ndata: {{x: '{i}'}}\n",
    ),
    ("web/{d}/c{i}.json", '{{"id": {i}, "tags": ["a", "b"]}}\n'),
]
HOLDERS = [
    ("k8s/apps/deploy-{i}.yaml", DEPLOY),
    ("compose/{i}/compose.yaml", COMPOSE),
    ("images/{i}/Dockerfile", DOCKERFILE),
]


def images(n: int) -> list[tuple[str, str]]:
    """The distinct (repository, tag) the references name: a monorepo shares its base images."""
    return [(f"bench/app{k % max(1, n // 4)}", f"1.{k}") for k in range(n)]


def generate(files: int, refs: int, distinct: list[tuple[str, str]], seed: int = 11) -> dict[str, str]:
    rnd = random.Random(seed)
    out: dict[str, str] = {".github/pullable.yml": "labels: [images]\n", "README.md": "# monorepo\n"}
    for i in range(refs // 2):  # two references per holder file
        path, body = HOLDERS[i % len(HOLDERS)]
        (ra, ta), (rb, tb) = rnd.choice(distinct), rnd.choice(distinct)
        out[path.format(i=i)] = body.format(i=i, a=f"{ra}:{ta}", b=f"{rb}:{tb}")
    i = 0
    while len(out) < files:
        path, body = FILLER[i % len(FILLER)]
        out[path.format(i=i, d=i % 97)] = body.format(i=i)
        i += 1
    return out


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


_SENT = [0]
_close = Registry.close


def _counting_close(self: Registry) -> None:
    _SENT[0] += self.requests
    _close(self)


Registry.close = _counting_close  # type: ignore[method-assign]


def registry_requests() -> int:
    """HTTP requests sent by every registry the jobs opened (and closed) so far."""
    return _SENT[0]


def github_calls(fake: FakeGitHub) -> tuple[int, int, Counter[str]]:
    ops = Counter(e.operation or e.path for e in fake.log if e.status != 304 and e.operation not in TOKENS)
    tokens = sum(1 for e in fake.log if e.operation in TOKENS)
    return sum(ops.values()), tokens, ops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--refs", type=int, default=5_000)
    ap.add_argument("--distinct", type=int, default=200, help="distinct image:tag pushed to the registry")
    ap.add_argument("--short", action="store_true", help="1,000 files, 250 references, 20 images")
    args = ap.parse_args()
    if args.short:
        args.files, args.refs, args.distinct = 1_000, 250, 20
    with tempfile.TemporaryDirectory() as tmp, FakeGitHub() as fake:
        (Path(tmp) / "registry").mkdir()
        reg = LocalRegistry(Path(tmp) / "registry", "open")
        try:
            distinct = images(args.distinct)
            for repo_name, tag in distinct:
                reg.push(repo_name, tag, content=repo_name)
            app = fake.create_app()
            inst = fake.create_installation(app)
            files = generate(args.files, args.refs, distinct)
            repo = fake.create_repo("octo-org/monorepo", files, installation=inst)
            settings = app_settings(Path(tmp) / "data", app, fake.base_url, reg)
            queue = Queue(settings)
            base = rss_mb()
            print(f"monorepo: {len(files):,} files, {args.refs:,} references to {len(distinct)} images "
                  f"(fake GitHub and repository: {base:.0f} MB)")  # fmt: skip
            print(f"{'run':<8} {'wall s':>7} {'peak RSS MB':>12} {'above fake':>11} {'GitHub calls':>13} "
                  f"{'tokens':>7} {'registry req':>13} {'findings':>9}")  # fmt: skip
            for run in ("first", "rescan"):
                fake.reset_log()
                before = registry_requests()
                payload = {"installation_id": inst.id, "repo": repo.full_name, "ref": None, "paths": None,
                           "compare": [], "reasons": ["bench"]}  # fmt: skip
                job = queue.submit(requests.SCAN, payload, repo=repo.full_name)
                t0 = time.perf_counter()
                execute(queue, job.id)
                wall = time.perf_counter() - t0
                done = queue.journal.get(job.id)
                assert done is not None and done.state == "done", (done.state, done.error) if done else None
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                calls, tokens, ops = github_calls(fake)
                doc = dashboard.recorded(queue.journal, repo.full_name) or {}
                found = len(doc.get("findings") or [])
                print(f"{run:<8} {wall:>7.1f} {peak:>12.0f} {peak - base:>11.0f} {calls:>13} {tokens:>7} "
                      f"{registry_requests() - before:>13} {found:>9}")  # fmt: skip
                top = ", ".join(f"{op} {n}" for op, n in ops.most_common(4))
                print(f"         calls: {top}")
        finally:
            reg.stop()


if __name__ == "__main__":
    main()
