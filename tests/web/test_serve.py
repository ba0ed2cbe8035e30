"""``serve`` for real: gunicorn on HOST/PORT, its refusal to start without a secret, and the 25 MB cap
holding for a chunked body as a production server hands it to Flask (``wsgi.input_terminated``)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.web import MAX_BODY
from tests.support.artifacts import ROOT
from tests.support.fakegithub_webhooks import deliver, example, sign_bytes
from tests.support.webhooks import SECRET, app_key, free_port, stop, wait_for

SERVE = "import sys; from bot.web import serve; sys.exit(serve())"


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WEBHOOK_SECRET", "REDIS_URL", "APP_ID")}
    app = {"APP_ID": "1", "PRIVATE_KEY": app_key()}
    return {**env, "PULLABLE_DATA_DIR": str(tmp / "data"), "LOG_LEVEL": "warning", **app, **extra}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = _env(tmp_path, WEBHOOK_SECRET=SECRET, HOST="127.0.0.1", PORT=str(port))
    proc = subprocess.Popen([sys.executable, "-c", SERVE], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(base + "/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            assert proc.poll() is None, "serve exited"
            return False

    try:
        wait_for(up, "pullable serve to answer /healthz", timeout=90)
        yield base
    finally:
        stop(proc)


@pytest.mark.parametrize("secret", [None, "short"])
def test_serve_refuses_to_start_without_a_strong_secret(tmp_path: Path, secret: str | None):
    env = _env(tmp_path, PORT=str(free_port()), **({"WEBHOOK_SECRET": secret} if secret else {}))
    done = subprocess.run([sys.executable, "-c", SERVE], cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert done.returncode != 0 and b"WEBHOOK_SECRET" in done.stderr


def test_serve_accepts_a_signed_delivery(server: str):
    d = deliver("push", example("push", where=lambda p: p["ref"] == "refs/heads/master"), SECRET)
    r = httpx.post(server + "/api/github/webhooks", content=d.body, headers=d.headers)
    assert r.status_code == 202 and r.json()["result"] == "accepted"
    assert "pullable_queue_depth 1.0" in httpx.get(server + "/metrics").text


def test_chunked_body_over_the_cap_is_413_through_gunicorn(server: str):
    body = b'{"a":"' + b"x" * MAX_BODY + b'"}'
    port = int(server.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "0f0e0d0c-chunked",
        "X-Hub-Signature-256": sign_bytes(body[: MAX_BODY + 1], SECRET),  # what a truncating reader keeps
    }
    chunks = (body[i : i + (1 << 20)] for i in range(0, len(body), 1 << 20))
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it may answer before the end
        conn.request("POST", "/api/github/webhooks", body=chunks, headers=headers, encode_chunked=True)
    assert conn.getresponse().status == 413


class _Trickle:
    """Slow clients: some drip header bytes, the rest send headers then a body one byte at a time."""

    def __init__(self, port: int, bodies: int, headers: int, every: float = 0.5, lasting: float = 40) -> None:
        import socket
        import threading

        self.stop = threading.Event()
        self.socks: list[socket.socket] = []
        for i in range(bodies + headers):
            s = socket.create_connection(("127.0.0.1", port))
            head = (
                b"POST /api/github/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"X-GitHub-Event: push\r\nContent-Length: 100000\r\n\r\n"
            )
            s.sendall(head if i < bodies else head[:10])
            self.socks.append(s)
        self.dripping = threading.Thread(target=self._drip, args=(every, lasting), daemon=True)
        self.dripping.start()

    def _drip(self, every: float, lasting: float) -> None:
        end = time.monotonic() + lasting
        while not self.stop.is_set() and time.monotonic() < end:
            for s in self.socks:
                with contextlib.suppress(OSError):
                    s.send(b"x")
            self.stop.wait(every)

    def close(self) -> None:
        self.stop.set()
        for s in self.socks:
            s.close()


def test_trickling_clients_do_not_stop_intake(server: str):
    """24 connections trickling request bytes (16 in the body, 8 still in the headers) used to
    hold every gunicorn thread, so GitHub's deliveries timed out at its 10 s; each signed delivery
    must still be acknowledged promptly (the bound is generous: this is about availability)."""
    port = int(server.rsplit(":", 1)[1])
    slow = _Trickle(port, bodies=16, headers=8)
    try:
        time.sleep(1.0)  # let every slow connection reach a worker thread
        for i in range(5):
            payload = example("push", where=lambda p: p["ref"] == "refs/heads/master")
            payload["after"] = f"{i:040x}"
            d = deliver("push", payload, SECRET)
            started = time.monotonic()
            r = httpx.post(server + "/api/github/webhooks", content=d.body, headers=d.headers, timeout=10)
            assert r.status_code == 202, r.text
            assert time.monotonic() - started < 5
    finally:
        slow.close()


def _app_env(tmp: Path, **extra: str) -> dict[str, str]:
    """What an operator's shell has after loading .env: no PULLABLE_DATA_DIR, a HOME of its own,
    and a GitHub that refuses connections (nothing reaches the internet)."""
    drop = ("WEBHOOK_SECRET", "REDIS_URL", "APP_ID", "PULLABLE_DATA_DIR", "XDG_DATA_HOME",
            "PROMETHEUS_MULTIPROC_DIR")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {
        **env, "HOME": str(tmp / "home"), "WEBHOOK_SECRET": SECRET, "APP_ID": "1", "PRIVATE_KEY": app_key(),
        "GITHUB_API_URL": f"http://127.0.0.1:{free_port()}", "PULLABLE_POLL_MAX": "0.2",
        "PULLABLE_RETRY_BASE": "600", "PULLABLE_REAP_INTERVAL": "1", **extra,
    }  # fmt: skip


def test_serve_and_worker_started_anywhere_share_one_queue_and_one_metrics_view(tmp_path: Path):
    """Items 1, 2 and 7 of issue 16 together: `serve` and `worker` started in different
    directories without PULLABLE_DATA_DIR use one queue; every scrape of the web's /metrics shows
    the same deliveries and the worker's job durations; LOG_LEVEL=warn quiets gunicorn; the
    worker's JSON log lines name their job and repository."""
    (tmp_path / "web").mkdir()
    (tmp_path / "worker").mkdir()
    port, worker_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    web_err = tmp_path / "web.err"
    worker_err = tmp_path / "worker.err"
    web = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"], cwd=tmp_path / "web", stdout=subprocess.DEVNULL,
        stderr=web_err.open("wb"), env=_app_env(tmp_path, PORT=str(port), LOG_LEVEL="warn"),
    )  # fmt: skip
    worker_env = _app_env(tmp_path, LOG_FORMAT="json", PULLABLE_METRICS_PORT=str(worker_port))
    worker = subprocess.Popen(
        [sys.executable, "-m", "bot", "worker"], cwd=tmp_path / "worker", stdout=subprocess.DEVNULL,
        stderr=worker_err.open("wb"), env=worker_env,
    )  # fmt: skip
    try:

        def up() -> bool:
            assert web.poll() is None, web_err.read_text()
            assert worker.poll() is None, worker_err.read_text()
            try:
                return httpx.get(base + "/healthz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, "pullable serve to answer /healthz", timeout=90)
        push = example("push", where=lambda p: p["ref"] == "refs/heads/master" and p.get("installation"))
        d = deliver("push", push, SECRET)
        assert httpx.post(base + "/api/github/webhooks", content=d.body, headers=d.headers).status_code == 202
        done = 'pullable_job_duration_seconds_count{kind="webhook",outcome="done"} 1.0'
        wait_for(lambda: done in httpx.get(base + "/metrics").text, "the worker's job in the web's /metrics")
        accepted = 'pullable_webhook_deliveries_total{event="push",result="accepted"} 1.0'
        for _ in range(6):  # two gunicorn workers answer in turn: every scrape is the same
            text = httpx.get(base + "/metrics").text
            assert accepted in text and done in text, text
        # a worker on another machine is scraped on its own port
        assert done in httpx.get(f"http://127.0.0.1:{worker_port}/metrics").text
        shared = tmp_path / "home" / ".local" / "share" / "pullable"
        assert (shared / "pullable.db").is_file()
        assert not (tmp_path / "web" / "data").exists() and not (tmp_path / "worker" / "data").exists()
        assert httpx.get(base + "/healthz").json()["worker_heartbeat_age_seconds"] is not None
        assert httpx.get(base + "/livez").status_code == 200
        repo = push["repository"]["full_name"].lower()

        def retried() -> list[dict]:
            lines = [json.loads(line) for line in worker_err.read_text().splitlines() if line.startswith("{")]
            return [r for r in lines if r.get("repo") == repo and r.get("job") and "retry" in r["msg"]]

        (line, *_) = wait_for(retried, "the scan's retry logged as JSON with its repository and job")
        assert line["level"] == "warning" and line["delivery"] == d.headers["X-GitHub-Delivery"]
    finally:
        stop(web)
        stop(worker)
    assert all(line.startswith("{") for line in worker_err.read_text().splitlines() if line.strip())
    assert "Listening at" not in web_err.read_text() and "Booting worker" not in web_err.read_text()


@pytest.mark.parametrize(("drop", "word"), [("APP_ID", "APP_ID is not set"), ("PRIVATE_KEY", "PRIVATE_KEY")])
def test_worker_without_the_app_credentials_stops_at_start_with_one_line(
    tmp_path: Path, drop: str, word: str
) -> None:
    env = _app_env(tmp_path)
    env.pop(drop)
    done = subprocess.run([sys.executable, "-m", "bot", "worker"], env=env, capture_output=True, timeout=120)
    err = done.stderr.decode()
    assert done.returncode == 2 and word in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    ("extra", "word"),
    [
        ({"PRIVATE_KEY": "junk"}, "PRIVATE_KEY"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"APP_ID": "x"}, "APP_ID"),
    ],
)
def test_serve_with_a_bad_setting_stops_at_start_with_one_line(
    tmp_path: Path, extra: dict, word: str
) -> None:
    env = _app_env(tmp_path, PORT=str(free_port()), **extra)
    done = subprocess.run([sys.executable, "-m", "bot", "serve"], env=env, capture_output=True, timeout=120)
    err = done.stderr.decode()
    assert done.returncode == 2 and word in err and len(err.strip().splitlines()) == 1, err
