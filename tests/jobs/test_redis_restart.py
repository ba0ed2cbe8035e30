"""Redis restarted under the Redis backend (issue 11, faults): no accepted delivery is lost.

Debian's redis-server runs on a free loopback port with its append-only file fsynced on every
write (``appendonly yes``, ``appendfsync always``: what the README asks of a production Redis),
and is killed with -9 and started again on the same files: between accepting deliveries and any
worker running, and again while a worker is busy with a batch. Every delivery the web app
answered 202 must end ``done``; a delivery that arrives while Redis is down is answered 503 (so
GitHub shows it failed and it can be redelivered), never 202 and dropped."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from bot.jobs.queue import Queue
from bot.web import create_app
from tests.support import fakegithub_webhooks as webhooks
from tests.support.artifacts import binary
from tests.support.webhooks import SECRET, free_port, settings_for, start_worker, stop, wait_for


class Redis:
    """A redis-server that can be killed and started again on the same port and files."""

    def __init__(self, tmp: Path) -> None:
        self.dir, self.port = tmp, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            [binary("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(up, "redis-server to accept connections", timeout=30)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def redis_restartable(tmp_path: Path):
    r = Redis(tmp_path)
    r.start()
    try:
        yield r
    finally:
        if r.proc is not None and r.proc.poll() is None:
            r.kill()


def _comment(n: int) -> bytes:
    """A real ``issue_comment`` payload that is no command: its job runs and needs no GitHub."""
    payload = webhooks.example("issue_comment", "created")
    payload["comment"]["body"] = f"Thanks! ({n})"
    return payload


def test_no_accepted_delivery_is_lost_when_redis_restarts(redis_restartable: Redis, tmp_path: Path) -> None:
    r = redis_restartable
    settings = replace(
        settings_for(tmp_path / "data", redis_url=r.url), job_lease=3.0, reap_interval=0.3, requeue_after=2.0
    )
    web = create_app(settings, Queue(settings)).test_client()

    def post(n: int) -> tuple[int, str]:
        d = webhooks.deliver("issue_comment", _comment(n), SECRET)
        resp = web.post("/api/github/webhooks", data=d.body, headers=d.headers)
        return resp.status_code, d.delivery_id

    accepted = []
    for n in range(20):  # accepted, then Redis dies before any worker ran
        status, did = post(n)
        assert status == 202
        accepted.append(did)
    r.kill()
    assert post(99)[0] == 503  # down: refused, not swallowed
    r.start()

    queue = Queue(settings)
    worker = start_worker(settings, tmp_path / "worker.out", PULLABLE_REQUEUE_AFTER="2")
    try:
        wait_for(lambda: all(queue.journal.delivery(d)["state"] == "done" for d in accepted), "batch 1")
        for n in range(20, 60):  # and again while the worker is busy with them
            status, did = post(n)
            assert status == 202
            accepted.append(did)
        done_at_kill = sum(queue.journal.delivery(d)["state"] == "done" for d in accepted[20:])
        r.kill()
        r.start()
        wait_for(
            lambda: all(queue.journal.delivery(d)["state"] == "done" for d in accepted),
            "every accepted delivery to be done after the restarts",
            timeout=120,
        )
    finally:
        stop(worker)
    states = [queue.journal.delivery(d)["state"] for d in accepted]
    print(
        f"\n{len(accepted)} accepted, {states.count('done')} done after two kill -9 restarts of Redis "
        f"(the second with {done_at_kill} of 40 done)"
    )
    assert states == ["done"] * 60
