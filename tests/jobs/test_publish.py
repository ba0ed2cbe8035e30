"""The PR publisher in-process against the fake GitHub and a loopback registry: opening, keeping
up to date, leaving human branches alone, remembering "no", retiring, idempotence under
retries and lost answers, and the API calls each costs."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bot.jobs import inventory, publish
from bot.jobs.pr_state import branch_name, state_of
from bot.model import Status
from bot.repoconfig import RepoConfig
from tests.jobs.pr_world import CRON, DEPLOY, PrWorld, build
from tests.support.registry import FailingProxy

BRANCH = "pullable/bitnami-kubectl"
FIXED = DEPLOY.replace("bitnami/kubectl:1.31", "alpine/kubectl:1.33.4")


@pytest.fixture
def pr_world(fake_github, registry_open, tmp_path, monkeypatch) -> PrWorld:
    return build(fake_github, registry_open, tmp_path, monkeypatch)


def _session(w: PrWorld):
    return inventory.session(w.settings, w.inst.id, w.repo.full_name, publish.PERMISSIONS)


def _pr(w: PrWorld, state: str = "open"):
    (pr,) = w.fake.pulls(w.repo, state)
    return pr


def test_opens_one_pr_with_exactly_the_changed_bytes(pr_world: PrWorld):
    w = pr_world
    base = w.repo.refs["refs/heads/main"]
    report = w.publish()
    assert report.opened == [1]
    pr = _pr(w)
    assert pr.pull is not None and pr.pull.head == BRANCH and pr.pull.base == "main"
    assert pr.title == "Replace retired bitnami/kubectl with alpine/kubectl 1.33.4"
    assert w.fake.file(w.repo, "k8s/migrate.yaml", BRANCH) == FIXED  # comment and quoting kept
    assert w.fake.file(w.repo, "README.md", BRANCH) == "# demo\n"
    head = w.repo.obj(w.repo.refs[f"refs/heads/{BRANCH}"], "commit")
    assert head.parents == [base] and head.verified and head.login == w.app.bot_login
    assert pr.labels == ["dependencies", "images"]
    body = pr.body or ""
    row = "| `k8s/migrate.yaml:9` | `bitnami/kubectl:1.31` | `alpine/kubectl:1.33.4` | bitnami-kubectl |"
    assert row in body
    assert "Bitnami stopped publishing" in body  # the rule's why
    assert "the tag does not exist (HTTP 404, MANIFEST_UNKNOWN)" in body  # what the registry said
    digest = w.registry.push("alpine/kubectl", "1.33.4")  # same content: same digest
    assert f"`docker.io/alpine/kubectl:1.33.4`: verified, digest `{digest}`, checked 20" in body
    assert "/pullable unignore <image>" in body
    st = state_of(publish.pulls.get(_session(w), 1))
    assert st is not None and st.base == base and st.head == head_sha(w)
    assert st.to_json()["items"] == [["k8s/migrate.yaml", "docker.io/bitnami/kubectl:1.31",
                            "docker.io/alpine/kubectl:1.33.4", "docker.io/bitnami/kubectl"]]  # fmt: skip
    w.fake.assert_clean()


def head_sha(w: PrWorld, branch: str = BRANCH) -> str:
    return w.repo.refs[f"refs/heads/{branch}"]


def test_an_unchanged_repository_writes_nothing(pr_world: PrWorld):
    w = pr_world
    w.publish()
    w.fake.reset_log()
    report = w.publish()
    assert report.unchanged == [1] and not report.opened and not report.updated
    assert w.writes() == []
    assert w.fake.count() <= 3, [(e.method, e.path, e.status) for e in w.fake.log if e.status != 304]


def test_new_findings_update_the_same_pr_in_place(pr_world: PrWorld):
    w = pr_world
    w.publish()
    w.fake.push(w.repo, {"k8s/cleanup.yaml": CRON})
    report = w.publish(w.scan(paths=["k8s/cleanup.yaml"]))  # a push scan: the PR still holds every fix
    assert report.updated == [1] and len(w.fake.pulls(w.repo, "all")) == 1
    assert w.fake.file(w.repo, "k8s/migrate.yaml", BRANCH) == FIXED
    assert w.fake.file(w.repo, "k8s/cleanup.yaml", BRANCH) == CRON.replace(
        '"bitnami/kubectl:1.30"', '"alpine/kubectl:1.33.4"'
    )
    head = w.repo.obj(head_sha(w), "commit")
    assert head.parents == [w.repo.refs["refs/heads/main"]]  # rebuilt on the moved base: one commit
    assert "`k8s/cleanup.yaml:12`" in (_pr(w).body or "")
    assert _pr(w).title == "Replace retired bitnami/kubectl with alpine/kubectl 1.33.4"


def test_a_human_commit_is_left_alone_and_said_once(pr_world: PrWorld):
    w = pr_world
    w.publish()
    w.fake.commit(w.repo, {"k8s/migrate.yaml": FIXED + "# reviewed\n"}, branch=BRANCH, author="alice")
    theirs = head_sha(w)
    w.fake.push(w.repo, {"k8s/cleanup.yaml": CRON})  # new findings would otherwise update it
    assert w.publish().left == [1]
    assert w.publish().left == [1]
    assert head_sha(w) == theirs
    comments = [c.body for c in w.repo.comments.values() if c.issue == 1]
    assert len(comments) == 1 and "no longer update" in comments[0]


def test_closed_without_merging_is_not_proposed_again_until_unignored(pr_world: PrWorld):
    w = pr_world
    w.publish()
    w.fake.close_issue(w.repo, 1)
    report = w.publish()
    assert report.blocked == {BRANCH: 1} and not report.opened
    assert len(w.fake.pulls(w.repo, "all")) == 1
    (ack,) = [c.body for c in w.repo.comments.values() if c.issue == 1]
    assert "`/pullable unignore bitnami/kubectl`" in ack
    assert f"refs/heads/{BRANCH}" not in w.repo.refs  # its branch is cleaned up
    w.publish()  # said once
    assert len([c for c in w.repo.comments.values() if c.issue == 1]) == 1
    # a new rotten reference of the same rule is a different change: proposed alone
    w.fake.push(w.repo, {"k8s/cleanup.yaml": CRON})
    assert w.publish().opened == [2]
    assert w.fake.file(w.repo, "k8s/migrate.yaml", BRANCH) == DEPLOY  # the refused one stays out
    # unignore releases it; the open PR takes it back
    assert publish.unignore(_session(w), "bitnami/kubectl:1.31") == 1
    assert publish.unignore(_session(w), "bitnami/kubectl") == 0  # already released
    assert w.publish().updated == [2]
    assert w.fake.file(w.repo, "k8s/migrate.yaml", BRANCH) == FIXED


def test_a_change_no_longer_needed_closes_the_pr_and_deletes_the_branch(pr_world: PrWorld):
    w = pr_world
    w.publish()
    w.fake.push(w.repo, {"k8s/migrate.yaml": DEPLOY.replace("bitnami/kubectl:1.31", "alpine/kubectl:1.33.3")})
    report = w.publish()
    assert report.closed == [1]
    assert _pr(w, "closed").state == "closed" and f"refs/heads/{BRANCH}" not in w.repo.refs
    assert "no longer needs" in next(c.body for c in w.repo.comments.values() if c.issue == 1)
    # Pullable's own closing is no "no": the change comes back when the reference rots again
    w.fake.push(w.repo, {"k8s/migrate.yaml": DEPLOY})
    assert w.publish().opened == [2]


def test_an_unreachable_registry_does_not_retire_a_pr(pr_world: PrWorld, tmp_path, monkeypatch):
    w = pr_world
    w.publish()
    dead = tmp_path / "dead.json"
    dead.write_text('{"registries": {"docker.io": {"endpoint": "http://127.0.0.1:9"}}}')
    w.settings = replace(w.settings, config=str(dead))
    monkeypatch.setenv("PULLABLE_DATA_DIR", str(tmp_path / "cold"))  # no cached registry answers
    outcome = w.scan()
    assert [f.status for f in outcome.findings] == [Status.UNREACHABLE]
    report = w.publish(outcome)
    assert not report.closed and _pr(w).state == "open"


@pytest.mark.parametrize("status", [503, 401, 403])
def test_an_outage_of_the_targets_registry_neither_closes_nor_reopens_the_pr(
    pr_world: PrWorld, tmp_path, monkeypatch, status: int
):
    """Issue 11 §5: only the replacement (``alpine/kubectl``) fails; the old reference still
    answers "tag missing", so the outage shows only in the target's tags and check."""
    w = pr_world
    with FailingProxy(w.registry) as proxy:
        proxied = tmp_path / "proxied.json"
        proxied.write_text(json.dumps(proxy.config_mapping(host="docker.io")))
        w.settings = replace(w.settings, config=str(proxied))
        assert w.publish().opened == [1]
        head, body = head_sha(w), _pr(w).body
        proxy.failing["alpine/kubectl"] = status
        monkeypatch.setenv("PULLABLE_DATA_DIR", str(tmp_path / "cold"))  # no cached registry answers
        outcome = w.scan()
        assert proxy.failed  # the target's registry was asked, and failed
        (f,) = outcome.findings
        assert f.status is Status.TAG_MISSING and f.fix is None and f.unsure
        report = w.publish(outcome)
        assert report.held == [1] and not report.closed and not report.updated
        assert _pr(w).state == "open" and head_sha(w) == head and _pr(w).body == body
        assert not [c for c in w.repo.comments.values() if c.issue == 1]  # no "closing" notice
        proxy.failing.clear()  # the registry is back: the same PR, untouched, and no second one
        monkeypatch.setenv("PULLABLE_DATA_DIR", str(tmp_path / "warm"))
        assert w.publish().unchanged == [1]
        assert len(w.fake.pulls(w.repo, "all")) == 1 and head_sha(w) == head


