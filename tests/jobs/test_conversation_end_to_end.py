"""End to end, the conversation half of issue 6 §7: signed deliveries -> the web app -> a real
worker process -> the fake GitHub and a loopback registry. A read-only user is refused, a writer
rescans, a redelivered comment duplicates nothing, ignore makes the image leave the PRs and the
dashboard, unignore brings it back, including a change a person had closed without merging."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.jobs import dashboard
from bot.jobs.queue import Queue
from bot.web import create_app
from tests.jobs.pr_world import build
from tests.support.webhooks import start_worker, stop, wait_for

PR_BRANCH = "pullable/bitnami-kubectl"


@pytest.fixture
def world(fake_github, registry_open, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PULLABLE_GITHUB_PACING", "0")
    w = build(fake_github, registry_open, tmp_path, monkeypatch)
    w.settings = replace(w.settings, webhook_secret=w.app.webhook_secret)
    w.fake.add_collaborator(w.repo, "writer", "write")
    w.fake.add_collaborator(w.repo, "reader", "read")
    queue = Queue(w.settings)
    env = {
        "APP_ID": w.settings.app_id,
        "PRIVATE_KEY": w.settings.private_key,
        "GITHUB_API_URL": w.settings.github_api_url,
        "PULLABLE_CONFIG": w.settings.config,
        "PULLABLE_GITHUB_PACING": "0",
    }
    worker = start_worker(w.settings, tmp_path / "worker.out", **env)
    try:
        yield w, queue
    finally:
        stop(worker)


def send(w, queue: Queue, event: str, payload: dict, delivery_id: str | None = None) -> str:
    d = w.fake.delivery(event, payload, w.app, delivery_id)
    r = (
        create_app(w.settings, queue)
        .test_client()
        .post("/api/github/webhooks", data=d.body, headers=d.headers)
    )
    assert r.status_code in (200, 202), r.json
    if r.status_code == 202:
        wait_for(lambda: queue.journal.delivery(d.delivery_id)["state"] == "done", f"{event} {d.delivery_id}")
    return r.json["result"]


def say(w, queue: Queue, number: int, body: str, user: str = "writer") -> dict:
    payload = w.fake.comment(w.repo, number, body, user=user, installation=w.inst)
    send(w, queue, "issue_comment", payload)
    return payload


def replies(w, number: int) -> list[str]:
    return [c.body for c in w.repo.comments.values() if c.issue == number and c.user == "pullable[bot]"]


def open_prs(w) -> list:
    return [i for i in w.fake.pulls(w.repo) if i.pull.head == PR_BRANCH]


def dashboard_issue(w):
    (issue,) = [i for i in w.repo.issues.values() if i.pull is None and i.title == dashboard.TITLE]
    return issue


def scans(w) -> int:
    return w.fake.count(operation="git/get-tree", include_304=True)


def test_conversation(world) -> None:
    w, queue = world
    send(w, queue, "installation", w.fake.installation_payload(w.inst))
    (pr,) = open_prs(w)
    dash = dashboard_issue(w)
    assert "bitnami/kubectl:1.31" in dash.body and f"#{pr.number}" in dash.body
    assert "Needs attention (1)" in dash.body

    # a read-only user is refused, with a reply, and nothing is scanned
    before = scans(w)
    refused = say(w, queue, dash.number, "/pullable rescan", user="reader")
    assert "could not confirm" in replies(w, dash.number)[-1]
    assert scans(w) == before
    assert not w.repo.comments[refused["comment"]["id"]].reactions  # the reply is the receipt (W21)

    # a writer rescans
    payload = say(w, queue, dash.number, "/pullable rescan")
    assert replies(w, dash.number)[-1].startswith("Rescan queued")
    assert scans(w) > before

    # the same signed body under a new GUID is a replay: intake recognises what is signed
    n = len(replies(w, dash.number))
    assert send(w, queue, "issue_comment", payload, delivery_id="redelivered") == "duplicate"
    # the same comment in other bytes (a new delivery of the same event) reaches the handler,
    # which still answers it only once
    again = {**payload, "pullable_test_copy": True}
    assert send(w, queue, "issue_comment", again, delivery_id="redelivered-2") == "accepted"
    assert len(replies(w, dash.number)) == n
    assert len(w.repo.comments[payload["comment"]["id"]].reactions) == 1

    # ignore: the PR is closed as no longer needed, the dashboard lists the image as ignored
    say(w, queue, pr.number, "/pullable ignore bitnami/kubectl")
    assert any("Ignored `docker.io/bitnami/kubectl`" in r for r in replies(w, pr.number))
    assert not open_prs(w) and pr.state == "closed"
    assert "Needs attention (0)" in dash.body and "## Ignored (1)" in dash.body
    assert "Open pull requests (0)" in dash.body

    # unignore: it comes back
    say(w, queue, dash.number, "/pullable unignore bitnami/kubectl")
    assert "is no longer ignored" in replies(w, dash.number)[-1]
    (again,) = open_prs(w)
    assert again.number != pr.number
    assert "Needs attention (1)" in dash.body and "## Ignored (0)" in dash.body
    assert f"#{again.number}" in dash.body

    # a person closes the PR without merging: not proposed again until unignore releases it
    w.fake.close_issue(w.repo, again.number)
    send(
        w,
        queue,
        "pull_request",
        w.fake.pull_request_payload(w.repo, again.number, "closed", installation=w.inst),
    )
    say(w, queue, dash.number, "/pullable rescan")
    assert not open_prs(w)
    say(w, queue, dash.number, "/pullable unignore bitnami/kubectl")
    text = replies(w, dash.number)[-1]
    assert "1 pull request closed without merging" in text and "may be proposed again" in text
    (third,) = open_prs(w)
    assert third.number not in (pr.number, again.number)
    w.fake.assert_clean()
