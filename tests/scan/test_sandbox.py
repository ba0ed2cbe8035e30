"""Issue 11 item 1: parsing of untrusted files runs where a crash costs one file, not the process.

The misbehaving finder (tests/support/crashfinder.py) stands in for a parser bug nobody foresaw."""

from __future__ import annotations

from pathlib import Path

from bot.scan import FINDERS, LocalRepo, ScanResult, contained, scan_file, scan_tree
from bot.scan.sandbox import Limits, Sandbox

POD = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: nginx:1.27\n"

CRASH = ("tests.support.crashfinder", *FINDERS)


def _box(**kw: object) -> Sandbox:
    return Sandbox(scan_file, ScanResult, LocalRepo, **kw)  # type: ignore[arg-type]


def _jobs(files: dict[str, str]) -> list[tuple[str, bytes, str]]:
    return [(p, t.encode(), "tests.support.crashfinder") for p, t in files.items()]


def _run(box: Sandbox, files: dict[str, str], repo: object = None) -> dict[str, object]:
    jobs = _jobs(files)
    return {jobs[i][0]: res for i, res in box.run(jobs, repo)}


def test_a_segfault_costs_one_file_and_the_pool_goes_on() -> None:
    files = {f"a{i}.crash": f"ok a{i}:1.0" for i in range(10)}
    files["bad.crash"] = "SEGV x:1"
    files["null.crash"] = "NULL y:1"
    files |= {f"b{i}.crash": f"ok b{i}:1.0" for i in range(10)}
    with _box(workers=2, finders=CRASH) as box:
        got = _run(box, files)
        assert box.crashes == 2
    assert set(got) == set(files)
    bad = got["bad.crash"]
    assert not bad.refs and "SIGSEGV" in bad.errors[0].message and bad.files == 1  # type: ignore[attr-defined]
    assert "SIGSEGV" in got["null.crash"].errors[0].message  # type: ignore[attr-defined]
    for path, res in got.items():
        if path not in ("bad.crash", "null.crash"):
            assert [r.text for r in res.refs] == [files[path].split()[-1]], path  # type: ignore[attr-defined]
            assert not res.errors  # type: ignore[attr-defined]


def test_a_runaway_parser_is_stopped_by_its_cpu_budget() -> None:
    files = {"spin.crash": "SPIN", "after.crash": "ok after:1"}
    with _box(workers=1, finders=CRASH, limits=Limits(cpu_seconds=1, wall_seconds=30)) as box:
        got = _run(box, files)
    assert "CPU" in got["spin.crash"].errors[0].message  # type: ignore[attr-defined]
    assert [r.text for r in got["after.crash"].refs] == ["after:1"]  # type: ignore[attr-defined]


def test_memory_is_bounded_per_worker() -> None:
    files = {"hog.crash": "HOG", "after.crash": "ok after:1"}
    with _box(workers=1, finders=CRASH, limits=Limits(memory_bytes=512 << 20)) as box:
        got = _run(box, files)
    (err,) = got["hog.crash"].errors  # type: ignore[attr-defined]
    assert "MemoryError" in err.message
    assert [r.text for r in got["after.crash"].refs] == ["after:1"]  # type: ignore[attr-defined]


def test_sibling_reads_are_served_by_the_parent(tmp_path: Path) -> None:
    (tmp_path / "sibling.txt").write_text("from-sibling:2.0\n")
    with _box(workers=1, finders=CRASH) as box:
        got = _run(box, {"s.crash": "SIBLING"}, LocalRepo(tmp_path))
    assert [r.text for r in got["s.crash"].refs] == ["from-sibling:2.0"]  # type: ignore[attr-defined]


def test_contained_tree_scan_matches_in_process() -> None:
    root = Path(__file__).resolve().parents[1] / "fixtures" / "scan"
    inside, outside = scan_tree(root, contain=True), scan_tree(root, contain=False)
    assert inside.refs and inside.refs == outside.refs
    assert inside.errors == outside.errors and inside.files == outside.files


