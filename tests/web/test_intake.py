"""Webhook intake (security.md §3 and W1-W11) with real payloads from @octokit/webhooks-examples."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from bot.jobs.queue import Queue
from bot.settings import Settings, SettingsError
from bot.web import MAX_BODY, create_app, signature_ok
from tests.support.fakegithub_webhooks import Delivery, deliver, example, sign_bytes
from tests.support.webhooks import SECRET, settings_for


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path / "data")


@pytest.fixture
def queue(settings: Settings) -> Queue:
    return Queue(settings)


@pytest.fixture
def client(settings: Settings, queue: Queue) -> FlaskClient:
    return create_app(settings, queue).test_client()


def push_to_default() -> dict:
    return example("push", where=lambda p: p["ref"] == "refs/heads/master" and p.get("installation"))


def raw(event: str, body: bytes) -> Delivery:
    """A delivery of arbitrary bytes, correctly signed."""
    d = deliver(event, {}, SECRET)
    d.body, d.headers["X-Hub-Signature-256"] = body, sign_bytes(body, SECRET)
    return d


def post(client: FlaskClient, d: Delivery, **headers: str):
    return client.post("/api/github/webhooks", data=d.body, headers={**d.headers, **headers})


def jobs_recorded(queue: Queue) -> int:
    return queue.journal.counts()["queued"]


def test_signature_matches_githubs_test_vector():
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature_ok("It's a Secret to Everybody", b"Hello, World!", header)
    assert not signature_ok("It's a Secret to Everybody", b"Hello, World?", header)


@pytest.mark.parametrize("secret", [None, "", "changeme", " " * 30, "x" * 19])
def test_refuses_to_start_without_a_strong_secret(tmp_path: Path, secret: str | None):  # W6
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        create_app(Settings.from_env({} if secret is None else {"WEBHOOK_SECRET": secret}))


def test_valid_push_is_recorded_and_acknowledged_202(client: FlaskClient, queue: Queue):
    d = deliver("push", push_to_default(), SECRET)
    r = post(client, d)
    assert r.status_code == 202 and r.json["result"] == "accepted"
    job = queue.journal.get(r.json["job"])
    assert job.kind == "webhook" and job.payload["payload"] == d.payload
    assert job.deliveries == [d.delivery_id]
    assert queue.huey.pending_count() == 1


H = "X-Hub-Signature-256"


def _sig(value: str):
    return lambda d: d.headers.update({H: value if "{}" not in value else value.format(d.headers[H][7:])})


MANGLES = {
    "W1-missing": lambda d: d.headers.pop(H),
    "W2-wrong-secret": lambda d: d.headers.update({H: sign_bytes(d.body, "wrong" * 5)}),
    "W3-whitespace": lambda d: setattr(d, "body", d.body.replace(b'"ref"', b'"ref" ', 1)),
    "W3-one-byte": lambda d: setattr(d, "body", d.body[:-2] + b"0}"),
    "W4-sha1-only": lambda d: d.headers.pop(H),
    "W5-sha512": _sig("sha512=" + "0" * 128),
    "W5-prefix-case": _sig("SHA256={}"),
    "W5-upper-hex": lambda d: d.headers.update({H: "sha256=" + d.headers[H][7:].upper()}),
    "W5-non-ascii": _sig("sha256=é" + "0" * 63),
    "W5-10k": _sig("sha256=" + "a" * 10_000),
    "empty": _sig(""),
}


@pytest.mark.parametrize("mangle", MANGLES.values(), ids=MANGLES.keys())
def test_unverified_deliveries_get_401_and_leave_no_trace(client: FlaskClient, queue: Queue, mangle):
    d = deliver("push", push_to_default(), SECRET)
    assert "X-Hub-Signature" in d.headers  # the legacy sha1 header is present and must not count
    mangle(d)
    r = post(client, d)
    assert r.status_code == 401
    assert jobs_recorded(queue) == 0 and queue.journal.delivery(d.delivery_id) is None


def test_same_delivery_twice_is_processed_once(client: FlaskClient, queue: Queue):  # W7
    d = deliver("push", push_to_default(), SECRET)
    assert post(client, d).status_code == 202
    r = post(client, d)
    assert r.status_code == 200 and r.json["result"] == "duplicate"
    assert jobs_recorded(queue) == 1


def test_redelivery_after_a_failure_runs_again(client: FlaskClient, queue: Queue):  # W8
    d = deliver("push", push_to_default(), SECRET)
    first = queue.journal.claim(post(client, d).json["job"], lease=30)
    queue.journal.finish(first, error="RuntimeError: handler raised")
    r = post(client, d)
    assert r.status_code == 202 and r.json["job"] != first.id


def test_redelivery_after_success_is_a_duplicate(client: FlaskClient, queue: Queue):
    d = deliver("push", push_to_default(), SECRET)
    job = queue.journal.claim(post(client, d).json["job"], lease=30)
    queue.journal.finish(job)
    assert post(client, d).json["result"] == "duplicate"


def test_the_same_signed_body_under_new_delivery_ids_is_a_duplicate(client: FlaskClient, queue: Queue):
    """A captured delivery replayed with fresh ``X-GitHub-Delivery`` values (the header is not
    signed) is recognised by what is signed and runs once."""
    d = deliver("push", push_to_default(), SECRET)
    assert post(client, d).status_code == 202
    for i in range(3):
        r = post(client, d, **{"X-GitHub-Delivery": f"replayed-{i}"})
        assert r.status_code == 200 and r.json["result"] == "duplicate"
    assert jobs_recorded(queue) == 1
    other = deliver("push", {**push_to_default(), "after": "f" * 40}, SECRET)
    assert post(client, other).status_code == 202  # a different body is a different delivery


def test_a_replay_of_a_failed_delivery_under_a_new_id_runs_again(client: FlaskClient, queue: Queue):
    d = deliver("push", push_to_default(), SECRET)
    first = queue.journal.claim(post(client, d).json["job"], lease=30)
    queue.journal.finish(first, error="RuntimeError: handler raised")
    assert post(client, d, **{"X-GitHub-Delivery": "after-failure"}).status_code == 202


def test_body_over_25mb_with_content_length_is_413(client: FlaskClient, queue: Queue):  # W9
    body = b'{"a":"' + b"x" * MAX_BODY + b'"}'
    d = deliver("push", push_to_default(), SECRET)
    headers = {**d.headers, "X-Hub-Signature-256": sign_bytes(body, SECRET)}
    r = client.post("/api/github/webhooks", data=body, headers=headers)
    assert r.status_code == 413 and jobs_recorded(queue) == 0


def test_chunked_body_over_25mb_is_413_not_truncated(client: FlaskClient, queue: Queue):  # W9
    # A signed body whose first MAX_BODY+1 bytes are what Werkzeug would keep: without the length
    # check the truncated prefix would be verified against its own signature.
    body = b'{"a":"' + b"x" * MAX_BODY + b'"}'
    prefix = body[: MAX_BODY + 1]
    d = deliver("push", push_to_default(), SECRET)
    headers = {k: v for k, v in d.headers.items() if k != "Content-Length"}
    headers["X-Hub-Signature-256"] = sign_bytes(prefix, SECRET)
    headers["Transfer-Encoding"] = "chunked"
    r = client.post(
        "/api/github/webhooks",
        input_stream=io.BytesIO(body),
        headers=headers,
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert r.status_code == 413 and jobs_recorded(queue) == 0


def test_signed_non_json_is_400_and_form_content_type_is_415(client: FlaskClient, queue: Queue):  # W10
    assert post(client, raw("push", b"not json at all")).status_code == 400
    assert post(client, raw("push", b"[1, 2, 3]")).status_code == 400
    assert post(client, raw("push", b'{"ref": "\xff"}')).status_code == 400
    d = deliver("push", push_to_default(), SECRET)
    r = post(client, d, **{"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    assert jobs_recorded(queue) == 0


def test_missing_delivery_or_event_header_is_400(client: FlaskClient, queue: Queue):
    d = deliver("push", push_to_default(), SECRET)
    d.headers.pop("X-GitHub-Delivery")
    assert post(client, d).status_code == 400
    d = deliver("push", push_to_default(), SECRET)
    d.headers["X-GitHub-Event"] = "../../etc"
    assert post(client, d).status_code == 400
    assert jobs_recorded(queue) == 0


def test_ping_answers_200(client: FlaskClient, queue: Queue):
    ping = example("ping")
    r = post(client, deliver("ping", ping, SECRET))
    assert r.status_code == 200 and r.json["result"] == "pong" and r.json["zen"] == ping["zen"]
    assert jobs_recorded(queue) == 0


@pytest.mark.parametrize(
    ("event", "action"),
    [("star", "created"), ("installation", "deleted"), ("installation_repositories", "removed"),
     ("workflow_run", "completed"), ("issues", "edited")],
)  # fmt: skip
def test_unhandled_events_and_actions_get_2xx_and_nothing_else(
    client: FlaskClient, queue: Queue, event: str, action: str
):  # W11
    d = deliver(event, example(event, action), SECRET)
    r = post(client, d)
    assert r.status_code == 200 and r.json["result"] == "ignored"
    assert jobs_recorded(queue) == 0 and queue.journal.delivery(d.delivery_id) is None
    assert queue.huey.pending_count() == 0


def test_handled_installation_events_are_accepted(client: FlaskClient, queue: Queue):
    assert (
        post(client, deliver("installation", example("installation", "created"), SECRET)).status_code == 202
    )
    added = example("installation_repositories", "added")
    assert post(client, deliver("installation_repositories", added, SECRET)).status_code == 202
    assert jobs_recorded(queue) == 2


def test_queue_down_is_503_so_github_records_a_failure(client: FlaskClient, queue: Queue, monkeypatch):
    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(queue.journal, "accept", broken)
    r = post(client, deliver("push", push_to_default(), SECRET))
    assert r.status_code == 503


def test_healthz_reports_the_queue(client: FlaskClient, queue: Queue, monkeypatch):
    assert client.get("/healthz").status_code == 200

    def broken() -> None:
        raise OSError("database is locked")

    monkeypatch.setattr(queue.journal, "ping", broken)
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json["ok"] is False


def test_metrics_count_deliveries_and_queue_depth(client: FlaskClient, queue: Queue):
    def value(text: str, name: str) -> float:
        for line in text.splitlines():
            if line.rsplit(" ", 1)[0] == name:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    metric = 'pullable_webhook_deliveries_total{event="push",result="unauthorized"}'
    before = value(client.get("/metrics").text, metric)
    d = deliver("push", push_to_default(), SECRET)
    d.headers.pop("X-Hub-Signature-256")
    post(client, d)
    post(client, deliver("push", push_to_default(), SECRET))
    text = client.get("/metrics").text
    assert value(text, metric) == before + 1
    assert value(text, "pullable_queue_depth") == 1
    for declared in ("pullable_registry_requests_total counter", "pullable_github_rate_limit_remaining gauge",
                     "pullable_job_duration_seconds histogram"):  # fmt: skip
        assert f"# TYPE {declared}" in text
