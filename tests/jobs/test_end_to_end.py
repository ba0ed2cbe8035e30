"""End to end (issue 5 §7): signed deliveries from the fake GitHub -> the web app -> a real worker
process -> a scan through the fake's API, checked against a loopback registry -> findings
recorded for the PR writer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.jobs.dashboard import recorded as findings
from bot.jobs.queue import Queue
from bot.settings import Settings
from bot.web import create_app
from tests.support.fakegithub import FakeGitHub
from tests.support.webhooks import app_settings, start_worker, stop, wait_for

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.27
"""
COMPOSE = "services:\n  db:\n    image: postgres:16\n"


@pytest.fixture
def world(fake_github: FakeGitHub, registry_open, tmp_path: Path):
    registry_open.push("library/nginx", "1.27")
    registry_open.push("library/postgres", "16")
    app = fake_github.create_app()
    inst = fake_github.create_installation(app, account="octo-org")
    repo = fake_github.create_repo(
        "octo-org/demo", {"k8s/deploy.yaml": DEPLOY, "README.md": "# demo\n"}, installation=inst
    )
    settings = app_settings(
        tmp_path / "data", app, fake_github.base_url, registry_open, webhook_secret=app.webhook_secret
    )
    return fake_github, app, inst, repo, settings


def _worker_env(settings: Settings) -> dict[str, str]:
    return {
        "APP_ID": settings.app_id,
        "PRIVATE_KEY": settings.private_key,
        "GITHUB_API_URL": settings.github_api_url,
        "PULLABLE_GITHUB_PACING": "0",
        "PULLABLE_CONFIG": settings.config,
    }


def _post(settings: Settings, queue: Queue, delivery) -> str:
    r = (
        create_app(settings, queue)
        .test_client()
        .post("/api/github/webhooks", data=delivery.body, headers=delivery.headers)
    )
    assert r.status_code == 202, r.json
    return delivery.delivery_id


def test_push_and_install_become_recorded_findings(world, tmp_path: Path):
    fake, app, inst, repo, settings = world
    queue = Queue(settings)
    worker = start_worker(settings, tmp_path / "worker.out", **_worker_env(settings))
    try:
        # installation: a full scan of the default branch
        installed = _post(
            settings, queue, fake.delivery("installation", fake.installation_payload(inst), app)
        )
        wait_for(lambda: queue.journal.delivery(installed)["state"] == "done", "the installation scan")
        full = findings(queue.journal, "octo-org/demo")
        assert full["full"] is True and full["ref"] == "main" and full["sha"] == repo.refs["refs/heads/main"]
        assert [(f["path"], f["reference"]) for f in full["findings"]] == [
            ("k8s/deploy.yaml", "docker.io/library/nginx:1.27")
        ]
        # a push to the default branch: only the files it added or modified
        push = fake.push(repo, {"compose.yaml": COMPOSE, "README.md": "# demo, again\n"}, installation=inst)
        pushed = _post(settings, queue, fake.delivery("push", push.payload, app))
        wait_for(lambda: queue.journal.delivery(pushed)["state"] == "done", "the push scan")
    finally:
        stop(worker)
    part = findings(queue.journal, "octo-org/demo")
    assert part["full"] is False and part["paths"] == ["README.md", "compose.yaml"]
    assert part["sha"] == push.payload["after"]
    # every file is in the inventory; those the push added or modified hold just this reference
    pushed = set(part["paths"])
    assert [(f["path"], f["reference"], f["status"]) for f in part["findings"] if f["path"] in pushed] == [
        ("compose.yaml", "docker.io/library/postgres:16", "ok")
    ]
    assert {f["path"] for f in part["findings"]} == {"compose.yaml", "k8s/deploy.yaml"}
    # the scan read files through a token scoped to the one repository, and never cloned
    tokens = [e.body for e in fake.log if e.path.endswith("/access_tokens")]
    assert tokens and all(
        b.get("repositories") == ["demo"] or b.get("repository_ids") == [repo.id] for b in tokens
    ), tokens


def test_github_outage_is_retried_and_still_recorded(world, tmp_path: Path):
    fake, app, inst, _repo, settings = world
    settings = replace(settings, retry_base=0.2)
    queue = Queue(settings)
    fake.fail(
        "/repos/octo-org/demo/git/trees/", status=502, times=5
    )  # bot.github retries 5 times, then the job
    worker = start_worker(settings, tmp_path / "worker.out", **_worker_env(settings))
    try:
        installed = _post(
            settings, queue, fake.delivery("installation", fake.installation_payload(inst), app)
        )
        wait_for(lambda: queue.journal.delivery(installed)["state"] == "done", "the scan after the outage")
    finally:
        stop(worker)
    jobs = [queue.journal.get(j) for j in queue.journal.delivery(installed)["jobs"]]
    scan = next(j for j in jobs if j.kind == "scan")
    assert scan.attempts >= 2 and scan.state == "done"
    assert findings(queue.journal, "octo-org/demo")["findings"]
