"""Who may command the bot (security.md §4.3's second table, W13-W16), asked of the fake GitHub."""

from __future__ import annotations

import httpx
import pytest

from bot.github.permissions import Decision, authorise, decide


@pytest.fixture
def session(world):
    return world.github_app().session(world.inst.id, world.repo.full_name, {"metadata": "read"})


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("admin", True), ("maintain", True), ("write", True), ("triage", False), ("read", False)],
)
def test_roles(world, session, role: str, allowed: bool) -> None:
    world.fake.add_collaborator(world.repo, "alice", role)
    assert authorise(session, "alice") == Decision(allowed, role)


def test_the_owner_is_admin(world, session) -> None:
    assert authorise(session, world.repo.owner).allowed


def test_outsider_on_a_public_repo_only_reads(world) -> None:
    repo = world.fake.create_repo("octo-org/public", {"README.md": "hi\n"}, private=False)
    world.fake.user("stranger")
    s = world.github_app().session(world.inst.id, repo.full_name, {"metadata": "read"})
    assert authorise(s, "stranger") == Decision(False, "read")


def test_unknown_user_is_refused(session) -> None:
    assert authorise(session, "nobody-at-all") == Decision(False, "error 404")


@pytest.mark.parametrize("status", [403, 404, 500, 502])
def test_api_errors_refuse(world, session, status: int) -> None:
    world.fake.add_collaborator(world.repo, "alice", "admin")
    world.fake.fail("/collaborators/alice/permission", times=10, status=status)
    decision = authorise(session, "alice")
    assert decision.allowed is False and decision.role == f"error {status}"


def test_a_timeout_refuses(world, session) -> None:
    world.fake.add_collaborator(world.repo, "alice", "admin")
    session.token  # mint through the real client first  # noqa: B018
    real = session.app.http.client

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/permission"):
            raise httpx.ReadTimeout("timed out", request=request)
        return real.send(request)

    session.app.http.client = httpx.Client(base_url=real.base_url, transport=httpx.MockTransport(handler))
    try:
        assert authorise(session, "alice") == Decision(False, "error")
    finally:
        session.app.http.client = real


def test_logins_are_path_escaped(world, session) -> None:
    """A login from a payload never reshapes the request path."""
    before = len(world.fake.log)
    assert authorise(session, "../../orgs/x") == Decision(False, "invalid login")
    assert authorise(session, "alice?x=1") == Decision(False, "invalid login")
    assert len(world.fake.log) == before


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"role_name": "write", "permission": "write"}, Decision(True, "write")),
        ({"role_name": "maintain", "permission": "write"}, Decision(True, "maintain")),
        # custom roles: the booleans decide
        (
            {"role_name": "deployer", "user": {"permissions": {"push": True, "pull": True}}},
            Decision(True, "deployer"),
        ),
        (
            {"role_name": "auditor", "user": {"permissions": {"push": False, "triage": True}}},
            Decision(False, "auditor"),
        ),
        ({"role_name": "auditor", "user": {"permissions": {"push": "true"}}}, Decision(False, "auditor")),
        # the legacy field maps triage->read and maintain->write; it is never what decides
        ({"role_name": "triage", "permission": "write"}, Decision(False, "triage")),
        ({"permission": "admin"}, Decision(False, "unknown")),
        ({"role_name": "none", "permission": "none"}, Decision(False, "none")),
    ],
)
def test_decide(answer, expected: Decision) -> None:
    assert decide(answer) == expected
