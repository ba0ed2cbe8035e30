"""End to end (issue 6 §7, the PR half): signed push deliveries -> the web app -> a real worker
process -> scan, registry check, rules -> pull requests on the fake GitHub."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from bot.jobs.queue import Queue
from bot.settings import Settings
from bot.web import create_app
from tests.jobs.pr_world import CONFIG, CRON, DEPLOY, push_images
from tests.support.fakegithub import FakeGitHub
from tests.support.webhooks import app_settings, start_worker, stop, wait_for

BRANCH = "pullable/bitnami-kubectl"
FIXED = DEPLOY.replace("bitnami/kubectl:1.31", "alpine/kubectl:1.33.4")


@pytest.fixture
def world(fake_github: FakeGitHub, registry_open, tmp_path: Path):
    push_images(registry_open)
    app = fake_github.create_app()
    inst = fake_github.create_installation(app, account="octo-org")
    repo = fake_github.create_repo(
        "octo-org/demo", {".github/pullable.yml": CONFIG, "README.md": "# demo\n"}, installation=inst
    )
    settings = app_settings(
        tmp_path / "data", app, fake_github.base_url, registry_open, webhook_secret=app.webhook_secret
    )
    env = {
        "APP_ID": settings.app_id,
        "PRIVATE_KEY": settings.private_key,
        "GITHUB_API_URL": settings.github_api_url,
        "PULLABLE_GITHUB_PACING": "0",
        "PULLABLE_CONFIG": settings.config,
    }
    worker = start_worker(settings, tmp_path / "worker.out", **env)
    try:
        yield fake_github, app, inst, repo, settings, Queue(settings)
    finally:
        stop(worker)


def _deliver(settings: Settings, queue: Queue, delivery, fresh: bool = True) -> None:
    """POST a signed delivery and wait until the journal says every job it caused is done."""
    r = (
        create_app(settings, queue)
        .test_client()
        .post("/api/github/webhooks", data=delivery.body, headers=delivery.headers)
    )
    assert r.status_code == (202 if fresh else 200), r.json
    wait_for(lambda: queue.journal.delivery(delivery.delivery_id)["state"] == "done", "the delivery's jobs")


def _diff(fake: FakeGitHub, repo, path: str) -> list[str]:
    base = (fake.file(repo, path) or "").splitlines()
    head = (fake.file(repo, path, BRANCH) or "").splitlines()
    return [
        d
        for d in difflib.unified_diff(base, head, lineterm="", n=0)
        if d[:1] in "+-" and d[:3] not in "+++---"
    ]


def _writes(fake: FakeGitHub) -> list[str]:
    tokens = ("access_tokens", "/installation/token")  # minting and revoking each job's tokens
    return [
        f"{e.method} {e.path}" for e in fake.log if e.method != "GET" and not any(t in e.path for t in tokens)
    ]


def test_push_opens_then_updates_one_pr_and_redelivery_duplicates_nothing(world):
    fake, app, inst, repo, settings, queue = world
    push = fake.push(repo, {"k8s/migrate.yaml": DEPLOY}, installation=inst)
    first = fake.delivery("push", push.payload, app)
    _deliver(settings, queue, first)
    (pr,) = fake.pulls(repo)
    assert pr.title == "Replace retired bitnami/kubectl with alpine/kubectl 1.33.4"
    assert pr.pull is not None and pr.pull.head == BRANCH
    # the exact diff: one line, and on it only the reference's bytes
    assert _diff(fake, repo, "k8s/migrate.yaml") == [
        "-          image: bitnami/kubectl:1.31  # pinned by ops",
        "+          image: alpine/kubectl:1.33.4  # pinned by ops",
    ]
    assert fake.file(repo, "k8s/migrate.yaml", BRANCH) == FIXED
    writes = _writes(fake)

    # the same delivery again (GitHub's redelivery keeps its id): nothing runs
    _deliver(settings, queue, first, fresh=False)
    # the same signed bytes under another id: a replay, recognised by what is signed
    replay = fake.delivery("push", push.payload, app)
    r = create_app(settings, queue).test_client().post("/api/github/webhooks", data=replay.body,
                                                       headers=replay.headers)  # fmt: skip
    assert r.status_code == 200 and r.json["result"] == "duplicate"
    # the same push in other bytes under another id (another delivery of it): scanned again, no write
    _deliver(settings, queue, fake.delivery("push", {**push.payload, "pullable_test_copy": True}, app))
    assert _writes(fake) == writes and len(fake.pulls(repo, "all")) == 1

    # a second push with another rotten reference: the same PR, updated in place
    second = fake.push(repo, {"k8s/cleanup.yaml": CRON}, installation=inst)
    _deliver(settings, queue, fake.delivery("push", second.payload, app))
    (pr,) = fake.pulls(repo, "all")
    assert pr.number == 1 and pr.state == "open"
    assert fake.file(repo, "k8s/migrate.yaml", BRANCH) == FIXED
    assert _diff(fake, repo, "k8s/cleanup.yaml") == [
        '-              image: "bitnami/kubectl:1.30"',
        '+              image: "alpine/kubectl:1.33.4"',
    ]
    head = repo.obj(repo.refs[f"refs/heads/{BRANCH}"], "commit")
    assert head.parents == [repo.refs["refs/heads/main"]] and head.verified
    fake.assert_clean()


def test_closed_pr_is_not_reopened_and_a_human_branch_is_left_alone(world):
    fake, app, inst, repo, settings, queue = world
    _deliver(settings, queue, fake.delivery("push", fake.push(repo, {"k8s/migrate.yaml": DEPLOY},
                                                               installation=inst).payload, app))  # fmt: skip
    fake.close_issue(repo, 1)
    _deliver(settings, queue, fake.delivery("push", fake.push(repo, {"README.md": "# demo 2\n"},
                                                               installation=inst).payload, app))  # fmt: skip
    assert [(p.number, p.state) for p in fake.pulls(repo, "all")] == [(1, "closed")]  # not reopened
    # a new change of the same rule gets a PR; a person then commits to its branch
    _deliver(settings, queue, fake.delivery("push", fake.push(repo, {"k8s/cleanup.yaml": CRON},
                                                               installation=inst).payload, app))  # fmt: skip
    (new,) = fake.pulls(repo)
    assert new.number != 1 and len(fake.pulls(repo, "all")) == 2
    fake.commit(repo, {"NOTES.md": "mine\n"}, branch=BRANCH, author="alice")
    theirs = repo.refs[f"refs/heads/{BRANCH}"]
    _deliver(settings, queue, fake.delivery("push", fake.push(repo, {"k8s/cleanup.yaml": CRON + "# x\n"},
                                                               installation=inst).payload, app))  # fmt: skip
    assert repo.refs[f"refs/heads/{BRANCH}"] == theirs
    said = [c.body for c in repo.comments.values() if c.issue == new.number]
    assert len(said) == 1 and "no longer update" in said[0]
    assert len(fake.pulls(repo, "all")) == 2


def test_a_502_and_a_secondary_rate_limit_while_opening_still_make_one_pr(world):
    fake, app, inst, repo, settings, queue = world
    fake.fail(r"/repos/octo-org/demo/pulls$", status=502, method="POST", after=True)
    fake.fail_secondary_rate_limit(r"/repos/octo-org/demo/git/refs$", retry_after=1, method="POST")
    push = fake.push(repo, {"k8s/migrate.yaml": DEPLOY}, installation=inst)
    _deliver(settings, queue, fake.delivery("push", push.payload, app))
    assert len(fake.pulls(repo, "all")) == 1
    assert fake.count(method="POST", path=r"/pulls$") == 2  # the lost answer was retried
    assert fake.count(method="POST", path=r"/git/refs$") == 2
    assert fake.file(repo, "k8s/migrate.yaml", BRANCH) == FIXED
    fake.assert_clean()
