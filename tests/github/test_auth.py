"""App credentials and installation tokens: key formats, repo-scoped tokens, caching, refresh,
thread safety and revocation, against the fake GitHub."""

from __future__ import annotations

import base64
import logging
import threading
from datetime import timedelta

import pytest

from bot.github import CredentialsError, GitHubApp, GitHubError, load_private_key
from bot.settings import Settings

MINT = "apps/create-installation-access-token"


def test_private_key_formats(world, tmp_path):
    pem = world.app.private_key
    assert load_private_key(pem) == pem.strip() + "\n"
    assert load_private_key(pem.strip().replace("\n", "\\n")) == pem.strip() + "\n"
    assert load_private_key(base64.b64encode(pem.encode()).decode()) == pem.strip() + "\n"
    (tmp_path / "app.pem").write_text(pem)
    assert load_private_key("", tmp_path / "app.pem") == pem.strip() + "\n"
    for bad in ("", "not a key", base64.b64encode(b"hello").decode()):
        with pytest.raises(CredentialsError):
            load_private_key(bad)
    with pytest.raises(CredentialsError):
        load_private_key("", tmp_path / "missing.pem")


def test_token_is_scoped_to_one_repository_and_cached(world):
    other = world.fake.create_repo("octo-org/other", {"Dockerfile": "FROM alpine\n"})
    ga = world.github_app()
    s = ga.session(world.inst.id, "octo-org/demo")
    assert s.repository()["full_name"] == "octo-org/demo"
    assert s.token is s.token  # cached
    stored = world.fake.tokens[s.token.token]
    assert stored.repository_ids == {world.repo.id}
    assert stored.permissions == {"contents": "read", "metadata": "read"}
    assert world.fake.count(operation=MINT) == 1
    # the token cannot reach another repository of the same installation
    with pytest.raises(GitHubError) as exc:
        ga.http.request("GET", f"/repos/{other.full_name}", auth=s.auth())
    assert exc.value.status == 404
    ga.session(world.inst.id, "octo-org/other").repository()
    assert world.fake.count(operation=MINT) == 2


def test_token_refreshed_five_minutes_before_expiry(world):
    ga = world.github_app()
    world.fake.token_lifetime = timedelta(minutes=4)  # inside the 5-minute refresh margin
    s = ga.session(world.inst.id, "octo-org/demo")
    first = s.token
    world.fake.token_lifetime = timedelta(hours=1)
    assert s.token.token != first.token
    assert world.fake.count(operation=MINT) == 2
    assert s.token.token == s.token.token
    assert world.fake.count(operation=MINT) == 2


