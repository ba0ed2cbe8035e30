"""Write primitives against the fake GitHub (Git Data API commits, idempotent branches and PRs,
labels) and the escaping of text Pullable did not write."""

from __future__ import annotations

import pytest

from bot.github import WRITE_PERMISSIONS, git, pulls
from bot.github.markdown import ZWSP, cell, code, marker, markers, sanitize


@pytest.fixture
def session(world):
    return world.github_app().session(world.inst.id, "octo-org/demo", WRITE_PERMISSIONS)


def test_commit_several_files_atomically_verified_on_the_base(world, session):
    base = world.repo.refs["refs/heads/main"]
    sha = git.commit_files(
        session, base, {"Dockerfile": b"FROM alpine:3.20\n", "bin/tool": b"\xff\xfe binary"}, "msg",
        modes={"bin/tool": "100755"},
    )  # fmt: skip
    c = world.repo.obj(sha, "commit")
    assert c.parents == [base] and c.verified and c.login == world.app.bot_login
    flat = world.repo.flatten(c.tree)
    assert world.repo.obj(flat["Dockerfile"][2], "blob") == b"FROM alpine:3.20\n"
    assert flat["bin/tool"][0] == "100755"
    assert world.repo.obj(flat["bin/tool"][2], "blob") == b"\xff\xfe binary"
    assert flat["README.md"] == world.repo.flatten(world.repo.commit_tree(base))["README.md"]
    assert git.blob_sha(b"FROM alpine:3.20\n") == flat["Dockerfile"][2]
    world.fake.assert_clean()


def test_branches_are_created_moved_and_deleted_idempotently(world, session):
    base = world.repo.refs["refs/heads/main"]
    other = git.commit_files(session, base, {"a.txt": b"a\n"}, "a")
    assert git.branch(session, "pullable/x") is None
    git.set_branch(session, "pullable/x", base, exists=False)
    git.set_branch(session, "pullable/x", other, exists=False)  # exists after all: moved
    assert git.branch(session, "pullable/x") == git.Branch("pullable/x", other)
    git.set_branch(session, "pullable/x", base)  # force: not a fast-forward
    assert world.repo.refs["refs/heads/pullable/x"] == base
    assert git.delete_branch(session, "pullable/x") is True
    assert git.delete_branch(session, "pullable/x") is False
    assert not [e for e in world.fake.log if e.method == "PATCH" and "/git/ref/" in e.path]  # plural only
    world.fake.assert_clean()


def test_a_pr_created_twice_is_one_pr(world, session):
    base = world.repo.refs["refs/heads/main"]
    git.set_branch(session, "pullable/y", git.commit_files(session, base, {"a.txt": b"a\n"}, "a"))
    world.fake.fail(r"/pulls$", status=502, method="POST", after=True)
    pr, created = pulls.create(session, "pullable/y", "main", "Title", "Body")
    assert not created and pr.number == 1  # the lost answer's retry met "already exists"
    again, created = pulls.create(session, "pullable/y", "main", "Title", "Body")
    assert again.number == 1 and not created
    assert len(world.fake.pulls(world.repo)) == 1
    pulls.ensure_labels(session, ["pullable", "pullable"], "desc")
    pulls.add_labels(session, 1, ["pullable"])
    assert pulls.get(session, 1).labels == ("pullable",)
    assert world.repo.labels["pullable"]["color"] == pulls.LABEL_COLOR
    assert [p.number for p in pulls.listing(session, "open", "pullable/y")] == [1]
    assert pulls.listing(session, "open", "pullable/z") == []
    world.fake.assert_clean()


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("ping @octocat and @org/team", f"ping @{ZWSP}octocat and @{ZWSP}org/team"),
        ("fixes #12, see owner/repo#3", f"fixes #{ZWSP}12, see owner/repo#{ZWSP}3"),
        ("<img src=x onerror=alert(1)>&", "&lt;img src=x onerror=alert(1)&gt;&amp;"),
        ("a\x00b\x1bc\u202ed\u2066e\u200bf", "abcdef"),
        ("line\nnext", "line\nnext"),
    ],
)
def test_sanitize(raw: str, shown: str):
    assert sanitize(raw) == shown


def test_cells_code_and_length():
    assert cell("a | b\nc") == "a \\| b c"
    assert code("nginx:1.27") == "`nginx:1.27`"
    assert code("a`b") == "``a`b``"
    assert code("x|y", in_table=True) == "`x\\|y`"
    assert len(sanitize("x" * 5000, 100)) == 100


def test_markers_survive_hostile_values_and_edited_bodies():
    data = {"images": ["docker.io/a--b/c", "-->", "<!-- x"], "n": 1}
    m = marker("pr", data)
    assert m.count("-->") == 1 and m.endswith("-->")
    body = f"text\n{m}\n<!-- pullable:pr {{broken -->\n<!-- pullable:other {{}} -->"
    assert markers(body, "pr") == [data]
    assert markers(None, "pr") == []
