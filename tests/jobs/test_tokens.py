"""Installation tokens end with their job (security.md C2, issue 11 item 12): every token a job
minted is revoked at GitHub (``DELETE /installation/token``, checked by the fake against GitHub's
REST description) when the job ends, whether it succeeded, failed or will be retried; no job uses
another job's token."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.github import issues
from bot.jobs import requests
from bot.jobs.queue import Queue, execute
from tests.support.webhooks import app_settings

REPO = "octo-org/demo"
MINT = "apps/create-installation-access-token"
REVOKE = "apps/revoke-installation-access-token"


@pytest.fixture
def w(fake_github, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PULLABLE_GITHUB_PACING", "0")
    app = fake_github.create_app()
    inst = fake_github.create_installation(app)
    repo = fake_github.create_repo(REPO, {"README.md": "# demo\n"}, installation=inst)
    fake_github._new_issue(repo, "Something is off", "body", "octocat")
    fake_github.add_collaborator(repo, "writer", "write")
    settings = app_settings(tmp_path / "data", app, fake_github.base_url, max_attempts=2)
    issues._logins.clear()
    queue = Queue(settings)
    queue.fake = fake_github  # type: ignore[attr-defined]
    return fake_github, inst, repo, queue


def command(queue: Queue, inst, repo, verb: str = "help") -> str:
    """A ``/pullable help`` comment by a writer, as its command job."""
    c = queue.fake.comment(repo, 1, "/pullable help", user="writer", installation=inst)["comment"]
    payload = {
        "installation_id": inst.id, "repo": REPO, "number": 1, "pull": False, "comment_id": c["id"],
        "created_at": c["created_at"], "login": "writer", "verb": verb, "image": None,
    }  # fmt: skip
    return queue.submit(requests.COMMAND, payload, repo=REPO).id


def live(fake) -> list[str]:
    return [t for t, tok in fake.tokens.items() if not tok.revoked]


def test_every_token_of_a_successful_job_is_revoked(w) -> None:
    fake, inst, _repo, queue = w
    payload = {"installation_id": inst.id, "repo": REPO, "ref": None, "paths": None, "compare": []}
    scan = queue.submit(requests.SCAN, {**payload, "reasons": ["test"]}, repo=REPO)
    execute(queue, scan.id)
    assert queue.journal.get(scan.id).state == "done"
    assert fake.count(operation=MINT) >= 2  # the reader's and the writers' tokens
    assert fake.count(operation=REVOKE) == fake.count(operation=MINT) and not live(fake)


def test_tokens_are_revoked_when_the_job_fails_or_will_be_retried(w) -> None:
    fake, inst, repo, queue = w
    fake.fail_secondary_rate_limit(r"/issues/1/comments$", times=10, retry_after=3600, method="POST")
    job = command(queue, inst, repo)
    execute(queue, job)
    assert queue.journal.get(job).state == "queued"  # a retry is due
    assert fake.count(operation=MINT) == 1 and not live(fake)
    got = queue.journal.get(job)
    got.not_before = 0
    with queue.journal.store.transaction() as t:
        t.put_job(got)
    execute(queue, job)  # the retry mints its own token: the old one is dead
    assert queue.journal.get(job).state == "failed"
    assert fake.count(operation=MINT) == 2 and fake.count(operation=REVOKE) == 2 and not live(fake)


def test_jobs_do_not_share_tokens_and_outside_jobs_tokens_are_cached(w) -> None:
    from bot import github

    fake, inst, repo, queue = w
    for _ in range(2):
        execute(queue, command(queue, inst, repo))
    assert fake.count(operation=MINT) == 2 and fake.count(operation=REVOKE) == 2
    assert len([c for c in repo.comments.values() if c.user == "pullable[bot]"]) == 2
    s = github.session(queue.settings, inst.id, REPO)
    assert s.token.token == github.session(queue.settings, inst.id, REPO).token.token
    assert fake.count(operation=MINT) == 3 and live(fake)


def test_a_failed_revocation_does_not_fail_the_job(w, caplog: pytest.LogCaptureFixture) -> None:
    fake, inst, repo, queue = w
    fake.fail("/installation/token$", times=5, status=404, method="DELETE")
    job = command(queue, inst, repo)
    execute(queue, job)
    assert queue.journal.get(job).state == "done"
    assert "could not revoke a token" in caplog.text
    assert not [t for t in fake.tokens if t in caplog.text]  # the token itself is never logged
