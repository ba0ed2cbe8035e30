"""The fake keeps GitHub's contract: requests are checked against @octokit/openapi, auth and
scoping behave as GitHub's do, and git semantics (fast-forward, truncation, ETags) hold."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
from datetime import timedelta

import httpx
import pytest
from github import Auth, Github, GithubException, InputGitTreeElement

from tests.support.fakegithub import FakeGitHub, git_hash, make_key_pair

HTTP = httpx.Client(timeout=30)  # one client: making one costs an SSL context


def mint(world, **body) -> str:
    jwt_ = Auth.AppAuth(world.app.id, world.app.private_key).create_jwt()
    r = HTTP.post(
        f"{world.fake.base_url}/app/installations/{world.inst.id}/access_tokens",
        headers={"Authorization": f"Bearer {jwt_}"},
        json=body,
    )
    assert r.status_code == 201, r.text
    return r.json()["token"]


def get(world, path, token, **kw):
    return HTTP.get(world.fake.base_url + path, headers={"Authorization": f"token {token}", **kw})


def pygithub(world, token) -> Github:
    return Github(
        auth=Auth.Token(token),
        base_url=world.fake.base_url,
        lazy=True,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


def test_unknown_operation_is_404_and_recorded(world):
    tok = mint(world)
    r = get(world, "/repos/octo-org/demo/no-such-thing", tok)
    assert r.status_code == 404
    assert [v.path for v in world.fake.violations] == ["/repos/octo-org/demo/no-such-thing"]
    world.fake.violations.clear()


def test_invalid_body_is_422_and_recorded(world):
    tok = mint(world)
    r = HTTP.post(
        f"{world.fake.base_url}/repos/octo-org/demo/pulls",
        headers={"Authorization": f"token {tok}"},
        json={"base": "main", "title": "t"},
    )
    assert r.status_code == 422
    assert "head" in r.json()["message"]
    assert world.fake.violations[0].operation == "pulls/create"
    world.fake.violations.clear()


def test_unknown_query_parameter_is_a_violation(world):
    tok = mint(world)
    r = get(world, "/repos/octo-org/demo/pulls?colour=blue", tok)
    assert r.status_code == 422
    assert "colour" in world.fake.violations[0].errors[0]
    world.fake.violations.clear()


def test_pygithub_singular_ref_patch_pitfall_is_caught(world):
    """PyGithub's lazy GitRef PATCHes /git/ref/..., which GitHub's description does not have."""
    gh = pygithub(world, mint(world))
    repo = gh.get_repo("octo-org/demo")
    ref = repo.get_git_ref(f"heads/{world.repo.default_branch}")
    with pytest.raises(GithubException) as exc:
        ref.edit(world.repo.refs["refs/heads/main"])
    assert exc.value.status == 404
    assert world.fake.violations and world.fake.violations[0].path.startswith("/repos/octo-org/demo/git/ref/")
    world.fake.violations.clear()
    ref = repo.get_git_ref("heads/main")
    _ = ref.object  # completing it switches to the canonical /git/refs/ URL
    ref.edit(world.repo.refs["refs/heads/main"])


def test_jwt_signed_with_another_key_is_rejected(world):
    other, _ = make_key_pair(None)
    bad = Auth.AppAuth(world.app.id, other).create_jwt()
    r = HTTP.get(world.fake.base_url + "/app", headers={"Authorization": f"Bearer {bad}"})
    assert r.status_code == 401
    good = Auth.AppAuth(world.app.id, world.app.private_key).create_jwt()
    r = HTTP.get(world.fake.base_url + "/app", headers={"Authorization": f"Bearer {good}"})
    assert r.status_code == 200 and r.json()["id"] == world.app.id


def test_app_endpoints_need_a_jwt_and_repo_endpoints_a_token(world):
    tok = mint(world)
    assert get(world, "/app", tok).status_code == 401
    jwt_ = Auth.AppAuth(world.app.id, world.app.private_key).create_jwt()
    r = HTTP.get(world.fake.base_url + "/repos/octo-org/demo", headers={"Authorization": f"Bearer {jwt_}"})
    assert r.status_code == 403
    assert HTTP.get(world.fake.base_url + "/repos/octo-org/demo").status_code == 404  # private, anonymous


def test_token_scoped_to_one_repository_cannot_read_another(world):
    other = world.fake.create_repo("octo-org/other", {"a": "b"})
    tok = mint(world, repository_ids=[world.repo.id], permissions={"contents": "read"})
    assert get(world, "/repos/octo-org/demo/git/ref/heads/main", tok).status_code == 200
    assert get(world, f"/repos/{other.full_name}", tok).status_code == 404
    listed = get(world, "/installation/repositories", tok).json()
    assert [r["full_name"] for r in listed["repositories"]] == ["octo-org/demo"]
    wide = mint(world)
    assert get(world, f"/repos/{other.full_name}", wide).status_code == 200


def test_permissions_are_enforced_and_cannot_exceed_the_installation(world):
    tok = mint(world, permissions={"contents": "read"})
    r = HTTP.post(
        f"{world.fake.base_url}/repos/octo-org/demo/git/blobs",
        headers={"Authorization": f"token {tok}"},
        json={"content": "x"},
    )
    assert r.status_code == 403
    assert get(world, "/repos/octo-org/demo/labels", tok).status_code == 403
    jwt_ = Auth.AppAuth(world.app.id, world.app.private_key).create_jwt()
    world.inst.permissions = {"contents": "read", "metadata": "read"}
    r = HTTP.post(
        f"{world.fake.base_url}/app/installations/{world.inst.id}/access_tokens",
        headers={"Authorization": f"Bearer {jwt_}"},
        json={"permissions": {"contents": "write"}},
    )
    assert r.status_code == 422


def test_revoked_and_expired_tokens_are_refused(world):
    tok = mint(world)
    assert (
        HTTP.delete(
            world.fake.base_url + "/installation/token", headers={"Authorization": f"token {tok}"}
        ).status_code
        == 204
    )
    assert get(world, "/repos/octo-org/demo", tok).status_code == 401
    tok = mint(world)
    world.fake.clock = timedelta(hours=1, seconds=1)
    assert get(world, "/repos/octo-org/demo", tok).status_code == 401


def test_etag_gives_304_that_costs_no_rate_limit(world):
    tok = mint(world)
    first = get(world, "/repos/octo-org/demo/git/trees/main?recursive=1", tok)
    before = int(first.headers["X-RateLimit-Remaining"])
    again = get(
        world,
        "/repos/octo-org/demo/git/trees/main?recursive=1",
        tok,
        **{"If-None-Match": first.headers["ETag"]},
    )
    assert again.status_code == 304
    assert int(again.headers["X-RateLimit-Remaining"]) == before
    world.fake.push(world.repo, {"new.txt": "x"})
    changed = get(
        world,
        "/repos/octo-org/demo/git/trees/main?recursive=1",
        tok,
        **{"If-None-Match": first.headers["ETag"]},
    )
    assert changed.status_code == 200


def test_git_objects_hash_as_git_does(world, tmp_path):
    """Blob, tree and commit SHAs are git's own: `git hash-object` agrees."""
    blob = git_hash("blob", b"FROM alpine:3.19\n")
    tree = world.fake.repo("octo-org/demo").flatten(
        world.repo.commit_tree(world.repo.refs["refs/heads/main"])
    )
    assert tree["Dockerfile"][2] == blob
    (tmp_path / "f").write_bytes(b"FROM alpine:3.19\n")
    try:
        out = subprocess.run(
            ["git", "hash-object", str(tmp_path / "f")], capture_output=True, text=True, check=True
        )
    except FileNotFoundError:
        pytest.skip("git is not installed")
    assert out.stdout.strip() == blob


