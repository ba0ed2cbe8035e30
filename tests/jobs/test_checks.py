"""The "Pullable" check run on pull requests (issue 6 §5), against the fake GitHub and a loopback
registry: annotations on the lines of changed files that hold rotten references, neutral by
default, failure with ``check: strict`` (read from the base branch), success when clean, 50
annotations per request, one run per head commit, forks never read."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import github
from bot.github import issues
from bot.jobs import checks, dashboard
from bot.jobs.handlers import pull_request
from bot.jobs.queue import Queue
from bot.jobs.router import Event
from tests.jobs.pr_world import CRON, build
from tests.support.fakegithub import Pull

CLEAN = "FROM alpine/kubectl:1.33.4\nRUN true\n"
ROTTEN_DOCKERFILE = "FROM alpine/kubectl:1.33.4 AS ok\nFROM alpine/kubectl:0.0.404\n"


@pytest.fixture
def world(fake_github, registry_open, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PULLABLE_GITHUB_PACING", "0")
    issues._logins.clear()
    return build(fake_github, registry_open, tmp_path, monkeypatch)


def open_pr(world, changes: dict, branch: str = "feature") -> tuple[int, str]:
    main = world.repo.refs["refs/heads/main"]
    _, head = world.fake.commit(world.repo, changes, branch=branch, force_parent=main)
    issue = world.fake._new_issue(world.repo, "Add things", "", "octocat")
    issue.pull = Pull(branch, "main", head, main)
    return issue.number, head


def check(world, number: int, head: str) -> tuple[checks.Result, dict]:
    s = github.session(world.settings, world.inst.id, world.repo.full_name, checks.PERMISSIONS)
    try:
        result = checks.check_pull(world.settings, s, number, head, "main")
    finally:
        s.close()
    (run,) = [r for r in world.repo.check_runs.values() if r["head_sha"] == head]
    return result, run


def test_rotten_lines_in_changed_files_are_annotated_neutral_by_default(world) -> None:
    number, head = open_pr(world, {"k8s/cron.yaml": CRON, "Dockerfile": ROTTEN_DOCKERFILE})
    result, run = check(world, number, head)
    assert run["name"] == "Pullable" and run["status"] == "completed" and run["conclusion"] == "neutral"
    got = {(a["path"], a["start_line"], a["annotation_level"]) for a in run["_annotations"]}
    # the retired bitnami image a rule replaces, and a tag that does not exist; not the good FROM,
    # and not k8s/migrate.yaml, which also holds a rotten reference but is not changed here
    assert got == {("k8s/cron.yaml", 12, "warning"), ("Dockerfile", 2, "warning")}
    cron = next(a for a in run["_annotations"] if a["path"] == "k8s/cron.yaml")
    assert "alpine/kubectl:1.33.4" in cron["message"] and "bitnami-kubectl" in cron["message"]
    assert result.files == ["Dockerfile", "k8s/cron.yaml"]
    assert "check: strict" in run["output"]["summary"]


def test_strict_config_on_the_base_branch_fails_and_the_pr_cannot_relax_it(world) -> None:
    world.fake.commit(world.repo, {".github/pullable.yml": "check: strict\n"})
    number, head = open_pr(
        world, {"Dockerfile": ROTTEN_DOCKERFILE, ".github/pullable.yml": "check: neutral\n"}
    )
    _, run = check(world, number, head)
    assert run["conclusion"] == "failure"
    assert [a["annotation_level"] for a in run["_annotations"]] == ["failure"]


def test_clean_pull_requests_succeed(world) -> None:
    number, head = open_pr(world, {"Dockerfile": CLEAN, "README.md": "# more\n"})
    _, run = check(world, number, head)
    assert run["conclusion"] == "success" and run["_annotations"] == []
    assert run["output"]["title"] == "Every image reference in the changed files resolves"


def test_annotations_are_sent_fifty_at_a_time(world) -> None:
    lines = "".join(f"FROM alpine/kubectl:0.0.{i}\n" for i in range(120))
    number, head = open_pr(world, {"Dockerfile": lines})
    world.fake.reset_log()
    _, run = check(world, number, head)
    patches = [e for e in world.fake.log if e.operation == "checks/update"]
    sizes = [len((e.body.get("output") or {}).get("annotations") or []) for e in patches]
    assert sizes == [50, 50, 20] and patches[-1].body["conclusion"] == "neutral"
    assert sorted(a["start_line"] for a in world.fake.annotations(world.repo, run["id"])) == list(
        range(1, 121)
    )


def test_a_rerun_updates_the_same_check_run(world) -> None:
    number, head = open_pr(world, {"Dockerfile": CLEAN})
    check(world, number, head)
    _, run = check(world, number, head)  # a redelivered event or a retried job
    assert len(world.repo.check_runs) == 1 and run["conclusion"] == "success"


def test_ignored_images_are_not_reported(world) -> None:
    number, head = open_pr(world, {"k8s/cron.yaml": CRON})
    s = github.session(world.settings, world.inst.id, world.repo.full_name, dashboard.PERMISSIONS)
    dashboard.ignore(s, Queue(world.settings).journal, "docker.io/bitnami/kubectl")
    _, run = check(world, number, head)
    assert run["conclusion"] == "success" and run["_annotations"] == []


def test_removed_files_are_not_read(world) -> None:
    number, head = open_pr(world, {"k8s/migrate.yaml": None, "Dockerfile": CLEAN})
    result, run = check(world, number, head)
    assert result.files == ["Dockerfile"] and run["conclusion"] == "success"


# ----------------------------------------------------------------------------------- the handler
class Ctx:
    def __init__(self, queue: Queue) -> None:
        self.queue, self.submitted = queue, []

    def submit(self, kind: str, payload: dict, repo: str | None = None, delay: float = 0.0):
        job = self.queue.submit(kind, payload, repo=repo, delay=delay)
        self.submitted.append(job)
        return job


def test_handler_queues_same_repository_prs_and_skips_forks(world) -> None:
    number, head = open_pr(world, {"Dockerfile": CLEAN})
    ctx = Ctx(Queue(world.settings))
    payload = world.fake.pull_request_payload(world.repo, number, "opened", installation=world.inst)
    pull_request.on_pull_request(Event("pull_request", "opened", "d1", payload), ctx)  # type: ignore[arg-type]
    (job,) = ctx.submitted
    assert job.kind == "check" and job.payload["pulls"] == {str(number): {"sha": head, "base": "main"}}

    fork = world.fake.pull_request_payload(world.repo, number, "synchronize", installation=world.inst)
    fork["pull_request"]["head"]["repo"] = {
        **fork["pull_request"]["head"]["repo"],
        "full_name": "mallory/demo",
    }
    world.fake.reset_log()
    pull_request.on_pull_request(Event("pull_request", "synchronize", "d2", fork), ctx)  # type: ignore[arg-type]
    deleted = world.fake.pull_request_payload(world.repo, number, "opened", installation=world.inst)
    deleted["pull_request"]["head"]["repo"] = None  # the fork was deleted
    pull_request.on_pull_request(Event("pull_request", "opened", "d3", deleted), ctx)  # type: ignore[arg-type]
    assert len(ctx.submitted) == 1 and not world.fake.log


def test_a_burst_of_pushes_coalesces_into_one_check_of_the_latest_head(world) -> None:
    ctx = Ctx(Queue(world.settings))
    number, _ = open_pr(world, {"Dockerfile": CLEAN})
    other, other_head = open_pr(world, {"Dockerfile": CLEAN}, branch="other")
    for i in range(3):
        world.fake.commit(world.repo, {"Dockerfile": CLEAN + f"# {i}\n"}, branch="feature")
        payload = world.fake.pull_request_payload(world.repo, number, "synchronize", installation=world.inst)
        pull_request.on_pull_request(Event("pull_request", "synchronize", f"s{i}", payload), ctx)  # type: ignore[arg-type]
    payload = world.fake.pull_request_payload(world.repo, other, "opened", installation=world.inst)
    pull_request.on_pull_request(Event("pull_request", "opened", "o", payload), ctx)  # type: ignore[arg-type]
    assert len({j.id for j in ctx.submitted}) == 1
    merged = ctx.queue.journal.get(ctx.submitted[-1].id).payload["pulls"]
    assert merged == {
        str(number): {"sha": world.repo.refs["refs/heads/feature"], "base": "main"},
        str(other): {"sha": other_head, "base": "main"},
    }


@pytest.mark.parametrize(("n", "landed"), [(120, True), (120, False), (20, True)])
def test_a_batch_resent_after_a_5xx_is_never_annotated_twice(world, n: int, landed: bool) -> None:
    lines = "".join(f"FROM alpine/kubectl:0.0.{i}\n" for i in range(n))
    number, head = open_pr(world, {"Dockerfile": lines})
    # the first batch (with 20 lines, the only and last one, that completes the run) is applied,
    # or not, and answered 502; so is its resend, which GitHub applies
    world.fake.fail(r"/check-runs/\d+$", status=502, method="PATCH", after=landed)
    world.fake.fail(r"/check-runs/\d+$", status=502, method="PATCH", after=True)
    _, run = check(world, number, head)
    got = sorted(a["start_line"] for a in world.fake.annotations(world.repo, run["id"]))
    assert got == list(range(1, n + 1)) and run["conclusion"] == "neutral"
    assert world.fake.count(operation="checks/update") == -(-n // 50) + 2
    world.fake.assert_clean()