def test_group_all_uses_one_branch(pr_world: PrWorld):
    w = pr_world
    w.fake.push(w.repo, {".github/pullable.yml": 'cluster:\n  version: "1.33"\ngroup: all\n'})
    w.publish()
    assert _pr(w).pull.head == branch_name("all") == "pullable/all"  # type: ignore[union-attr]
    assert _pr(w).labels == ["pullable"]


def test_a_broken_repo_config_publishes_nothing(pr_world: PrWorld):
    w = pr_world
    w.fake.push(w.repo, {".github/pullable.yml": "group: sometimes\n"})
    outcome = w.scan()
    assert outcome.config == RepoConfig() and "group" in (outcome.config_error or "")

    class Ctx:
        class queue:  # the shape of bot.jobs.Context
            settings = w.settings

    assert publish.write(outcome, Ctx) == publish.Report()  # type: ignore[arg-type]
    assert w.fake.pulls(w.repo, "all") == []


@pytest.mark.parametrize(
    "path", [r"/pulls$", r"/git/refs$", r"/git/commits$", r"/git/trees$", r"/issues/\d+/labels$"]
)
def test_lost_answers_and_rate_limits_still_make_exactly_one_pr(pr_world: PrWorld, path: str):
    w = pr_world
    w.fake.fail(path, status=502, method="POST", after=True)  # applied, but the answer is lost
    w.fake.fail_secondary_rate_limit(path, retry_after=7, method="POST")
    report = w.publish()
    assert report.opened == [1] or report.updated == [1]
    assert len(w.fake.pulls(w.repo, "all")) == 1
    assert 7.0 in w.sleeps  # Retry-After honoured
    assert w.fake.file(w.repo, "k8s/migrate.yaml", BRANCH) == FIXED
    assert w.publish().unchanged == [1]
    w.fake.assert_clean()