def test_write_flow_with_pygithub_and_fast_forward_rule(world):
    gh = pygithub(world, mint(world))
    repo = gh.get_repo("octo-org/demo")
    base = repo.get_branch("main").commit.sha
    tree = repo.create_git_tree(
        [InputGitTreeElement("Dockerfile", "100644", "blob", content="FROM alpine:3.20\n")],
        repo.get_git_tree(base),
    )
    commit = repo.create_git_commit("Bump alpine", tree, [repo.get_git_commit(base)])
    assert commit.raw_data["verification"]["verified"] is True  # no author/committer: signed by GitHub
    repo.create_git_ref("refs/heads/pullable/alpine", commit.sha)
    pr = repo.create_pull(base="main", head="pullable/alpine", title="Bump alpine", body="why")
    assert pr.head.sha == commit.sha and pr.number == 1
    with pytest.raises(GithubException) as exc:
        repo.create_pull(base="main", head="pullable/alpine", title="again", body="")
    assert "already exists" in json.dumps(exc.value.data)
    # a commit on a new base is not a fast-forward of the branch: rejected unless forced
    _, moved = world.fake.commit(world.repo, {"README.md": "changed"})
    tree2 = repo.create_git_tree(
        [InputGitTreeElement("Dockerfile", "100644", "blob", content="FROM alpine:3.20\n")],
        repo.get_git_tree(moved),
    )
    rebased = repo.create_git_commit("Bump alpine", tree2, [repo.get_git_commit(moved)])
    url = f"{world.fake.base_url}/repos/octo-org/demo/git/refs/heads/pullable/alpine"
    auth = {"Authorization": f"token {mint(world)}"}
    assert HTTP.patch(url, headers=auth, json={"sha": rebased.sha}).status_code == 422
    assert HTTP.patch(url, headers=auth, json={"sha": rebased.sha, "force": True}).status_code == 200
    assert repo.get_pull(1).head.sha == rebased.sha
    cmp = repo.compare("main", "pullable/alpine")
    assert [f.filename for f in cmp.files] == ["Dockerfile"]
    assert [c.author.login for c in cmp.commits] == [f"{world.app.slug}[bot]"]


