"""The benchmarks in ``bench/`` keep working: each one's short mode (what ``bench/run_all.py``
runs, and CI with it) runs and prints its figures, and ``bench/README.md`` lists every one. Their
timing is never judged here: speed and memory targets live in the benchmarks' own output."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run_all", BENCH / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


run_all = _run_all()


@pytest.mark.parametrize("name", run_all.benchmarks())
def test_the_short_mode_runs_and_prints_figures(name: str) -> None:
    result = run_all.run(name)
    assert result.status == "ok", result.output[-3000:]
    assert result.headline and any(re.search(r"\d", line) for line in result.headline), result.output[-3000:]


def test_the_readme_lists_every_benchmark_and_run_all_knows_its_short_mode() -> None:
    readme = (BENCH / "README.md").read_text()
    for name in run_all.benchmarks():
        assert f"`bench/{name}.py" in readme, f"bench/README.md: add a row for bench/{name}.py"
    assert set(run_all.benchmarks()) >= {"scan", "registry", "webhooks", "github_calls", "monorepo", "rescan"}


def test_the_table_has_one_row_per_benchmark() -> None:
    results = [run_all.Result("a", "python bench/a.py", "ok", 1.0, "x\nfigure: 3\n", ["figure: 3"])]
    assert run_all.table(results).splitlines()[-1].split()[:3] == ["a", "ok", "1.0"]
    assert "| a | `python bench/a.py` | ok | 1.0 | `figure: 3` |" in run_all.table(results, markdown=True)
