"""The journal's promises, on both stores: dedupe, per-repository exclusivity, coalescing, retries,
leases and the reaper."""

from __future__ import annotations

import time
from dataclasses import replace

from bot.jobs.journal import Claim, Job
from bot.jobs.queue import Queue


def _running(queue: Queue, job: Job) -> Job:
    claimed = queue.journal.claim(job.id, lease=30)
    assert isinstance(claimed, Job), claimed
    return claimed


def test_delivery_is_accepted_once_while_pending_or_done(queue: Queue):
    first = queue.accept("d-1", "push", None, {"n": 1})
    assert first is not None and first.deliveries == ["d-1"]
    assert queue.huey.pending_count() == 1
    assert queue.accept("d-1", "push", None, {"n": 1}) is None  # in progress
    job = _running(queue, first)
    assert queue.journal.finish(job) == []
    assert queue.journal.delivery("d-1")["state"] == "done"
    assert queue.accept("d-1", "push", None, {"n": 1}) is None  # done
    assert queue.huey.pending_count() == 1


def test_failed_delivery_is_accepted_again(queue: Queue):
    first = queue.accept("d-2", "push", None, {})
    queue.journal.finish(_running(queue, first), error="boom")
    assert queue.journal.get(first.id).state == "failed"
    assert queue.journal.delivery("d-2")["state"] == "failed"
    again = queue.accept("d-2", "push", None, {})
    assert again is not None and again.id != first.id
    assert queue.journal.delivery("d-2")["state"] == "pending"


def test_delivery_done_only_when_every_job_it_caused_is_done(queue: Queue):
    hook = queue.accept("d-3", "push", None, {})
    hook = _running(queue, hook)
    follow = queue.submit("test.record", {"log": "x"}, repo="o/r", deliveries=hook.deliveries)
    queue.journal.finish(hook)
    assert queue.journal.delivery("d-3")["state"] == "pending"
    queue.journal.finish(_running(queue, follow))
    assert queue.journal.delivery("d-3")["state"] == "done"


def test_follow_up_failure_fails_the_delivery(queue: Queue):
    hook = _running(queue, queue.accept("d-4", "push", None, {}))
    follow = queue.submit("test.record", {"log": "x"}, repo="o/r", deliveries=hook.deliveries)
    queue.journal.finish(hook)
    queue.journal.finish(_running(queue, follow), error="no such repository")
    assert queue.journal.delivery("d-4")["state"] == "failed"
    assert queue.accept("d-4", "push", None, {}) is not None


def test_one_running_job_per_repository_and_the_next_is_woken(queue: Queue):
    a = queue.submit("test.record", {"log": "a"}, repo="Org/Repo")
    a = _running(queue, a)
    b = queue.submit("test.record", {"log": "b"}, repo="org/repo")  # no merge for this kind
    other = queue.submit("test.record", {"log": "c"}, repo="org/other")
    assert b.id != a.id and b.repo == "org/repo"
    assert queue.journal.claim(b.id, lease=30) is Claim.BUSY
    assert isinstance(queue.journal.claim(other.id, lease=30), Job)
    wakes = queue.journal.finish(a)
    assert [w.job_id for w in wakes] == [b.id]
    assert isinstance(queue.journal.claim(b.id, lease=30), Job)
    assert queue.journal.claim(b.id, lease=30) is Claim.GONE  # a second message for it is harmless


def test_waiting_scans_of_one_repository_coalesce(queue: Queue):
    base = {"installation_id": 1, "repo": "o/r", "ref": "main", "compare": []}
    first = queue.submit("scan", {**base, "paths": ["a.yml"]}, repo="o/r", deliveries=["d-5"])
    second = queue.submit("scan", {**base, "paths": ["b.yml"]}, repo="o/r", deliveries=["d-6"])
    assert second.id == first.id
    assert queue.journal.get(first.id).payload["paths"] == ["a.yml", "b.yml"]
    assert queue.journal.get(first.id).deliveries == ["d-5", "d-6"]
    full = queue.submit("scan", {**base, "paths": None}, repo="o/r")
    assert full.id == first.id and queue.journal.get(first.id).payload["paths"] is None
    running = _running(queue, full)
    # while it runs, a new request waits as one more job ("rescan requested"), then coalesces
    later = queue.submit("scan", {**base, "paths": ["c.yml"]}, repo="o/r")
    again = queue.submit("scan", {**base, "paths": ["d.yml"]}, repo="o/r")
    assert later.id == again.id != running.id
    assert queue.journal.get(later.id).payload["paths"] == ["c.yml", "d.yml"]
    assert queue.journal.counts() == {"queued": 1, "running": 1}