def test_workflow_files_need_the_workflows_permission(world):
    world.fake.commit(world.repo, {".github/workflows/ci.yml": "jobs: {}\n"})
    tok = mint(world, permissions={"contents": "write"})
    gh = pygithub(world, tok)
    repo = gh.get_repo("octo-org/demo")
    base = repo.get_branch("main").commit.sha
    tree = repo.create_git_tree(
        [InputGitTreeElement(".github/workflows/ci.yml", "100644", "blob", content="x: 1\n")],
        repo.get_git_tree(base),
    )
    commit = repo.create_git_commit("m", tree, [repo.get_git_commit(base)])
    with pytest.raises(GithubException) as exc:
        repo.create_git_ref("refs/heads/pullable/ci", commit.sha)
    assert exc.value.status == 422 and "workflows" in exc.value.data["message"]


def test_issues_comments_reactions_labels_checks_and_permissions(world):
    gh = pygithub(world, mint(world))
    repo = gh.get_repo("octo-org/demo")
    issue = repo.create_issue("Pullable: image health", body="<!-- pullable -->", labels=["pullable"])
    assert [lb.name for lb in repo.get_labels()] == ["pullable"]
    with pytest.raises(GithubException) as exc:
        repo.create_label("Pullable", "ff0000")
    assert exc.value.status == 422
    payload = world.fake.comment(
        world.repo, issue.number, "/pullable rescan", user="alice", installation=world.inst
    )
    assert payload["comment"]["body"] == "/pullable rescan" and payload["installation"]["id"] == world.inst.id
    comment = repo.get_issue(issue.number).get_comment(payload["comment"]["id"])
    comment.create_reaction("eyes")
    comment.create_reaction("eyes")  # the same reaction twice is one reaction
    assert [r.content for r in comment.get_reactions()] == ["eyes"]
    assert repo.get_collaborator_permission("alice") == "none"
    world.fake.add_collaborator(world.repo, "alice", "maintain")
    got = repo.get_collaborator_role_name("alice")
    assert got == "maintain" and repo.get_collaborator_permission("alice") == "write"
    sha = world.repo.refs["refs/heads/main"]
    run = repo.create_check_run("pullable", sha, status="in_progress")
    run.edit(
        conclusion="neutral",
        output={
            "title": "t",
            "summary": "s",
            "annotations": [
                {
                    "path": "Dockerfile",
                    "start_line": 1,
                    "end_line": 1,
                    "annotation_level": "warning",
                    "message": "m",
                }
            ],
        },
    )
    assert repo.get_check_run(run.id).conclusion == "neutral"
    assert len(world.fake.annotations(world.repo, run.id)) == 1
    issue.edit(state="closed")
    assert [i.number for i in repo.get_issues(state="open")] == []