def test_concurrent_jobs_share_one_mint(world):
    ga = world.github_app()
    got: list[str] = []
    barrier = threading.Barrier(8)

    def job() -> None:
        barrier.wait()
        got.append(ga.session(world.inst.id, "octo-org/demo").token.token)

    threads = [threading.Thread(target=job) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1 and len(got) == 8
    assert world.fake.count(operation=MINT) == 1


def test_revoke(world):
    ga = world.github_app()
    s = ga.session(world.inst.id, "octo-org/demo")
    old = s.token
    s.close(revoke=True)
    assert world.fake.tokens[old.token].revoked
    assert s.repository()["name"] == "demo"  # a new token is minted on next use
    assert s.token.token != old.token


def test_write_permissions_write_as_the_app(world):
    from bot.github import WRITE_PERMISSIONS, issues

    s = world.github_app().session(world.inst.id, "octo-org/demo", WRITE_PERMISSIONS)
    issue = issues.create_issue(s, "Pullable: image health", "")
    assert issue["user"]["login"] == f"{world.app.slug}[bot]"
    assert world.fake.tokens[s.token.token].permissions == WRITE_PERMISSIONS


def test_write_permissions_are_the_pr_writers_and_no_more():
    from bot.github import WRITE_PERMISSIONS
    from bot.jobs import publish

    # workflow files are written with a second token asked for only then; check runs by the check job
    assert "workflows" not in WRITE_PERMISSIONS and "checks" not in WRITE_PERMISSIONS
    assert publish.PERMISSIONS == WRITE_PERMISSIONS


def test_token_never_logged_or_shown(world, caplog):
    caplog.set_level(logging.DEBUG)
    ga = world.github_app()
    s = ga.session(world.inst.id, "octo-org/demo")
    world.fake.fail(r"/git/ref/", times=1, status=502)
    s.get_json("git/ref/heads/main")  # retried after the 502
    s.repository()
    secret = s.token.token
    assert secret not in repr(s.token) and secret not in repr(s)
    assert secret not in caplog.text


def test_installations_and_repositories_from_settings(world, tmp_path):
    from bot.github import installed_repositories

    world.fake.create_repo("octo-org/second", {"a": "b"})
    other_inst = world.fake.create_installation(world.app, account="acme")
    world.fake.create_repo("acme/tool", {"a": "b"}, installation=other_inst)
    settings = Settings(
        app_id=str(world.app.id),
        private_key=world.app.private_key,
        github_api_url=world.fake.base_url,
        data_dir=tmp_path,
    )
    got = sorted(installed_repositories(settings))
    assert got == sorted(
        [(world.inst.id, "octo-org/demo"), (world.inst.id, "octo-org/second"), (other_inst.id, "acme/tool")]
    )
    assert list(installed_repositories(settings, other_inst.id)) == [(other_inst.id, "acme/tool")]


def test_many_installation_repositories_are_paginated(world):
    for i in range(105):
        world.fake.create_repo(f"octo-org/r{i:03d}", {})
    names = [r["full_name"] for r in world.github_app().installation_repositories(world.inst.id)]
    assert len(names) == 106 and len(set(names)) == 106


def test_from_settings_is_one_app_per_process(world, tmp_path):
    s = Settings(
        app_id=str(world.app.id),
        private_key=base64.b64encode(world.app.private_key.encode()).decode(),
        github_api_url=world.fake.base_url,
        data_dir=tmp_path,
    )
    assert GitHubApp.from_settings(s) is GitHubApp.from_settings(s)
    with pytest.raises(CredentialsError):
        GitHubApp.from_settings(
            Settings(app_id="", private_key=world.app.private_key, data_dir=tmp_path / "x")
        )


def test_a_jobs_tokens_are_revoked_when_it_raises(world):
    from bot.github import job_tokens

    ga = world.github_app()
    with pytest.raises(RuntimeError), job_tokens("job-1#1"):
        mine = ga.session(world.inst.id, "octo-org/demo").token
        raise RuntimeError("the job failed")
    assert world.fake.tokens[mine.token].revoked
    with job_tokens("job-2#1"):
        theirs = ga.session(world.inst.id, "octo-org/demo").token
        assert theirs.token != mine.token  # a new job never gets an earlier job's token
        assert not world.fake.tokens[theirs.token].revoked
    assert world.fake.tokens[theirs.token].revoked


def test_the_apps_jwt_is_signed_with_the_key_parsed_once(monkeypatch):
    """Parsing an RSA key checks it (tens of ms): once per process, not once per token."""
    import time

    import jwt
    import jwt.algorithms

    from bot.github.auth import TokenCache
    from tests.support.fakegithub import make_key_pair

    private, public = make_key_pair(0)
    parsed: list[int] = []
    real = jwt.algorithms.load_pem_private_key  # what PyJWT parses a PEM with

    def counting(data: bytes, password: bytes | None = None, **kw: object):
        parsed.append(1)
        return real(data, password, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt.algorithms, "load_pem_private_key", counting)
    cache = TokenCache(4242, private, None)  # type: ignore[arg-type]
    tokens = [cache.jwt() for _ in range(3)]
    assert len(parsed) == 1
    for token in tokens:
        claims = jwt.decode(token, public, algorithms=["RS256"])
        assert claims["iss"] == "4242" and claims["iat"] <= time.time() < claims["exp"]
    broken = TokenCache(4242, private.replace("A", "B", 40), None)  # type: ignore[arg-type]
    with pytest.raises(jwt.exceptions.InvalidKeyError):
        broken.jwt()  # a bad key fails at signing, as PyGithub's own signer did
