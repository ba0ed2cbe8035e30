"""Issue, comment and reaction primitives against the fake GitHub (contract-checked)."""

from __future__ import annotations

import pytest

from bot.github import issues

PERMS = {"issues": "write", "metadata": "read"}


@pytest.fixture
def session(world):
    return world.github_app().session(world.inst.id, world.repo.full_name, PERMS)


def test_bot_login_is_the_apps_slug_and_asked_once(world, session) -> None:
    issues._logins.clear()
    assert issues.bot_login(session) == "pullable[bot]"
    assert issues.bot_login(session) == "pullable[bot]"
    assert world.fake.count(operation="apps/get-authenticated") == 1


def test_issue_comment_and_reaction_round_trip(world, session) -> None:
    made = issues.create_issue(session, "Pullable: image health", "body one", labels=["pullable"])
    number = made["number"]
    assert made["user"]["login"] == "pullable[bot]"
    assert world.repo.issues[number].labels == ["pullable"]
    issues.edit_issue(session, number, body="body two")
    assert world.repo.issues[number].body == "body two"

    payload = world.fake.comment(world.repo, number, "/pullable help", user="alice")
    cid = payload["comment"]["id"]
    issues.react(session, cid)
    issues.react(session, cid)  # a redelivery: still one reaction
    assert [r[1:] for r in world.repo.comments[cid].reactions] == [("pullable[bot]", "eyes")]

    reply = issues.comment(session, number, "hello")
    issues.edit_comment(session, reply["id"], "hello again")
    listed = issues.comments(session, number, since=payload["comment"]["created_at"])
    assert [(c["user"]["login"], c["body"]) for c in listed] == [
        ("alice", "/pullable help"),
        ("pullable[bot]", "hello again"),
    ]


def test_issues_by_skips_pull_requests_and_other_authors(world, session) -> None:
    mine = issues.create_issue(session, "one", "x")
    world.fake._new_issue(world.repo, "two", "x", "mallory")
    found = list(issues.issues_by(session, "pullable[bot]"))
    assert [i["number"] for i in found] == [mine["number"]]


def test_issues_by_pages(world, session) -> None:
    for i in range(issues.PAGE + 3):
        world.fake._new_issue(world.repo, f"n{i}", "x", "pullable[bot]")
    found = list(issues.issues_by(session, "pullable[bot]"))
    assert len(found) == issues.PAGE + 3
    assert world.fake.count(operation="issues/list-for-repo") == 2


def test_creates_that_github_cannot_deduplicate_are_not_resent_after_a_lost_answer(world, session) -> None:
    """A 502 whose write was applied: the issue, the comment and the check run exist once; a 502
    whose write was not applied is still retried."""
    from bot.github import checks

    issues._logins.clear()
    world.fake.fail(r"/issues$", status=502, method="POST", after=True)
    made = issues.create_issue(session, "Pullable: image health", "the body")
    assert [i.title for i in world.repo.issues.values()] == ["Pullable: image health"]
    number = made["number"]
    world.fake.fail(r"/comments$", status=502, method="POST", after=True)
    said = issues.comment(session, number, "once")
    assert [c.body for c in world.repo.comments.values()] == ["once"] and said["body"] == "once"
    world.fake.fail(r"/comments$", status=502, method="POST", times=2)  # not applied: sent again
    issues.comment(session, number, "twice")
    assert [c.body for c in world.repo.comments.values()] == ["once", "twice"]

    sha = world.repo.refs["refs/heads/main"]
    writer = world.github_app().session(world.inst.id, world.repo.full_name, {"checks": "write"})
    world.fake.fail(r"/check-runs$", status=502, method="POST", after=True)
    checks.start(writer, sha, "Pullable")
    assert len(world.repo.check_runs) == 1
    world.fake.assert_clean()