def test_truncated_recursive_tree(world):
    world.fake.tree_entry_limit = 2
    tok = mint(world)
    data = get(world, "/repos/octo-org/demo/git/trees/main?recursive=1", tok).json()
    assert data["truncated"] is True and len(data["tree"]) == 2


def test_failure_hook_fails_n_times_then_recovers(world):
    tok = mint(world)
    world.fake.fail(r"/git/ref/", times=2, status=502)
    assert get(world, "/repos/octo-org/demo/git/ref/heads/main", tok).status_code == 502
    assert get(world, "/repos/octo-org/demo/git/ref/heads/main", tok).status_code == 502
    assert get(world, "/repos/octo-org/demo/git/ref/heads/main", tok).status_code == 200
    world.fake.fail_secondary_rate_limit(r"/pulls$", retry_after=3)
    r = get(world, "/repos/octo-org/demo/pulls", tok)
    assert r.status_code == 403 and r.headers["Retry-After"] == "3"
    assert world.fake.count(path=r"/git/ref/") == 3


def test_failure_after_write_applies_the_write(world):
    tok = mint(world)
    world.fake.fail(r"/issues$", method="POST", status=502, after=True)
    r = HTTP.post(
        f"{world.fake.base_url}/repos/octo-org/demo/issues",
        headers={"Authorization": f"token {tok}"},
        json={"title": "x"},
    )
    assert r.status_code == 502
    assert [i.title for i in world.repo.issues.values()] == ["x"]


def test_push_payload_matches_state_and_signs(world):
    push = world.fake.push(
        world.repo,
        {"Dockerfile": "FROM alpine:3.20\n", "new.yaml": "a: 1\n", "README.md": None},
        installation=world.inst,
        commits=2,
    )
    p = push.payload
    assert p["ref"] == "refs/heads/main" and p["after"] == push.sha == world.repo.refs["refs/heads/main"]
    assert p["before"] == push.before and p["repository"]["full_name"] == "octo-org/demo"
    assert p["repository"]["id"] == world.repo.id and p["installation"]["id"] == world.inst.id
    assert len(p["commits"]) == 2 and p["head_commit"]["id"] == push.sha
    touched = {f for c in p["commits"] for k in ("added", "modified", "removed") for f in c[k]}
    assert touched == {"Dockerfile", "new.yaml", "README.md"}
    d = world.fake.delivery("push", p, world.app)
    expect = "sha256=" + hmac.new(world.app.webhook_secret.encode(), d.body, hashlib.sha256).hexdigest()
    assert d.headers["X-Hub-Signature-256"] == expect and d.headers["X-GitHub-Event"] == "push"
    assert json.loads(d.body) == p


def test_ghes_prefix():
    with FakeGitHub(prefix="/api/v3") as fake:
        app = fake.create_app()
        inst = fake.create_installation(app)
        fake.create_repo("octo-org/demo", {"a": "b"}, installation=inst)
        jwt_ = Auth.AppAuth(app.id, app.private_key).create_jwt()
        r = HTTP.post(
            f"{fake.base_url}/app/installations/{inst.id}/access_tokens",
            headers={"Authorization": f"Bearer {jwt_}"},
        )
        gh = Github(auth=Auth.Token(r.json()["token"]), base_url=fake.base_url, lazy=True)
        assert fake.base_url.endswith("/api/v3")
        assert gh.get_repo("octo-org/demo").default_branch == "main"
        fake.assert_clean()


def test_contents_api(world):
    tok = mint(world)
    r = get(world, "/repos/octo-org/demo/contents/deploy/app.yaml", tok).json()
    assert base64.b64decode(r["content"]).decode().startswith("apiVersion") and r["type"] == "file"
    listing = get(world, "/repos/octo-org/demo/contents/deploy", tok).json()
    assert [e["name"] for e in listing] == ["app.yaml"]