def test_transient_failure_is_retried_later_then_fails_after_max_attempts(queue: Queue):
    job = queue.submit("test.record", {"log": "x"}, repo="o/r")
    for attempt in range(1, queue.journal.max_attempts + 1):
        claimed = queue.journal.claim(job.id, lease=30)
        if claimed is Claim.EARLY:
            time.sleep(max(0.0, queue.journal.get(job.id).not_before - time.time()) + 0.01)
            claimed = queue.journal.claim(job.id, lease=30)
        assert isinstance(claimed, Job) and claimed.attempts == attempt
        wakes = queue.journal.finish(claimed, error="503", retry_in=0.05)
        if attempt < queue.journal.max_attempts:
            assert [(w.job_id, w.delay) for w in wakes] == [(job.id, 0.05)]
            assert queue.journal.get(job.id).state == "queued"
    assert queue.journal.get(job.id).state == "failed"


def test_reaper_requeues_a_job_whose_lease_expired(queue: Queue):
    job = queue.submit("test.record", {"log": "x"}, repo="o/r")
    claimed = queue.journal.claim(job.id, lease=0.01)
    assert isinstance(claimed, Job)
    waiting = queue.submit("test.record", {"log": "y"}, repo="o/r")
    time.sleep(0.05)
    # the lease ran out: the repository is no longer held by the lost worker
    wakes = queue.journal.reap(stale_after=3600)
    assert [w.job_id for w in wakes] == [job.id]
    assert queue.journal.get(job.id).state == "queued"
    assert "lease expired" in queue.journal.get(job.id).error
    # the lost worker finishing late changes nothing: the next attempt owns the job
    assert queue.journal.finish(claimed) == []
    assert queue.journal.extend(claimed, 30) is False
    again = queue.journal.claim(job.id, lease=30)
    assert isinstance(again, Job) and again.attempts == 2
    assert queue.journal.claim(waiting.id, lease=30) is Claim.BUSY


def test_reaper_resends_queued_jobs_whose_message_may_be_lost(queue: Queue):
    job = queue.submit("test.record", {"log": "x"})
    assert queue.journal.reap(stale_after=3600) == []
    time.sleep(0.02)
    assert [w.job_id for w in queue.journal.reap(stale_after=0.01)] == [job.id]
    queue.settings = replace(queue.settings, requeue_after=0.01)
    time.sleep(0.02)
    before = queue.huey.pending_count()
    assert queue.reap() == 1  # the Queue re-sends the ids the journal names
    assert queue.huey.pending_count() == before + 1


def test_fixed_ids_make_submission_idempotent(queue: Queue):
    a = queue.submit("test.record", {"log": "x"}, job_id="schedule-20260101T0317")
    b = queue.submit("test.record", {"log": "x"}, job_id="schedule-20260101T0317")
    assert a.id == b.id
    assert queue.journal.counts()["queued"] == 1


def test_the_job_woken_next_is_the_one_due_first_not_a_scheduled_one_hours_away(queue: Queue):
    """A scheduled scan waits hours for its slot; a command that found the repository busy must
    not wait behind it for the reaper (15 minutes)."""
    later = queue.submit("test.record", {"log": "scheduled"}, repo="o/r", delay=3 * 3600)
    running = _running(queue, queue.submit("test.record", {"log": "push"}, repo="o/r"))
    command = queue.submit("test.record", {"log": "command"}, repo="o/r")
    assert queue.journal.claim(command.id, lease=30) is Claim.BUSY  # its message is spent
    wakes = queue.journal.finish(running)
    assert [(w.job_id, w.delay) for w in wakes] == [(command.id, 0.0)]
    assert isinstance(queue.journal.claim(command.id, lease=30), Job)
    assert queue.journal.claim(later.id, lease=30) is Claim.EARLY


def test_counts_in_a_sliding_window_are_shared_and_capped(queue: Queue, settings):
    """Comment-command budgets (W21): every process sees the same count; old events drop out."""
    other = Queue(settings)  # another process on the same store
    assert [queue.journal.count("k", window=60, cap=3) for _ in range(2)] == [1, 2]
    assert [other.journal.count("k", window=60, cap=3) for _ in range(4)] == [3, 4, 4, 4]
    assert queue.journal.count("other", window=60) == 1
    assert queue.journal.count("short", window=0.05) == 1
    time.sleep(0.1)
    assert queue.journal.count("short", window=0.05) == 1


def test_notes_expire(queue: Queue):
    queue.journal.remember("refused:a/b:x", {"comment_id": 7}, ttl=60)
    queue.journal.remember("gone", {"x": 1}, ttl=0.05)
    assert queue.journal.recall("refused:a/b:x") == {"comment_id": 7}
    time.sleep(0.1)
    assert queue.journal.recall("gone") is None and queue.journal.recall("never") is None
    queue.journal.reap(stale_after=60)  # prunes expired limits on SQLite
    assert queue.journal.recall("refused:a/b:x") == {"comment_id": 7}
