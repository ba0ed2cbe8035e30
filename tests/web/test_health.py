"""``/healthz`` and ``/metrics`` tell "jobs wait for a worker" from "no worker takes them"; the
webhook refuses deliveries nothing could act on; forwarded headers count only from trusted
proxies."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from bot.jobs.queue import Queue
from bot.settings import Settings
from bot.web import create_app, health
from tests.support.fakegithub_webhooks import deliver, example
from tests.support.webhooks import SECRET, settings_for


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return settings_for(tmp_path / "data", stall_after=60.0, **kw)


def _push() -> dict:
    return example("push", where=lambda p: p["ref"] == "refs/heads/master" and p.get("installation"))


def test_healthz_is_unhealthy_when_jobs_wait_and_no_worker_takes_them(tmp_path: Path):
    settings = _settings(tmp_path)
    queue = Queue(settings)
    client = create_app(settings, queue).test_client()
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json["waiting"] == 0
    d = deliver("push", _push(), SECRET)
    assert client.post("/api/github/webhooks", data=d.body, headers=d.headers).status_code == 202
    now = time.time()
    assert health(queue, settings, now + 5)["ok"]  # just queued: fine
    late = health(queue, settings, now + 120)
    assert not late["ok"] and late["waiting"] == 1 and late["oldest_waiting_seconds"] >= 119
    assert "no worker has ever taken jobs" in late["error"] and str(settings.data_dir) in late["error"]
    # through the route, with the clock at "now": a stall counts as soon as the threshold is 0
    stalled = create_app(replace(settings, stall_after=0.0), queue).test_client().get("/healthz")
    assert stalled.status_code == 503 and stalled.json["ok"] is False
    # a worker that beats recently: waiting jobs are its backlog, not a stall
    queue.journal.worker_beat("host:1", now + 100)
    assert health(queue, settings, now + 120)["ok"]
    # ... until it has been silent for the threshold
    assert not health(queue, settings, now + 100 + 61)["ok"]


def test_metrics_report_waiting_jobs_the_oldest_and_the_heartbeat(tmp_path: Path):
    settings = _settings(tmp_path)
    queue = Queue(settings)
    client = create_app(settings, queue).test_client()
    d = deliver("push", _push(), SECRET)
    client.post("/api/github/webhooks", data=d.body, headers=d.headers)
    text = client.get("/metrics").text
    assert "pullable_queue_waiting 1.0" in text and "pullable_queue_oldest_waiting_seconds " in text
    assert "pullable_worker_heartbeat_age_seconds" not in text  # no worker ever
    queue.journal.worker_beat("host:1")
    assert "pullable_worker_heartbeat_age_seconds " in client.get("/metrics").text


def test_deliveries_are_refused_while_app_id_is_unset(tmp_path: Path):
    settings = _settings(tmp_path, app_id="")
    queue = Queue(settings)
    client = create_app(settings, queue).test_client()
    d = deliver("push", _push(), SECRET)
    r = client.post("/api/github/webhooks", data=d.body, headers=d.headers)
    assert r.status_code == 503 and r.json["result"] == "not_set_up"
    assert queue.journal.counts()["queued"] == 0


def _host_seen(settings: Settings) -> str:
    client = create_app(settings).test_client()
    token = (settings.data_dir / "setup-token").read_text().strip()  # written at start while unset
    r = client.get(
        f"/setup?token={token}",
        base_url="http://127.0.0.1:3000",
        headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"},
    )
    assert r.status_code == 200
    return r.text


def test_forwarded_headers_count_only_behind_trusted_proxies(tmp_path: Path):
    untrusted = _host_seen(_settings(tmp_path, app_id=""))
    assert "evil.example" not in untrusted and "http://127.0.0.1:3000/api/github/webhooks" in untrusted
    trusted = _host_seen(_settings(tmp_path, app_id="", trusted_proxies=1))
    assert "https://evil.example/api/github/webhooks" in trusted