def test_a_hostile_yaml_file_costs_only_itself(tmp_path: Path) -> None:
    """Issue 11's file: whatever libyaml does with it (refused by the bounds, or a crash), the
    other files of the scan are read."""
    (tmp_path / "evil.yaml").write_text("apiVersion: v1\nkind: Pod\nimage: a:1\n? a\n: " + "- " * 200_000)
    (tmp_path / "pod.yaml").write_text(POD)
    res = scan_tree(tmp_path, contain=True)
    assert [r.text for r in res.refs] == ["nginx:1.27"]
    assert [e.path for e in res.errors] == ["evil.yaml"]


def test_the_apps_scans_are_contained(tmp_path: Path) -> None:
    """``contained`` (what bot.jobs.reader calls for every file) runs in the shared worker: the
    result is the in-process one, and the worker is not this process."""
    import os

    from bot.scan import _SHARED

    data = POD.encode()
    res = contained("pod.yaml", data, LocalRepo(tmp_path))
    assert [r.text for r in res.refs] == ["nginx:1.27"]
    (box,) = _SHARED
    assert [w.proc.pid for w in box._workers] != [os.getpid()]  # type: ignore[attr-defined]
    too_big = contained("pod.yaml", data, LocalRepo(tmp_path), max_bytes=10)
    assert "larger than 10 bytes" in too_big.errors[0].message


def test_a_tree_past_the_pool_threshold_starts_the_pool_mid_walk(monkeypatch) -> None:
    """contain=None: the walk hands files to the pool once the threshold is passed; the result
    is the in-process one, in walk order."""
    import bot.scan.sandbox as sb

    root = Path(__file__).resolve().parents[1] / "fixtures" / "scan"
    alone = scan_tree(root, contain=False)
    import bot.scan as scan

    claims: list[str] = []
    started: list[int] = []  # how many files had been walked when the pool started
    real_run, real_claimant = sb.Sandbox.run, scan.claimant

    def run(self: Sandbox, jobs, repo):
        started.append(len(claims))
        return real_run(self, jobs, repo)

    def claimant(path: str, head: bytes):
        claims.append(path)
        return real_claimant(path, head)

    monkeypatch.setattr(sb.Sandbox, "run", run)
    monkeypatch.setattr(scan, "claimant", claimant)
    monkeypatch.setattr(sb, "POOL_MIN_FILES", 3)
    pooled = scan_tree(root, contain=None)
    assert len(started) == 1 and started[0] < len(claims) // 2  # the walk went on beside the pool
    assert pooled.refs == alone.refs and pooled.errors == alone.errors and pooled.files == alone.files
    monkeypatch.setattr(sb, "POOL_MIN_FILES", 10**6)
    assert scan_tree(root, contain=None).refs == alone.refs and len(started) == 1  # stayed in process


_FORKED = """
import sys, threading
from bot.scan import sandbox
if sys.argv[1] == "threaded":
    threading.Thread(target=threading.Event().wait, daemon=True).start()
if sys.argv[1] == "macos":
    sys.platform = "darwin"
print(sandbox._context(("bot.scan.kubernetes",)).get_start_method())
"""

_CRASH_FORKED = """
import threading
from bot.scan import FINDERS, LocalRepo, ScanResult, scan_file
from bot.scan.sandbox import Sandbox
assert threading.active_count() == 1
CRASH = "tests.support.crashfinder"
box = Sandbox(scan_file, ScanResult, LocalRepo, finders=(CRASH, *FINDERS), workers=2)
jobs = [("a.crash", b"ok a:1", CRASH), ("bad.crash", b"SEGV", CRASH), ("b.crash", b"ok b:1", CRASH)]
with box:
    got = {jobs[i][0]: r for i, r in box.run(jobs, None)}
texts = [r.text for r in got["a.crash"].refs + got["b.crash"].refs]
print(box.crashes, texts, "SIGSEGV" in got["bad.crash"].errors[0].message)
"""


def test_one_thread_forks_and_a_threaded_process_uses_the_forkserver() -> None:
    import subprocess
    import sys

    top = Path(__file__).resolve().parents[2]

    def run(code: str, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code, *args], cwd=top, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run(_FORKED, "alone") == "fork"
    assert run(_FORKED, "threaded") == "forkserver"
    assert run(_FORKED, "macos") == "forkserver"  # fork there can die in system frameworks
    # a forked worker that dies costs its file, as a forkserver's does
    assert run(_CRASH_FORKED) == "1 ['a:1', 'b:1'] True"
