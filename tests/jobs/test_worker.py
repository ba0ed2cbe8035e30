"""The worker: in-process outcomes, then real worker processes on both backends (kill -9
recovery; two workers running every job exactly once, one job per repository at a time)."""

from __future__ import annotations

import signal
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from bot.jobs.queue import Queue, backoff, execute
from bot.settings import Settings
from tests.support.webhooks import read_log, start_worker, stop, wait_for


def test_execute_runs_a_job_once_and_settles_its_delivery(queue: Queue, tmp_path: Path):
    log = tmp_path / "log"
    hook = queue.accept("d-w1", "push", None, {})
    queue.journal.claim(hook.id, lease=30)  # stand in for the webhook job: it is running
    job = queue.submit("test.record", {"log": str(log)}, repo="o/r", deliveries=hook.deliveries)
    execute(queue, job.id)
    execute(queue, job.id)  # a duplicate message: claimed already, not run again
    assert [line[0] for line in read_log(log)] == ["start", "end"]
    assert queue.journal.get(job.id).state == "done"


def test_transient_failure_retries_with_backoff_then_succeeds(queue: Queue, tmp_path: Path):
    log = tmp_path / "log"
    job = queue.submit("test.flaky", {"log": str(log), "ok_at": 2})
    execute(queue, job.id)
    after = queue.journal.get(job.id)
    assert after.state == "queued" and after.attempts == 1 and "503" in after.error
    assert after.not_before > after.enqueued_at  # waits for its backoff
    wait_for(lambda: queue.journal.get(job.id).not_before <= time.time(), "backoff")
    execute(queue, job.id)
    assert queue.journal.get(job.id).state == "done"
    assert [line[0] for line in read_log(log)] == ["start", "start", "end"]


def test_permanent_failure_and_unknown_kinds_fail_without_retry(queue: Queue, tmp_path: Path):
    job = queue.submit("no.such.kind", {})
    execute(queue, job.id)
    done = queue.journal.get(job.id)
    assert done.state == "failed" and "no job kind" in done.error and done.attempts == 1


def test_backoff_doubles_and_is_capped():
    s = Settings(retry_base=10)
    assert [backoff(s, n) for n in (1, 2, 3)] == [10, 20, 40]
    assert backoff(s, 30) == 900


def test_killed_worker_job_runs_again_after_restart(settings: Settings, tmp_path: Path):
    settings = replace(settings, job_lease=1.5, reap_interval=0.2)
    q = Queue(settings)
    log, release = tmp_path / "runs.log", tmp_path / "release"
    job = q.submit("test.block", {"log": str(log), "release": str(release)}, repo="o/r")
    first = start_worker(settings, tmp_path / "worker1.out")
    try:
        wait_for(lambda: len(read_log(log)) == 1, "the first worker to start the job")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        stop(first)
    assert q.journal.get(job.id).state == "running"  # nobody told the journal
    second = start_worker(settings, tmp_path / "worker2.out")
    try:
        wait_for(lambda: len(read_log(log)) == 2, "the restarted worker to take the job over")
        release.touch()
        wait_for(lambda: q.journal.get(job.id).state == "done", "the job to finish")
    finally:
        stop(second)
    runs = read_log(log)
    assert [(r[0], r[3]) for r in runs] == [("start", "1"), ("start", "2"), ("end", "2")]
    assert runs[0][4] == str(first.pid) and runs[1][4] == str(second.pid)
    assert q.journal.get(job.id).attempts == 2


def test_two_workers_run_every_job_exactly_once_one_per_repo(settings: Settings, tmp_path: Path):
    q = Queue(settings)
    log = tmp_path / "runs.log"
    ids = {
        q.submit("test.record", {"log": str(log), "sleep": 0.01}, repo=f"o/r{i % 6}").id for i in range(60)
    }
    assert len(ids) == 60  # test.record has no merge: nothing coalesced
    workers = [start_worker(settings, tmp_path / f"worker{n}.out") for n in range(2)]
    try:
        wait_for(lambda: all(q.journal.get(i).state == "done" for i in ids), "all 60 jobs to finish")
    finally:
        for w in workers:
            stop(w)
    runs = read_log(log)
    ends = [r[1] for r in runs if r[0] == "end"]
    assert sorted(ends) == sorted(ids)  # exactly once each
    assert all(q.journal.get(i).attempts == 1 for i in ids)
    # never two jobs of one repository at the same time: starts and ends alternate per repository
    open_by_repo: dict[str, str | None] = defaultdict(lambda: None)
    for kind, job_id, repo, *_ in runs:
        if kind == "start":
            assert open_by_repo[repo] is None, f"{job_id} started while {open_by_repo[repo]} ran on {repo}"
            open_by_repo[repo] = job_id
        else:
            assert open_by_repo[repo] == job_id
            open_by_repo[repo] = None
    assert {r[4] for r in runs} <= {str(w.pid) for w in workers}
