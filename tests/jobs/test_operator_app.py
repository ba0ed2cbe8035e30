"""What an operator sets for the whole App, through whole scan jobs against the fake GitHub and a
loopback registry: organisation-wide ``_extends`` config, an operator rules directory, the
report-only mode, and each repository's own ``schedule:``."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bot import github
from bot.github import issues
from bot.jobs import dashboard, inventory, requests
from bot.jobs.handlers import schedule
from bot.jobs.journal import Job
from bot.jobs.queue import Queue, execute
from tests.jobs.pr_world import CONFIG, PrWorld, build


@pytest.fixture
def w(fake_github, registry_open, tmp_path, monkeypatch) -> PrWorld:
    monkeypatch.setenv("PULLABLE_GITHUB_PACING", "0")
    world = build(fake_github, registry_open, tmp_path, monkeypatch)
    world.settings = replace(world.settings, retry_base=0.0)
    issues._logins.clear()
    return world


def run_scan(w: PrWorld, repo: str | None = None) -> Job:
    queue = Queue(w.settings)
    name = repo or w.repo.full_name
    payload = {"installation_id": w.inst.id, "repo": name, "ref": None, "paths": None, "compare": []}
    job = queue.submit("scan", payload, repo=name)
    for _ in range(queue.settings.max_attempts + 1):
        execute(queue, job.id)
        done = queue.journal.get(job.id)
        assert done is not None
        if done.state in ("done", "failed"):
            return done
    raise AssertionError("the job neither finished nor failed")


# -- 16: organisation-wide configuration and operator rules in the App --------------------------------


def test_a_repository_extending_the_org_github_repository_gets_its_settings(w: PrWorld):
    base = 'labels: [from-the-org]\ncluster:\n  version: "1.33"\n'
    w.fake.create_repo("octo-org/.github", {".github/pullable.yml": base}, installation=w.inst)
    w.fake.push(w.repo, {".github/pullable.yml": "_extends: .github\n"})
    inv = w.scan()
    assert inv.config_error is None, inv.config_error
    assert inv.config.labels == ("from-the-org",)
    assert run_scan(w).state == "done"
    (pr,) = w.fake.pulls(w.repo)
    assert "from-the-org" in pr.labels, pr.labels


def test_an_unreadable_extends_base_is_a_configuration_error_not_silence(w: PrWorld):
    w.fake.push(w.repo, {".github/pullable.yml": "_extends: .github\nlabels: [mine]\n"})
    inv = w.scan()  # octo-org/.github does not exist
    assert inv.config_error and ".github" in inv.config_error


OURS = """rules:
  - id: ours-kubectl
    why: Our platform serves kubectl from its own registry.
    match: {name: docker.io/bitnami/kubectl}
    advise: Use harbor.internal/base/kubectl instead of {reference}.
