"""Run the short mode of every benchmark in ``bench/`` and print one table (see bench/README.md).

Each script runs in its own process (so peak RSS figures are its own), in the short mode listed in
:data:`SHORT`; a script added to ``bench/`` without an entry there is run with ``--short``. The
table shows each benchmark's exit status, its wall time and its headline figures (the lines
:data:`HEADLINE` picks, else its last line). Timing is reported, never judged: the figures are
for people, and ``tests/test_bench.py`` only checks that every short mode runs and prints.

    .venv/bin/python bench/run_all.py                 # every benchmark, short modes
    .venv/bin/python bench/run_all.py scan rescan     # some of them
    .venv/bin/python bench/run_all.py --markdown      # the table as Markdown (for bench/README.md)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

# Short modes: a run of each should take well under 30 s on the 2-core CI machine.
SHORT: dict[str, list[str]] = {
    "scan": ["--short"],  # about a minute under load: issue 14's trees
    "registry": ["scan", "--short"],
    "startup": ["--runs", "3"],
    "webhooks": ["--rates", "50", "--seconds", "1"],
    "intake": ["--short"],
    "github_calls": ["--files", "1"],
    "recall": ["tests/fixtures/scan", "--quiet"],
    "monorepo": ["--short"],
    "rescan": ["--short"],
}


def _recall_totals(lines: list[str]) -> list[str]:
    rows = [line.split() for line in lines if re.fullmatch(r"\S+(\s+\d+){4}", line.strip())]
    sums = [sum(int(r[i]) for r in rows) for i in range(1, 5)]
    return [
        f"{len(rows)} kinds: found {sums[0]}, skipped {sums[1]}, candidates {sums[2]}, unexplained {sums[3]}"
    ]


# The lines of each benchmark's output worth a place in the table (a regex, or a function).
HEADLINE: dict[str, str | Callable[[list[str]], list[str]]] = {
    "scan": r"files/s",
    "registry": r"^\s+(first run|warm run)\s*:|(warm token|ratio)",
    "startup": r"^pullable scan",
    "webhooks": r"^\s+\d+\s+\d+|accepted deliveries",
    "intake": r"deliveries at|distinct deliveries",
    "github_calls": r"^\s+(ok|OVER BUDGET):",
    "recall": _recall_totals,
    "monorepo": r"^(run|first|rescan)\s",
    "rescan": r"^(round|first|steady)\s",
}
TIMEOUT = 180.0  # a hang, not a slow run: timing is not judged here


@dataclass
class Result:
    name: str
    command: str
    status: str
    seconds: float
    output: str
    headline: list[str]


def benchmarks() -> list[str]:
    """Every benchmark script in ``bench/`` (this runner aside)."""
    return sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "run_all" and not p.stem.startswith("_"))


def run(name: str, timeout: float = TIMEOUT) -> Result:
    args = SHORT.get(name, ["--short"])
    command = " ".join(["python", f"bench/{name}.py", *args])
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(BENCH / f"{name}.py"), *args],
            check=False, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        output = proc.stdout + (proc.stderr if proc.returncode else "")
    except subprocess.TimeoutExpired as exc:
        status, output = f"timeout {timeout:.0f}s", str(exc.stdout or "")
    seconds = time.perf_counter() - t0
    lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    pick = HEADLINE.get(name)
    if callable(pick):
        picked = pick(lines) if status == "ok" else []
    else:
        picked = [line for line in lines if pick and re.search(pick, line)]
    picked = picked or lines[-1:]
    return Result(name, command, status, seconds, output, picked)


def table(results: list[Result], markdown: bool = False) -> str:
    if markdown:
        rows = ["| benchmark | short command | status | wall s | figures |", "|---|---|---|---|---|"]
        for r in results:
            figures = "<br>".join(f"`{h.strip()}`" for h in r.headline)
            rows.append(f"| {r.name} | `{r.command}` | {r.status} | {r.seconds:.1f} | {figures} |")
        return "\n".join(rows)
    rows = [f"{'benchmark':<13} {'status':<10} {'wall s':>7}  figures", "-" * 100]
    for r in results:
        first, *rest = r.headline or [""]
        rows.append(f"{r.name:<13} {r.status:<10} {r.seconds:>7.1f}  {first.strip()}")
        rows.extend(f"{'':<33}{h.strip()}" for h in rest)
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = ap.parse_args(argv)
    names = args.names or benchmarks()
    unknown = sorted(set(names) - set(benchmarks()))
    if unknown:
        ap.error(f"no such benchmark: {', '.join(unknown)} (have: {', '.join(benchmarks())})")
    results = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results.append(run(name))
    print(table(results, args.markdown))
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
