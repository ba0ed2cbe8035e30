"""A worker killed with -9 in the middle of real work (issue 11, faults): a real worker process
scans a repository through the fake GitHub and opens a pull request; the fake holds one request
of the job, the test kills the worker there, and a second worker takes the job over once its lease
runs out. Whatever point it died at (reading a file, after creating the branch, after GitHub opened
the pull request but before the worker heard of it), the job runs again and there is exactly one
pull request, with the fix on its branch."""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path

import pytest

from bot.jobs.queue import Queue
from bot.web import create_app
from tests.jobs.pr_world import CONFIG, DEPLOY, push_images
from tests.support.fakegithub import FakeGitHub
from tests.support.webhooks import app_settings, start_worker, stop, wait_for

BRANCH = "pullable/bitnami-kubectl"
FIXED = DEPLOY.replace("bitnami/kubectl:1.31", "alpine/kubectl:1.33.4")


@pytest.mark.parametrize(
    ("where", "method", "path", "apply"),
    [
        ("mid-scan, reading a file", "GET", r"/git/blobs/", True),
        ("mid-PR, creating the branch", "POST", r"/git/refs$", False),
        ("mid-PR, GitHub opened it but the worker never heard", "POST", r"/pulls$", True),
    ],
)
def test_a_worker_killed_mid_job_leaves_exactly_one_pr(
    fake_github: FakeGitHub, registry_open, tmp_path: Path, where: str, method: str, path: str, apply: bool
) -> None:
    fake = fake_github
    push_images(registry_open)
    app = fake.create_app()
    inst = fake.create_installation(app, account="octo-org")
    repo = fake.create_repo(
        "octo-org/demo",
        {".github/pullable.yml": CONFIG, "k8s/migrate.yaml": DEPLOY, "README.md": "# demo\n"},
        installation=inst,
    )
    settings = app_settings(
        tmp_path / "data", app, fake.base_url, registry_open, webhook_secret=app.webhook_secret
    )
    settings = replace(settings, job_lease=2.0, reap_interval=0.2)
    env = {
        "APP_ID": settings.app_id,
        "PRIVATE_KEY": settings.private_key,
        "GITHUB_API_URL": settings.github_api_url,
        "PULLABLE_GITHUB_PACING": "0",
        "PULLABLE_CONFIG": settings.config,
    }
    queue = Queue(settings)
    held = fake.hold(path, method=method, apply=apply)
    d = fake.delivery("installation", fake.installation_payload(inst), app)
    r = create_app(settings, queue).test_client().post("/api/github/webhooks", data=d.body, headers=d.headers)
    assert r.status_code == 202, r.json

    first = start_worker(settings, tmp_path / "worker1.out", **env)
    try:
        wait_for(held.reached.is_set, f"the worker to get {where}")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        held.release.set()
        stop(first)
    opened_while_dying = len(fake.pulls(repo, "all"))
    second = start_worker(settings, tmp_path / "worker2.out", **env)
    try:
        wait_for(lambda: queue.journal.delivery(d.delivery_id)["state"] == "done", "the job to run again")
    finally:
        stop(second)

    jobs = [queue.journal.get(j) for j in queue.journal.delivery(d.delivery_id)["jobs"]]
    scan = next(j for j in jobs if j is not None and j.kind == "scan")
    assert scan.state == "done" and scan.attempts == 2, (scan.state, scan.attempts, scan.error)
    assert opened_while_dying == (1 if path == r"/pulls$" else 0)
    (pr,) = fake.pulls(repo, "all")
    assert pr.state == "open" and pr.pull is not None and pr.pull.head == BRANCH
    assert fake.file(repo, "k8s/migrate.yaml", BRANCH) == FIXED
    fake.assert_clean()