"""


def test_operator_rules_directory_is_used_by_the_app(w: PrWorld, tmp_path: Path):
    rules_dir = tmp_path / "operator-rules"
    rules_dir.mkdir()
    (rules_dir / "05-ours.yaml").write_text(OURS)
    operator = Path(w.settings.config)
    data = json.loads(operator.read_text())
    data["rules"] = [str(rules_dir)]
    mine = tmp_path / "operator-with-rules.json"
    mine.write_text(json.dumps(data))
    w.settings = replace(w.settings, config=str(mine))
    assert "ours-kubectl" in {r.id for r in inventory.rule_table(w.settings).rules}
    inv = w.scan()
    kubectl = [f for f in inv.findings if "bitnami/kubectl" in (f.ref.reference or "")]
    assert kubectl and {f.rule for f in kubectl} == {"ours-kubectl"}, [f.rule for f in kubectl]


# -- 8: report only ---------------------------------------------------------------------------------


def test_report_only_keeps_the_dashboard_and_opens_no_pull_request(w: PrWorld):
    w.settings = replace(w.settings, report_only=True)
    assert run_scan(w).state == "done"
    assert not w.fake.pulls(w.repo, "all")
    assert not [ref for ref in w.repo.refs if ref.startswith("refs/heads/pullable/")]
    (issue,) = [i for i in w.repo.issues.values() if i.pull is None and i.title == dashboard.TITLE]
    assert "bitnami/kubectl" in issue.body
    # the same repository without the mode: the pull request the mode held back
    w.settings = replace(w.settings, report_only=False)
    assert run_scan(w).state == "done"
    assert len(w.fake.pulls(w.repo)) == 1


# -- 6: each repository's own schedule ---------------------------------------------------------------


def test_a_full_scan_notes_the_time_and_the_repository_schedule(w: PrWorld):
    w.fake.push(w.repo, {".github/pullable.yml": CONFIG + "schedule: monthly\n"})
    before = time.time()
    assert run_scan(w).state == "done"
    note = Queue(w.settings).journal.noted(requests.scanned_key(w.repo.full_name))
    assert note is not None and note["schedule"] == "monthly" and note["at"] >= before


def test_the_schedule_job_rescans_only_the_repositories_that_are_due(w: PrWorld, monkeypatch):
    daily = {"README.md": "x\n", ".github/pullable.yml": "schedule: daily\n"}
    other = w.fake.create_repo("octo-org/daily", daily, installation=w.inst)
    never = w.fake.create_repo("octo-org/new", {"README.md": "x\n"}, installation=w.inst)
    w.fake.push(w.repo, {".github/pullable.yml": CONFIG + "schedule: weekly\n"})
    for name in (w.repo.full_name, other.full_name):
        assert run_scan(w, name).state == "done"
    queue = Queue(w.settings)
    names = [w.repo.full_name, other.full_name, never.full_name]
    listing = lambda settings, inst: iter((inst, n) for n in names)  # noqa: E731
    monkeypatch.setattr(github, "installed_repositories", listing)
    # one day later: the daily repository and the never-scanned one are due, the weekly one is not
    day = time.time() + 86400
    later = dt.datetime.fromtimestamp(day, dt.UTC).replace(tzinfo=None)
    monkeypatch.setattr(schedule, "_now", lambda: later)
    job = queue.submit(requests.SCHEDULE, {"installation_id": w.inst.id, "spread": 3600.0})
    execute(queue, job.id)
    waiting = sorted(j.repo for j in _open(queue) if j.kind == "scan")
    assert waiting == [other.full_name, never.full_name]


def test_due_by_named_interval_and_by_cron():
    now = dt.datetime(2026, 3, 10, 3, 17)
    day = 86400.0
    at = lambda delta: {"at": (now - delta).replace(tzinfo=dt.UTC).timestamp()}  # noqa: E731
    assert schedule.due(None, now, day)
    # weekly under a daily tick: due on the seventh tick after the last scan (which ran a bit after its tick)
    assert not schedule.due({**at(dt.timedelta(days=6, hours=-2)), "schedule": "weekly"}, now, day)
    assert schedule.due({**at(dt.timedelta(days=7, hours=-2)), "schedule": "weekly"}, now, day)
    assert schedule.due({**at(dt.timedelta(days=1, hours=-2)), "schedule": "daily"}, now, day)
    assert not schedule.due({**at(dt.timedelta(days=20)), "schedule": "monthly"}, now, day)
    assert schedule.due({**at(dt.timedelta(days=30)), "schedule": "monthly"}, now, day)
    # cron: Mondays at 04:00; now is a Tuesday 03:17
    monday = "0 4 * * 1"
    assert not schedule.due({**at(dt.timedelta(hours=20)), "schedule": monday}, now, day)
    assert schedule.due({**at(dt.timedelta(days=6)), "schedule": monday}, now, 7 * day)
    assert schedule.due({**at(dt.timedelta(days=2)), "schedule": monday}, now, day)  # Monday's tick passed
    assert not schedule.due({**at(dt.timedelta(hours=1)), "schedule": monday}, now, 5 * day)
    assert schedule.due({**at(dt.timedelta(hours=1)), "schedule": monday}, now, 7 * day)
    assert schedule.due({**at(dt.timedelta(days=8)), "schedule": monday}, now, day)


def _open(queue: Queue) -> list[Job]:
    with queue.journal.store.transaction() as t:
        return t.open_jobs()