def test_a_job_killed_between_branch_and_body_resumes(pr_world: PrWorld):
    w = pr_world
    w.publish()
    w.fake.push(w.repo, {"k8s/cleanup.yaml": CRON})
    w.fake.fail(r"/pulls/1$", status=422, method="PATCH", times=1)  # the body edit fails for good
    with pytest.raises(Exception, match="422"):
        w.publish()
    moved = head_sha(w)
    report = w.publish()  # the branch moved but only by Pullable: still ours
    assert report.updated == [1] and not report.left
    st = state_of(publish.pulls.get(_session(w), 1))
    assert st is not None and st.head == head_sha(w)
    assert w.repo.obj(moved, "commit").login == w.app.bot_login


def test_a_reference_that_could_not_be_checked_does_not_shrink_the_pr(pr_world: PrWorld):
    w = pr_world
    w.fake.push(w.repo, {"k8s/cleanup.yaml": CRON})
    w.publish()
    head, body = head_sha(w), _pr(w).body
    w.fake.push(w.repo, {"docs/notes.md": "notes\n"})  # the base moves too
    outcome = w.scan()
    # this time the registry could not be asked about one of the two references (as
    # pipeline.evaluate reports an outage: no rule, no fix)
    outcome = replace(outcome, findings=tuple(
        replace(f, status=Status.UNREACHABLE, rule=None, fix=None) if f.ref.path == "k8s/cleanup.yaml" else f
        for f in outcome.findings
    ))  # fmt: skip
    report = w.publish(outcome)
    assert report.held == [1] and not report.updated and not report.closed
    assert head_sha(w) == head and _pr(w).body == body
    assert w.fake.file(w.repo, "k8s/cleanup.yaml", BRANCH) != CRON  # the change is still proposed
    # the registry answers again: the same change, on files the base did not touch: kept
    assert w.publish().unchanged == [1]
    assert head_sha(w) == head


