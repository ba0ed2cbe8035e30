"""Webhook payload helpers: real examples patched to the fake's state, signed as GitHub does."""

from __future__ import annotations

import hashlib
import hmac

from bot.github import pulls
from tests.support.fakegithub_webhooks import deliver, example, examples


def test_examples_are_real_and_copied():
    pushes = examples("push")
    assert len(pushes) >= 5 and all("ref" in p for p in pushes)
    a = example("issue_comment", "created")
    a["comment"]["body"] = "changed"
    assert example("issue_comment", "created")["comment"]["body"] != "changed"


def test_signature_is_hmac_of_the_exact_bytes():
    d = deliver("ping", b'{"zen":"Keep it logically awesome."}', "It's a Secret to Everybody")
    want = hmac.new(b"It's a Secret to Everybody", d.body, hashlib.sha256).hexdigest()
    assert d.headers["X-Hub-Signature-256"] == "sha256=" + want
    # GitHub's documented test vector
    vector = deliver("ping", b"Hello, World!", "It's a Secret to Everybody")
    assert vector.headers["X-Hub-Signature-256"] == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_installation_and_pull_request_payloads_follow_state(world):
    p = world.fake.installation_payload(world.inst)
    assert p["action"] == "created" and p["installation"]["id"] == world.inst.id
    assert [r["full_name"] for r in p["repositories"]] == ["octo-org/demo"]
    added = world.fake.create_repo("octo-org/added", {"a": "b"})
    p = world.fake.installation_repositories_payload(world.inst, [added])
    assert [r["id"] for r in p["repositories_added"]] == [added.id]
    world.fake.commit(world.repo, {"x": "y"}, branch="feature")
    s = world.github_app().session(
        world.inst.id, "octo-org/demo", {"pull_requests": "write", "contents": "read"}
    )
    pr, _ = pulls.create(s, "feature", "main", "t", "")
    p = world.fake.pull_request_payload(world.repo, pr.number, "opened", installation=world.inst)
    assert p["pull_request"]["head"]["sha"] == world.repo.refs["refs/heads/feature"]
    assert p["number"] == pr.number and p["installation"]["id"] == world.inst.id
    world.fake.close_issue(world.repo, pr.number)
    p = world.fake.pull_request_payload(world.repo, pr.number, "closed")
    assert p["pull_request"]["state"] == "closed" and p["pull_request"]["merged"] is False
    d = world.fake.delivery("pull_request", p, world.app, delivery_id="abc")
    assert d.delivery_id == "abc" and d.headers["X-GitHub-Event"] == "pull_request"
