"""Shared helpers for the App's tests: settings, a loopback redis-server, worker subprocesses and
job kinds that leave evidence on disk (so tests can count runs across processes)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.settings import Settings
from tests.support.artifacts import ROOT, binary

SECRET = "a-test-webhook-secret-of-40-characters!!"


@functools.cache
def app_key() -> str:
    """A real private key, so settings pass the App's start-up checks (APP_ID and a key)."""
    from tests.support.fakegithub import make_key_pair

    return make_key_pair(0)[0]


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    base = Settings(
        webhook_secret=SECRET,
        data_dir=data_dir,
        retry_base=0.2,
        job_lease=30,
        app_id="1",
        private_key=app_key(),
    )
    return replace(base, **overrides)


def app_settings(data_dir: Path, app: Any, api_url: str, registry: Any = None, **overrides: Any) -> Settings:
    """Settings for a fake GitHub App (``app`` from ``FakeGitHub.create_app``) at ``api_url``.
    With ``registry`` (a loopback ``LocalRegistry``), an operator config beside ``data_dir`` points
    docker.io at it, so no job ever reaches the internet."""
    if registry is not None:
        operator = data_dir.parent / "operator.json"
        operator.write_text(json.dumps(registry.config_mapping(host="docker.io")))
        overrides.setdefault("config", str(operator))
    return settings_for(
        data_dir, app_id=str(app.id), private_key=app.private_key, github_api_url=api_url, **overrides
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], Any], what: str, timeout: float = 90.0, every: float = 0.05) -> Any:
    """Poll until ``check()`` is truthy; the deadline only turns a hang into a clear failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(every)


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    """Debian's redis-server on 127.0.0.1, no persistence; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        import redis

        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(up, "redis-server to accept connections", timeout=30)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --- job kinds for tests (registered in-process and in worker subprocesses) ----------------------
def register_test_kinds() -> None:
    """``test.record`` appends ``start``/``end`` lines to ``payload["log"]`` (O_APPEND, so lines
    from many processes interleave whole); ``test.block`` also waits for ``payload["release"]``
    to exist; ``test.flaky`` raises a transient error until its attempt ``payload["ok_at"]``."""
    from bot import jobs
    from bot.jobs.app import KINDS
    from bot.jobs.journal import Job

    def record(job: Job, ctx: jobs.Context, line: str) -> None:
        with open(job.payload["log"], "a") as fh:
            fh.write(f"{line} {job.id} {job.repo} {job.attempts} {os.getpid()}\n")

    def run_record(job: Job, ctx: jobs.Context) -> None:
        record(job, ctx, "start")
        time.sleep(job.payload.get("sleep", 0))
        record(job, ctx, "end")

    def run_block(job: Job, ctx: jobs.Context) -> None:
        record(job, ctx, "start")
        while not os.path.exists(job.payload["release"]):
            time.sleep(0.05)
        record(job, ctx, "end")

    def run_flaky(job: Job, ctx: jobs.Context) -> None:
        record(job, ctx, "start")
        if job.attempts < job.payload["ok_at"]:
            raise jobs.Transient("registry answered 503")
        record(job, ctx, "end")

    for name, run in (("test.record", run_record), ("test.block", run_block), ("test.flaky", run_flaky)):
        KINDS[name] = jobs.Kind(name, run)


def read_log(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


WORKER = (
    "import sys; from tests.support.webhooks import register_test_kinds; register_test_kinds(); "
    "from bot.jobs.worker import main; sys.exit(main())"
)


def start_worker(settings: Settings, log_to: Path, **env: str) -> subprocess.Popen[bytes]:
    """A real ``pullable worker`` process (plus the test kinds) for ``settings``' backend."""
    full = {
        **os.environ,
        "PULLABLE_DATA_DIR": str(settings.data_dir),
        "REDIS_URL": settings.redis_url,
        "PULLABLE_JOB_LEASE": str(settings.job_lease),
        "PULLABLE_REAP_INTERVAL": str(settings.reap_interval),
        "PULLABLE_RETRY_BASE": str(settings.retry_base),
        "PULLABLE_POLL_MAX": "0.2",
        "PULLABLE_WORKER_THREADS": "2",
        "LOG_LEVEL": "info",
        "APP_ID": settings.app_id,
        "PRIVATE_KEY": settings.private_key,
        **env,
    }
    full.pop("PROMETHEUS_MULTIPROC_DIR", None)
    out = open(log_to, "ab")  # noqa: SIM115 - handed to the child, closed with it
    return subprocess.Popen([sys.executable, "-c", WORKER], cwd=ROOT, env=full, stdout=out, stderr=out)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