def test_a_branch_a_person_made_is_never_moved_and_no_pr_opens_from_it(pr_world: PrWorld):
    w = pr_world
    w.repo.refs[f"refs/heads/{BRANCH}"] = w.repo.refs["refs/heads/main"]  # made by hand
    _, theirs = w.fake.commit(w.repo, {"NOTES.md": "mine\n"}, branch=BRANCH, author="alice")
    report = w.publish()
    assert report.skipped == [BRANCH] and not report.opened
    assert head_sha(w) == theirs and w.fake.pulls(w.repo, "all") == []
    # the person deletes it: Pullable may use the name again
    del w.repo.refs[f"refs/heads/{BRANCH}"]
    assert w.publish().opened == [1]


def test_a_closed_prs_branch_a_person_committed_to_is_not_overwritten(pr_world: PrWorld):
    w = pr_world
    w.publish()
    _, theirs = w.fake.commit(w.repo, {"NOTES.md": "mine\n"}, branch=BRANCH, author="alice")
    w.fake.close_issue(w.repo, 1)
    w.publish()  # the "no" is acknowledged; the branch holds alice's commit, so it stays
    assert publish.unignore(_session(w), "bitnami/kubectl") == 1  # the change is wanted again
    report = w.publish()
    assert report.skipped == [BRANCH] and not report.opened and not report.updated
    assert head_sha(w) == theirs and len(w.fake.pulls(w.repo, "all")) == 1


def test_a_merged_prs_branch_is_deleted_unless_a_person_committed_to_it(pr_world: PrWorld):
    w = pr_world
    w.publish()
    w.fake.merge_pull(w.repo, 1)
    assert w.publish(w.scan(paths=["README.md"])).deleted == []  # swept by full scans only
    report = w.publish()  # the rescan the pull_request "closed" webhook asks for
    assert report.deleted == [BRANCH] and f"refs/heads/{BRANCH}" not in w.repo.refs
    assert not report.opened and w.publish().deleted == []
    # a merged PR whose branch a person committed to after Pullable: the branch stays theirs
    w.fake.push(w.repo, {"k8s/cleanup.yaml": CRON})
    assert w.publish().opened == [2]
    w.fake.merge_pull(w.repo, 2)
    _, theirs = w.fake.commit(w.repo, {"NOTES.md": "mine\n"}, branch=BRANCH, author="alice")
    assert w.publish().deleted == [] and head_sha(w) == theirs
    # GitHub deleted a branch itself ("automatically delete head branches"): nothing to do
    del w.repo.refs[f"refs/heads/{BRANCH}"]
    assert w.publish().deleted == []
    w.fake.assert_clean()


def test_the_commit_message_mentions_and_links_nothing(pr_world: PrWorld):
    w = pr_world
    w.fake.push(w.repo, {"k8s/@alice #1.yaml": DEPLOY})
    w.publish()
    message = w.repo.obj(head_sha(w), "commit").message
    assert "k8s/@\u200balice #\u200b1.yaml:9: bitnami/kubectl:1.31 -> alpine/kubectl:1.33.4" in message, (
        message
    )
    assert "@alice" not in message and "#1" not in message


# ------------------------------------------------------------------ GitHub's calls (issue 14 §4)
COMPOSE = """\
services:
  cache:
    image: bitnami/budget-cache:7.2
  web:
    image: budget-web:1.25.99
"""
TOKENS = "access_tokens"


