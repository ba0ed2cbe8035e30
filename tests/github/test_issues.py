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
