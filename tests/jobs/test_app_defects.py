"""What an organisation that installs the App runs into: whole scan jobs (scan, PR writer,
dashboard) run in-process through the journal against the fake GitHub and a loopback registry,
with the odd repositories and failures of real life."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot import github
from bot.github import issues
from bot.jobs import dashboard
from bot.jobs.journal import Job
from bot.jobs.queue import Queue, execute
from tests.jobs.pr_world import CRON, DEPLOY, PrWorld, build

BRANCH = "pullable/bitnami-kubectl"


@pytest.fixture
def w(fake_github, registry_open, tmp_path, monkeypatch) -> PrWorld:
    monkeypatch.setenv("PULLABLE_GITHUB_PACING", "0")
    world = build(fake_github, registry_open, tmp_path, monkeypatch)
    world.settings = replace(world.settings, retry_base=0.0)  # retries are due at once
    issues._logins.clear()
    return world


def scan_job(w: PrWorld, repo: str | None = None) -> Job:
    """Submit a full scan of ``repo`` and run it (retries included) until it is done or failed."""
    queue = Queue(w.settings)
    name = repo or w.repo.full_name
    job = queue.submit(
        "scan",
        {"installation_id": w.inst.id, "repo": name, "ref": None, "paths": None, "compare": []},
        repo=name,
    )
    for _ in range(queue.settings.max_attempts + 1):
        execute(queue, job.id)
        done = queue.journal.get(job.id)
        assert done is not None
        if done.state in ("done", "failed"):
            return done
    raise AssertionError("the job neither finished nor failed")


def dashboards(w: PrWorld) -> list:
    return [i for i in w.repo.issues.values() if i.pull is None and i.title == dashboard.TITLE]


def test_a_lost_answer_while_creating_the_dashboard_makes_one_dashboard(w: PrWorld):
    w.fake.fail(r"/repos/octo-org/demo/issues$", status=502, method="POST", after=True)
    job = scan_job(w)
    assert job.state == "done", job.error
    assert len(dashboards(w)) == 1
    w.fake.assert_clean()


def test_a_lost_answer_while_commenting_comments_once(w: PrWorld):
    scan_job(w)
    w.fake.commit(w.repo, {"NOTES.md": "mine\n"}, branch=BRANCH, author="alice")
    w.fake.push(w.repo, {"k8s/cleanup.yaml": CRON})
    w.fake.fail(r"/issues/1/comments$", status=502, method="POST", after=True)
    assert scan_job(w).state == "done"
    said = [c.body for c in w.repo.comments.values() if c.issue == 1]
    assert len(said) == 1, said


def test_two_groups_two_prs_and_a_human_fix_retires_only_its_own(w: PrWorld):
    redis = "apiVersion: v1\nkind: Pod\nmetadata: {name: r}\nspec:\n  containers:\n    - name: r\n" \
        "      image: bitnami/redis:7.2\n"  # fmt: skip
    w.registry.push("bitnamilegacy/redis", "7.2")
    w.fake.push(w.repo, {"k8s/redis.yaml": redis})
    assert scan_job(w).state == "done"
    prs = {p.pull.head: p for p in w.fake.pulls(w.repo)}  # type: ignore[union-attr]
    assert set(prs) == {BRANCH, "pullable/bitnami-retired"}, set(prs)
    other = prs["pullable/bitnami-retired"]
    other_head = w.repo.refs["refs/heads/pullable/bitnami-retired"]
    # a person fixes the kubectl reference on main by hand
    w.fake.push(w.repo, {"k8s/migrate.yaml": DEPLOY.replace("bitnami/kubectl:1.31", "alpine/kubectl:1.33.3")})
    assert scan_job(w).state == "done"
    assert prs[BRANCH].state == "closed" and f"refs/heads/{BRANCH}" not in w.repo.refs
    assert other.state == "open"
    # the other PR is neither closed nor duplicated, and its branch stays where it is: the push
    # touched none of its files (no new commit, no CI re-run)
    assert w.repo.refs["refs/heads/pullable/bitnami-retired"] == other_head
    assert len(w.fake.pulls(w.repo, "all")) == 2
    w.fake.assert_clean()


def test_a_default_branch_that_is_not_main(w: PrWorld):
    from tests.jobs.pr_world import FILES

    repo = w.fake.create_repo("octo-org/trunk", FILES, default_branch="develop", installation=w.inst)
    assert scan_job(w, repo.full_name).state == "done"
    (pr,) = w.fake.pulls(repo)
    assert pr.pull is not None and pr.pull.base == "develop"
    w.fake.assert_clean()


def test_scan_tokens_are_scoped_to_one_repository_and_the_least_permissions(w: PrWorld):
    scan_job(w)
    minted = [e for e in w.fake.log if e.path.endswith("/access_tokens")]
    assert minted
    for e in minted:
        body = e.body or {}
        assert body.get("repositories") == ["demo"], body
        perms = body.get("permissions") or {}
        assert perms and "checks" not in perms, perms  # nothing in a scan writes check runs


def test_an_empty_repository_is_scanned_as_nothing_not_a_failure(w: PrWorld):
    empty = w.fake.create_repo("octo-org/fresh", empty=True, installation=w.inst)
    job = scan_job(w, empty.full_name)
    assert job.state == "done" and job.attempts == 1, job.error
    assert not empty.issues and not empty.refs
    w.fake.assert_clean()


def test_an_archived_repository_is_read_but_never_written(w: PrWorld):
    w.repo.archived = True
    job = scan_job(w)
    assert job.state == "done" and job.attempts == 1, job.error
    assert not w.repo.issues and set(w.repo.refs) == {"refs/heads/main"}
    tokens = ("access_tokens", "/installation/token")  # minting and revoking the job's own tokens
    assert not [e for e in w.fake.log if e.method != "GET" and not any(t in e.path for t in tokens)]
    w.fake.assert_clean()


def _outside_code(markdown: str) -> str:
    """``markdown`` with its code spans (CommonMark: a run of n backticks to the next run of
    exactly n) and HTML comments removed: what renders as text, links, mentions and HTML."""
    import re

    text = re.sub(r"<!--.*?-->", "", markdown, flags=re.DOTALL)
    out, i = [], 0
    for m in re.finditer(r"`+", text):
        if m.start() < i:
            continue
        close = re.compile(r"(?<!`)" + "`" * len(m.group()) + r"(?!`)")
        end = close.search(text, m.end())
        if end is None:
            continue
        out.append(text[i : m.start()])
        i = end.end()
    out.append(text[i:])
    return "".join(out)


def test_hostile_image_strings_never_render(w: PrWorld):
    def pod(image: str) -> str:
        return (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: e}\nspec:\n  containers:\n"
            f"    - name: e\n      image: '{image}'\n    - name: f\n      image: bitnami/kubectl:1.29\n"
        )

    evil = "evil`x``@everyone<img src=x onerror=alert(1)>#1:1"
    w.fake.push(w.repo, {"k8s/@admin <b>x</b>.yaml": pod(evil), "k8s/bidi.yaml": pod("\u202eevil:1")})
    assert scan_job(w).state == "done"
    (board,) = dashboards(w)
    assert "@\u200beveryone" in (board.body or "") or "`@everyone" in (board.body or ""), board.body
    texts = [i.body or "" for i in w.repo.issues.values()] + [c.body for c in w.repo.comments.values()]
    texts += [i.title for i in w.repo.issues.values()]
    assert len(texts) >= 3  # the dashboard, the PR, their titles
    for text in texts:
        assert "\u202e" not in text
        shown = _outside_code(text)
        assert "@everyone" not in shown and "@admin" not in shown, shown
        assert "<img" not in shown and "<b>" not in shown, shown


def test_a_job_for_a_repository_the_app_lost_ends_at_once_instead_of_retrying(w: PrWorld):
    removed = w.fake.create_repo("octo-org/gone", {"README.md": "x\n"}, installation=w.inst)
    w.inst.repository_selection, w.inst.repository_ids = "selected", {w.repo.id}  # gone was removed
    job = scan_job(w, removed.full_name)
    assert job.state == "failed" and job.attempts == 1 and "422" in (job.error or "")
    del w.fake.installations[w.inst.id]  # uninstalled
    job = scan_job(w)
    assert job.state == "failed" and job.attempts == 1 and "404" in (job.error or "")


def test_a_file_that_stops_parsing_keeps_its_pr_as_it_is_and_the_dashboard_says_so(w: PrWorld):
    w.fake.push(w.repo, {"k8s/cleanup.yaml": CRON})
    assert scan_job(w).state == "done"
    (pr,) = w.fake.pulls(w.repo)
    head = w.repo.refs[f"refs/heads/{BRANCH}"]
    # a person breaks the YAML of one of the two files: its reference vanishes from the scan
    w.fake.push(w.repo, {"k8s/migrate.yaml": DEPLOY + "  broken: [unclosed\n"})
    assert scan_job(w).state == "done"
    assert pr.state == "open" and w.repo.refs[f"refs/heads/{BRANCH}"] == head  # not shrunk either
    assert not [c for c in w.repo.comments.values() if c.issue == pr.number]
    (board,) = dashboards(w)
    assert f"#{pr.number} " in (board.body or "")
    assert "kept as it is until `k8s/migrate.yaml` can be scanned again" in (board.body or ""), board.body
    # both files broken: the group is gone from the scan, and still the PR is not retired
    w.fake.push(w.repo, {"k8s/cleanup.yaml": CRON + "  broken: [unclosed\n"})
    assert scan_job(w).state == "done"
    assert pr.state == "open" and w.repo.refs[f"refs/heads/{BRANCH}"] == head
    # fixed again, as they were: the PR's files would read exactly as its branch has them
    w.fake.push(w.repo, {"k8s/migrate.yaml": DEPLOY, "k8s/cleanup.yaml": CRON})
    assert scan_job(w).state == "done"
    assert pr.state == "open" and w.repo.refs[f"refs/heads/{BRANCH}"] == head
    assert len(w.fake.pulls(w.repo, "all")) == 1
    # fixed differently (a line of its own beside the reference): rebuilt on the new base
    w.fake.push(w.repo, {"k8s/migrate.yaml": DEPLOY.replace("name: kubectl", "name: kubectl-1")})
    assert scan_job(w).state == "done"
    assert pr.state == "open" and w.repo.refs[f"refs/heads/{BRANCH}"] != head
    w.fake.assert_clean()


def test_the_workflows_permission_is_asked_for_only_when_a_workflow_file_changes(w: PrWorld):
    def minted() -> list[dict]:
        return [
            (e.body or {}).get("permissions") or {} for e in w.fake.log if e.path.endswith("/access_tokens")
        ]

    assert scan_job(w).state == "done"
    writers = [p for p in minted() if p.get("pull_requests") == "write"]
    assert writers and all("workflows" not in p for p in writers), writers
    w.fake.reset_log()
    # a person edits a workflow on main and the PR's file: moving the PR's branch onto it (a
    # rebase: its file moved) changes that workflow file there too
    moved = DEPLOY.replace("name: kubectl", "name: kubectl-1")
    w.fake.push(w.repo, {".github/workflows/lint.yml": "on: push\n", "k8s/migrate.yaml": moved})
    assert scan_job(w).state == "done", scan_job(w).error
    assert w.fake.file(w.repo, ".github/workflows/lint.yml", BRANCH) == "on: push\n"
    ci = "on: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    container: bitnami/kubectl:1.31\n"
    w.fake.push(w.repo, {".github/workflows/deploy.yml": ci})
    assert scan_job(w).state == "done"
    fixed = w.fake.file(w.repo, ".github/workflows/deploy.yml", BRANCH)
    assert fixed == ci.replace("bitnami/kubectl:1.31", "alpine/kubectl:1.33.4"), fixed
    # each job mints its own tokens (and revokes them): both jobs changed a workflow file on the
    # branch (moving it onto lint.yml, then fixing deploy.yml), so each asked for workflows once
    assert [p["workflows"] for p in minted() if "workflows" in p] == ["write", "write"], minted()
    w.fake.assert_clean()


def test_one_broken_installation_does_not_stop_the_scheduled_rescan_of_the_others(w: PrWorld):
    other = w.fake.create_installation(w.app, account="other-org")
    theirs = w.fake.create_repo("other-org/site", {"README.md": "x\n"}, installation=other)
    w.fake.fail(rf"/app/installations/{w.inst.id}/access_tokens", times=50, status=403)  # broken
    queue = Queue(w.settings)
    queue.submit("schedule", {"spread": 0})
    ran: set[str] = set()
    for _ in range(20):
        pending = [j for j in _open_jobs(queue) if j.kind == "schedule" and j.id not in ran]
        if not pending:
            break
        for j in pending:
            ran.add(j.id)
            execute(queue, j.id)
    per_installation = [queue.journal.get(i) for i in ran]
    states = {j.payload.get("installation_id"): j.state for j in per_installation if j is not None}
    assert states == {None: "done", w.inst.id: "failed", other.id: "done"}, states
    scans = [j for j in _open_jobs(queue) if j.kind == "scan"]
    assert [(j.payload["installation_id"], j.payload["repo"]) for j in scans] == [
        (other.id, theirs.full_name)
    ]


def _open_jobs(queue: Queue) -> list[Job]:
    with queue.journal.store.transaction() as t:
        return t.open_jobs()


def _notices(w: PrWorld, number: int) -> list[str]:
    return [c.body for c in w.repo.comments.values() if c.issue == number]


def test_a_retry_between_a_notice_and_the_edit_recording_it_says_it_once(w: PrWorld):
    from bot.github.http import MAX_ATTEMPTS

    scan_job(w)
    w.fake.commit(w.repo, {"NOTES.md": "mine\n"}, branch=BRANCH, author="alice")
    w.fake.push(w.repo, {"k8s/cleanup.yaml": CRON})
    w.fake.fail(r"/pulls/1$", status=502, method="PATCH", times=MAX_ATTEMPTS)  # the first attempt fails
    job = scan_job(w)
    assert job.state == "done" and job.attempts == 2, job.error
    said = _notices(w, 1)
    assert len(said) == 1 and "Someone else committed" in said[0], said
    w.fake.assert_clean()


def test_a_retry_between_the_closing_notice_and_the_close_says_it_once(w: PrWorld):
    from bot.github.http import MAX_ATTEMPTS

    scan_job(w)
    (pr,) = w.fake.pulls(w.repo)
    w.fake.push(w.repo, {"k8s/migrate.yaml": DEPLOY.replace("bitnami/kubectl:1.31", "alpine/kubectl:1.33.4")})
    w.fake.fail(rf"/pulls/{pr.number}$", status=502, method="PATCH", times=MAX_ATTEMPTS)
    job = scan_job(w)
    assert job.state == "done" and job.attempts == 2, job.error
    said = _notices(w, pr.number)
    assert pr.state == "closed" and len(said) == 1 and "is closing" in said[0], said
    w.fake.assert_clean()


def test_a_branch_a_person_holds_is_on_the_dashboard_until_it_is_deleted(w: PrWorld):
    w.repo.refs[f"refs/heads/{BRANCH}"] = w.repo.refs["refs/heads/main"]  # made by hand
    w.fake.commit(w.repo, {"NOTES.md": "mine\n"}, branch=BRANCH, author="alice")
    assert scan_job(w).state == "done"
    assert w.fake.pulls(w.repo, "all") == []
    (board,) = dashboards(w)
    body = board.body or ""
    assert "## Branches Pullable cannot use (1)" in body, body
    assert f"`{BRANCH}` holds commits Pullable did not make" in body and "delete the branch" in body
    # an ignore re-renders from the stored inventory: the branch is still listed
    s = github.session(w.settings, w.inst.id, w.repo.full_name, dashboard.PERMISSIONS)
    try:
        assert dashboard.ignore(s, Queue(w.settings).journal, "docker.io/library/nginx")
    finally:
        s.close()
    assert f"`{BRANCH}`" in (board.body or "")
    del w.repo.refs[f"refs/heads/{BRANCH}"]  # the person deletes it
    assert scan_job(w).state == "done"
    assert len(w.fake.pulls(w.repo)) == 1 and "cannot use" not in (board.body or ""), board.body
    w.fake.assert_clean()


# ----------------------------------------------- GitHub faults while writing (issue 11, faults)
MOVED = DEPLOY.replace("name: kubectl", "name: kubectl-1")  # the PR's own file moves: a rebase


def test_a_409_on_the_ref_update_is_retried_with_backoff(w: PrWorld):
    assert scan_job(w).state == "done"
    (pr,) = w.fake.pulls(w.repo)
    w.fake.push(w.repo, {"k8s/migrate.yaml": MOVED})
    w.sleeps.clear()
    w.fake.fail(rf"/git/refs/heads/{BRANCH}$", status=409, method="PATCH", times=2,
                message="Reference update failed")  # fmt: skip
    job = scan_job(w)
    assert job.state == "done" and job.attempts == 1, job.error  # retried in place, not the job
    assert len([s for s in w.sleeps if s > 0]) >= 2  # with backoff
    head = w.repo.refs[f"refs/heads/{BRANCH}"]
    assert w.repo.obj(head, "commit").parents == [w.repo.refs["refs/heads/main"]]
    assert w.fake.file(w.repo, "k8s/migrate.yaml", BRANCH) == MOVED.replace(
        "bitnami/kubectl:1.31", "alpine/kubectl:1.33.4"
    )
    assert w.fake.pulls(w.repo, "all") == [pr]
    w.fake.assert_clean()


def test_a_409_that_lasts_makes_the_job_retry_later_and_nothing_is_lost(w: PrWorld):
    from bot.github.http import MAX_ATTEMPTS

    assert scan_job(w).state == "done"
    w.fake.push(w.repo, {"k8s/migrate.yaml": MOVED})
    w.fake.fail(rf"/git/refs/heads/{BRANCH}$", status=409, method="PATCH", times=MAX_ATTEMPTS)
    job = scan_job(w)
    assert job.state == "done" and job.attempts == 2, job.error  # the job ran again, and converged
    assert w.fake.file(w.repo, "k8s/migrate.yaml", BRANCH) == MOVED.replace(
        "bitnami/kubectl:1.31", "alpine/kubectl:1.33.4"
    )
    assert len(w.fake.pulls(w.repo, "all")) == 1
    w.fake.assert_clean()


@pytest.mark.parametrize(
    ("path", "method"),
    [(rf"/git/refs/heads/{BRANCH}$", "PATCH"), (r"/pulls/1$", "PATCH"), (r"/git/commits$", "POST")],
)
def test_a_502_and_a_secondary_rate_limit_while_updating_still_update_one_pr(
    w: PrWorld, path: str, method: str
):
    assert scan_job(w).state == "done"
    w.fake.push(w.repo, {"k8s/cleanup.yaml": CRON})
    w.sleeps.clear()
    w.fake.fail(path, status=502, method=method, after=True)  # applied, but the answer is lost
    w.fake.fail_secondary_rate_limit(path, retry_after=7, method=method)
    assert scan_job(w).state == "done"
    assert 7.0 in w.sleeps  # Retry-After honoured
    (pr,) = w.fake.pulls(w.repo, "all")
    assert "`k8s/cleanup.yaml:12`" in (pr.body or "")
    assert w.fake.file(w.repo, "k8s/cleanup.yaml", BRANCH) == CRON.replace(
        '"bitnami/kubectl:1.30"', '"alpine/kubectl:1.33.4"'
    )
    assert scan_job(w).state == "done" and len(w.fake.pulls(w.repo, "all")) == 1
    w.fake.assert_clean()
