"""``serve`` for real: gunicorn on HOST/PORT, its refusal to start without a secret, and the 25 MB cap
holding for a chunked body as a production server hands it to Flask (``wsgi.input_terminated``)."""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
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
