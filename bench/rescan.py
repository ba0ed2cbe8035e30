"""The scheduled rescan of many repositories through the App (issue 11, load): one installation of
500 repositories on the fake GitHub, each with a few files and image references checked against a
loopback registry (Debian ``docker-registry``). The ``schedule`` job lists the installation and
submits a full scan of every repository; the scan jobs run in-process through the journal, as a
worker runs them (one job at a time: the figures are per worker thread).

Two rounds: the first rescan (repositories never seen: dashboards are created) and the next
scheduled rescan of the unchanged repositories (the steady state). Prints wall time, peak RSS,
GitHub calls per repository (rate-limited ones: 304s are free; token minting and revocation
apart) and registry requests per repository. Targets for the steady state: <= 3 GitHub calls and
<= 1 registry request per repository, under 0.2 s per repository.

    .venv/bin/python bench/rescan.py             # 500 repositories
    .venv/bin/python bench/rescan.py --short     # 10 repositories (CI)
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PULLABLE_GITHUB_PACING", "0")

from bot.jobs import requests  # noqa: E402
from bot.jobs.journal import Job  # noqa: E402
from bot.jobs.queue import Queue, execute  # noqa: E402
from bot.registry import Registry  # noqa: E402
from tests.support.fakegithub import FakeGitHub  # noqa: E402
from tests.support.registry import LocalRegistry  # noqa: E402
from tests.support.webhooks import app_settings  # noqa: E402

TOKENS = ("apps/create-installation-access-token", "apps/revoke-installation-access-token")
IMAGES = [
    ("library/nginx", "1.27"),
    ("library/postgres", "16"),
    ("library/redis", "7.2"),
    ("team/api", "2.4"),
]


def files(i: int) -> dict[str, str]:
    a, b, c, d = (f"{r.removeprefix('library/')}:{t}" for r, t in IMAGES)
    return {
        "README.md": f"# service {i}\n",
        "k8s/deploy.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n"
            f"      containers:\n        - name: web\n          image: {a}\n        - name: api\n"
            f"          image: {d}\n"
        ),
        "compose.yaml": f"services:\n  db:\n    image: {b}\n  cache:\n    image: {c}\n",
        "src/main.py": f"print({i})\n",
    }


_SENT = [0]
_close = Registry.close


def _counting_close(self: Registry) -> None:
    _SENT[0] += self.requests
    _close(self)


Registry.close = _counting_close  # type: ignore[method-assign]


def run_round(queue: Queue, fake: FakeGitHub, inst_id: int) -> tuple[int, float, Counter[str], int, int]:
    """One scheduled rescan: (scans run, wall s, calls by operation, token calls, registry requests)."""
    fake.reset_log()
    sent = _SENT[0]
    t0 = time.perf_counter()
    tick = queue.submit(requests.SCHEDULE, {"installation_id": inst_id, "spread": 0})
    execute(queue, tick.id)
    with queue.journal.store.transaction() as t:
        todo: list[Job] = [j for j in t.open_jobs() if j.kind == requests.SCAN]
    for job in todo:
        execute(queue, job.id)
    wall = time.perf_counter() - t0
    failed = [j.error for j in (queue.journal.get(j.id) for j in todo) if j is None or j.state != "done"]
    assert not failed, failed[:3]
    ops = Counter(e.operation or e.path for e in fake.log if e.status != 304 and e.operation not in TOKENS)
    tokens = sum(1 for e in fake.log if e.operation in TOKENS)
    return len(todo), wall, ops, tokens, _SENT[0] - sent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repos", type=int, default=500)
    ap.add_argument("--short", action="store_true", help="10 repositories")
    args = ap.parse_args()
    n = 10 if args.short else args.repos
    with tempfile.TemporaryDirectory() as tmp, FakeGitHub() as fake:
        (Path(tmp) / "registry").mkdir()
        reg = LocalRegistry(Path(tmp) / "registry", "open")
        try:
            for repo_name, tag in IMAGES:
                reg.push(repo_name, tag)
            app = fake.create_app()
            inst = fake.create_installation(app)
            # GitHub's installation budget grows with the repositories it covers: 5,000 an hour,
            # plus 50 per repository beyond 20, at most 12,500 (a non-Enterprise organisation).
            # The fake's flat 5,000 would refuse the first round of 500 repositories.
            fake.rate_limit = min(12_500, 5_000 + 50 * max(0, n - 20))
            for i in range(n):
                fake.create_repo(f"octo-org/svc-{i:04d}", files(i), installation=inst)
            queue = Queue(app_settings(Path(tmp) / "data", app, fake.base_url, reg))
            print(f"scheduled rescan: {n} repositories, 4 references each, one installation")
            print(f"{'round':<8} {'scans':>5} {'wall s':>7} {'s/repo':>7} {'peak RSS MB':>12} "
                  f"{'GitHub/repo':>12} {'tokens/repo':>12} {'registry/repo':>14}")  # fmt: skip
            for name in ("first", "steady"):
                if name == "steady":
                    # A week passes: every repository's last full scan (as the scan job noted it)
                    # is aged past its default weekly schedule, so each one is due again.
                    for i in range(n):
                        key = requests.scanned_key(f"octo-org/svc-{i:04d}")
                        note = queue.journal.noted(key)
                        if note is not None:
                            queue.journal.note(key, {**note, "at": float(note["at"]) - 8 * 86400})
                scans, wall, ops, tokens, sent = run_round(queue, fake, inst.id)
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                calls = sum(ops.values())
                print(f"{name:<8} {scans:>5} {wall:>7.1f} {wall / n:>7.3f} {peak:>12.0f} {calls / n:>12.2f} "
                      f"{tokens / n:>12.2f} {sent / n:>14.2f}")  # fmt: skip
                print("         calls: " + ", ".join(f"{op} {c}" for op, c in ops.most_common(6)))
        finally:
            reg.stop()


if __name__ == "__main__":
    main()
