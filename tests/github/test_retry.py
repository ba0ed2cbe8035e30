"""Retries and rate limits of the App's GitHub client, driven by the fake's failure hooks.
Sleeps are recorded instead of slept, so no test depends on time."""

from __future__ import annotations

import pytest

from bot.github import WRITE_PERMISSIONS, GitHubError, RateLimited, issues, rate_limit_remaining
from bot.github.http import RATE_LISTENERS, retry_after
from bot.jobs.reader import scan_repository


def test_502s_are_retried_with_backoff(world):
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    world.fake.fail(r"/git/trees/", times=2, status=502)
    result = scan_repository(s)
    assert result.refs
    assert world.sleeps == [1.0, 2.0]
    assert world.fake.count(path=r"/git/trees/") == 3


def test_secondary_rate_limit_waits_retry_after(world):
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    world.fake.fail_secondary_rate_limit(r"/git/ref/", retry_after=7)
    world.fake.fail(r"/git/blobs/", status=429, headers={"Retry-After": "3"})
    scan_repository(s)
    assert world.sleeps == [7.0, 3.0]


def test_secondary_rate_limit_without_retry_after_waits_a_minute(world):
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    world.fake.fail(
        r"^/repos/octo-org/demo$",
        status=403,
        message="You have exceeded a secondary rate limit. Please wait a few minutes.",
    )
    s.repository()
    assert world.sleeps == [60.0]


def test_gives_up_after_max_attempts_and_on_plain_403(world):
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    world.fake.fail(r"^/repos/octo-org/demo$", times=10, status=502)
    with pytest.raises(GitHubError) as exc:
        s.repository()
    assert exc.value.status == 502 and len(world.sleeps) == 4
    world.sleeps.clear()
    world.fake.faults.clear()
    world.fake.fail(r"^/repos/octo-org/demo$", status=403, message="Resource not accessible by integration")
    with pytest.raises(GitHubError):
        s.repository()
    assert world.sleeps == []


def test_primary_rate_limit_far_away_is_raised_not_slept(world):
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    s.repository()
    world.fake.set_rate_remaining(world.inst, 0)
    world.fake.rate_reset += 3600
    with pytest.raises(RateLimited) as exc:
        s.get_json("git/ref/heads/main")
    assert exc.value.wait > 900 and world.sleeps == []


def test_rate_limit_remaining_is_recorded_and_published(world):
    seen = []
    RATE_LISTENERS.append(lambda inst, resource, remaining: seen.append((inst, resource, remaining)))
    try:
        s = world.github_app().session(world.inst.id, "octo-org/demo")
        world.fake.set_rate_remaining(world.inst, 1234)
        s.repository()
        assert rate_limit_remaining(world.inst.id) == 1233
        assert (world.inst.id, "core", 1233) in seen
        s.get_json("git/ref/heads/main")
        assert s.rate_limit_remaining() == 1232
    finally:
        RATE_LISTENERS.pop()


def test_gives_up_on_a_write_that_keeps_failing(world):
    s = world.github_app().session(world.inst.id, "octo-org/demo", WRITE_PERMISSIONS)
    world.fake.fail(r"/issues$", status=502, times=20, method="POST")
    with pytest.raises(GitHubError) as exc:
        issues.create_issue(s, "x", "")
    assert exc.value.status == 502 and world.repo.issues == {}
    assert world.fake.count(method="POST", path=r"/issues$") == 5


def test_retry_after_rules():
    assert retry_after(403, {"Retry-After": "12"}, "") == 12.0
    assert retry_after(403, {}, '{"message": "Resource not accessible by integration"}') is None
    assert (
        retry_after(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1100"}, "", now=1000) == 101.0
    )
    assert retry_after(429, {}, "") == 60.0
    assert retry_after(404, {}, "") is None
    assert retry_after(503, {}, "") == 0.0
    assert retry_after(403, {"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, "", now=1445412480) == 10.0
