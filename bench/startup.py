"""Start-up time: ``pullable scan`` on an empty directory (issue 17; target <= 0.15 s).

Runs the CLI in fresh interpreters (median of ``--runs``), online and ``--offline``, and lists the
slowest imports of one run (``python -X importtime``), so a heavy module imported eagerly shows.

    python bench/startup.py              # 9 runs each
    python bench/startup.py --runs 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; CPU (user + system) says more on a loaded machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bot", *argv], check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty"
        empty.mkdir()
        env = {**os.environ, "PULLABLE_DATA_DIR": str(Path(tmp) / "data")}
        env.pop("REDIS_URL", None)
        # As installed: bytecode cached (pip compiles it). Without caches every run compiles the
        # whole package again (~90 ms here), which no user pays twice.
        cached = "PYTHONDONTWRITEBYTECODE" not in os.environ
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        once(["scan", str(empty)], env)  # writes the caches
        once(["scan", "--offline", str(empty)], env)
        print(
            "bytecode caches: "
            + ("in use" if cached else "written by a first run (PYTHONDONTWRITEBYTECODE ignored)")
        )
        bare = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            bare.append(time.perf_counter() - start)
        print(f"bare interpreter              : {statistics.median(bare):.3f}s")
        for label, argv in (("scan EMPTY", ["scan", str(empty)]),
                            ("scan --offline EMPTY", ["scan", "--offline", str(empty)])):  # fmt: skip
            runs = [once(argv, env) for _ in range(args.runs)]
            took = statistics.median(w for w, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            print(f"pullable {label:<21}: {took:.3f}s median of {args.runs}, best "
                  f"{min(w for w, _ in runs):.3f}s, CPU {cpu:.3f}s (target <= 0.15s)")  # fmt: skip
        argv = [sys.executable, "-X", "importtime", "-m", "bot", "scan", str(empty)]
        out = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stderr
    rows = []
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    total = max((us for us, _ in rows), default=0)
    print("slowest imports (cumulative):")
    for us, name in sorted(rows, reverse=True)[:8]:
        print(f"  {us / 1000:6.1f} ms {name}")
    print(f"  (largest single tree {total / 1000:.1f} ms)")


if __name__ == "__main__":
    main()