def _three_groups(w: PrWorld) -> None:
    """Three rules fire (bitnami-kubectl, bitnami-retired, tag-missing): three PRs."""
    w.registry.push("bitnamilegacy/budget-cache", "7.2")
    w.registry.push("library/budget-web", "1.25.3")
    w.fake.push(w.repo, {"compose.yaml": COMPOSE})


def _spent(w: PrWorld) -> list[tuple[str, str, int]]:
    return [(e.method, e.operation or e.path, e.status) for e in w.fake.log if TOKENS not in e.path]


def test_an_installation_scan_spends_few_calls_per_pr_and_no_error_answers(pr_world: PrWorld):
    w = pr_world
    _three_groups(w)
    outcome = w.scan()
    w.fake.reset_log()
    report = w.publish(outcome)
    assert len(report.opened) == 3
    spent = _spent(w)
    assert [s for s in spent if s[2] >= 400] == []  # no 422 for a label that exists
    assert w.fake.count(operation="issues/create-label") == 2  # once per run, each label once
    assert w.fake.count(operation="pulls/list", include_304=True) == 1  # the pull list, once
    assert w.fake.count(operation="git/get-tree", include_304=True) == 0  # the scan's tree reused
    labels = sum(w.fake.count(operation=o) for o in
                 ("issues/create-label", "issues/add-labels", "issues/list-labels-for-repo"))  # fmt: skip
    board = w.fake.count(operation="issues/list-for-repo")
    per_pr = (len([s for s in spent if s[2] != 304]) - labels - board) / 3
    assert per_pr <= 6, spent
    assert {tuple(sorted(p.labels)) for p in w.fake.pulls(w.repo)} == {("dependencies", "images")}
    w.fake.assert_clean()
    # the next run knows the labels exist, and a label a person made is never re-created
    w.fake.push(w.repo, {"k8s/cleanup.yaml": CRON})
    w.fake.reset_log()
    w.publish()
    assert w.fake.count(operation="issues/create-label") == 0
    assert [s for s in _spent(w) if s[2] >= 400] == []


def test_a_label_that_exists_is_not_created_again(pr_world: PrWorld):
    w = pr_world
    w.repo.labels["dependencies"] = w.fake._new_label("dependencies", "ededed", "made by a person")
    w.fake.reset_log()
    w.publish()
    assert [s for s in _spent(w) if s[2] >= 400] == []
    assert w.fake.count(operation="issues/create-label") == 1  # "images" only
    assert w.repo.labels["dependencies"]["color"] == "ededed"  # theirs, untouched


def _branch_writes(w: PrWorld) -> list[tuple[str, str, int]]:
    return [s for s in _spent(w) if s[1] in ("git/create-commit", "git/create-tree", "git/update-ref",
                                               "git/create-ref")]  # fmt: skip


def test_an_unrelated_push_rewrites_no_pr_branch(pr_world: PrWorld):
    w = pr_world
    _three_groups(w)
    w.publish()
    heads = {b: head_sha(w, b) for b in (p.pull.head for p in w.fake.pulls(w.repo))}  # type: ignore[union-attr]
    assert len(heads) == 3
    w.fake.push(w.repo, {"docs/notes.md": "notes\n"})
    w.fake.reset_log()
    report = w.publish()
    assert sorted(report.unchanged) == [1, 2, 3] and not report.updated
    assert _branch_writes(w) == []
    assert {b: head_sha(w, b) for b in heads} == heads  # CI is not re-run for nothing
    # a change to a PR's own file moves only that PR onto the new base
    moved = DEPLOY.replace('command: [sh, -c, "kubectl apply -f /manifests"]',
                           'command: [sh, -c, "kubectl apply -k /manifests"]')  # fmt: skip
    w.fake.push(w.repo, {"k8s/migrate.yaml": moved})
    report = w.publish()
    assert report.updated == [1] and sorted(report.unchanged) == [2, 3]
    assert w.repo.obj(head_sha(w), "commit").parents == [w.repo.refs["refs/heads/main"]]
    assert w.fake.file(w.repo, "k8s/migrate.yaml", BRANCH) == moved.replace(
        "bitnami/kubectl:1.31", "alpine/kubectl:1.33.4"
    )
    assert w.fake.file(w.repo, "docs/notes.md", BRANCH) == "notes\n"  # rebased: the base's files too
    others = {b: h for b, h in heads.items() if b != BRANCH}
    assert {b: head_sha(w, b) for b in others} == others
