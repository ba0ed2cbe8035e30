"""Routing and the trigger handlers: a verified delivery (real example payloads) goes through the
web app into the journal, the ``webhook`` job runs it through the router, and the scan jobs it
leaves behind are checked."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest

from bot.jobs import Context
from bot.jobs.app import ROUTER as router
from bot.jobs.handlers import push, schedule
from bot.jobs.journal import Job
from bot.jobs.queue import Queue, execute, parse_cron
from bot.jobs.requests import merge_scan
from bot.jobs.router import Event, Router
from bot.settings import Settings, SettingsError
from bot.web import create_app
from tests.support.fakegithub_webhooks import deliver, example
from tests.support.webhooks import SECRET, settings_for


@pytest.fixture
def settings(tmp_path: Path) -> Settings:  # SQLite is enough here; both stores are tested elsewhere
    return settings_for(tmp_path / "data")


def run_delivery(queue: Queue, event: str, payload: dict) -> list[Job]:
    """POST a signed delivery, run its webhook job in-process, return the jobs it submitted."""
    r = (
        create_app(queue.settings, queue)
        .test_client()
        .post("/api/github/webhooks", data=(d := deliver(event, payload, SECRET)).body, headers=d.headers)
    )
    assert r.status_code == 202, r.json
    execute(queue, r.json["job"])
    assert queue.journal.get(r.json["job"]).state == "done"
    with queue.journal.store.transaction() as t:
        return [j for j in t.open_jobs() if j.kind != "webhook"]


def branch_push(branch: str = "master", **changes: object) -> dict:
    p = example("push", where=lambda p: p["ref"] == "refs/heads/master" and p.get("installation"))
    p["ref"] = f"refs/heads/{branch}"
    p["created"] = False
    p["before"] = "a" * 40
    p["commits"][0].update(changes)
    return p


def test_push_to_default_branch_scans_added_and_modified_files(queue: Queue):
    p = branch_push(added=["k8s/deploy.yaml"], modified=["Dockerfile", "gone.yml"])
    p["commits"].append(
        {**p["commits"][0], "added": [], "modified": ["compose.yml"], "removed": ["gone.yml"]}
    )
    (job,) = run_delivery(queue, "push", p)
    assert job.kind == "scan" and job.repo == "codertocat/hello-world"
    assert job.payload["installation_id"] == p["installation"]["id"]
    assert job.payload["ref"] == "master" and job.payload["compare"] == []
    assert job.payload["paths"] == ["Dockerfile", "compose.yml", "k8s/deploy.yaml"]
    d = queue.journal.delivery(queue.journal.get(job.id).deliveries[0])
    assert d["state"] == "pending"  # done only once the scan is done


@pytest.mark.parametrize(
    ("tweak", "paths", "compare"),
    [
        pytest.param({"added": [], "modified": [], "removed": []}, [], True, id="empty-lists-large-commit"),
        pytest.param({"added": [f"f{i}" for i in range(3000)]}, "many", True, id="3000-files"),
        pytest.param({"__commits": 2048}, ["README.md"], True, id="2048-commits"),
        pytest.param({"__top": {"forced": True}}, None, False, id="force-push"),
        pytest.param({"__top": {"created": True}}, None, False, id="new-branch"),
        pytest.param({"__top": {"before": "0" * 40}}, None, False, id="zero-before"),
    ],
)
def test_push_lists_that_cannot_be_trusted_fall_back(queue: Queue, tweak: dict, paths, compare: bool):
    p = branch_push()
    p.update(tweak.pop("__top", {}))
    n = tweak.pop("__commits", 1)
    p["commits"][0].update(tweak)
    p["commits"] = p["commits"] * n
    (job,) = run_delivery(queue, "push", p)
    want = len(p["commits"][0]["added"]) if paths == "many" else None
    assert job.payload["paths"] == (paths if paths != "many" else sorted(p["commits"][0]["added"]))
    if want:
        assert len(job.payload["paths"]) == want
    assert job.payload["compare"] == ([[p["before"], p["after"]]] if compare else [])


@pytest.mark.parametrize(
    "tweak",
    [{"ref": "refs/heads/feature"}, {"ref": "refs/tags/v1"}, {"deleted": True}, {"installation": None}],
    ids=["other-branch", "tag", "deleted", "no-installation"],
)
def test_pushes_elsewhere_are_ignored(queue: Queue, tweak: dict):
    p = branch_push()
    p.update(tweak)
    assert run_delivery(queue, "push", p) == []


def test_installation_created_scans_every_listed_repository(queue: Queue):
    p = example("installation", "created")
    p["repositories"] = [*p["repositories"], {**p["repositories"][0], "full_name": "Codertocat/Other"}]
    jobs = run_delivery(queue, "installation", p)
    assert sorted(j.repo for j in jobs) == ["codertocat/hello-world", "codertocat/other"]
    assert all(j.payload["paths"] is None and j.payload["ref"] is None for j in jobs)


def test_installation_repositories_added_scans_the_added_ones(queue: Queue):
    (job,) = run_delivery(queue, "installation_repositories", example("installation_repositories", "added"))
    assert job.repo == "codertocat/space" and job.payload["paths"] is None


def test_installation_without_a_repository_list_lists_them_in_a_schedule_job(queue: Queue):
    p = example("installation", "created")
    del p["repositories"]
    (job,) = run_delivery(queue, "installation", p)
    assert job.kind == "schedule" and job.payload == {"installation_id": p["installation"]["id"], "spread": 0}


def test_routing_reaches_a_handler_registered_for_pull_request_and_comment_events(queue: Queue):
    seen: list[Event] = []

    def on_comment(event: Event, ctx: Context) -> None:
        seen.append(event)

    router.register("issue_comment", action="created")(on_comment)
    try:
        run_delivery(queue, "issue_comment", example("issue_comment", "created"))
        client = create_app(queue.settings, queue).test_client()
        edited = deliver("issue_comment", example("issue_comment", "edited"), SECRET)
        r = client.post("/api/github/webhooks", data=edited.body, headers=edited.headers)
        assert r.json["result"] == "ignored"  # only the registered action
    finally:
        router.unregister("issue_comment", "created", on_comment)
    assert [(e.name, e.action, e.repo) for e in seen] == [
        ("issue_comment", "created", "Codertocat/Hello-World")
    ]


def test_router_runs_event_wide_and_action_handlers_in_order():
    r, calls = Router(), []
    r.register("pull_request")(lambda e, c: calls.append("any"))
    r.register("pull_request", action="closed")(lambda e, c: calls.append("closed"))
    assert r.dispatch(Event("pull_request", "closed", "d", {}), None) == 2  # type: ignore[arg-type]
    assert r.dispatch(Event("pull_request", "opened", "d", {}), None) == 1  # type: ignore[arg-type]
    assert calls == ["any", "closed", "any"]
    assert not r.handles("issues", "opened")


def test_merge_scan_unions_paths_and_a_full_scan_wins():
    a = {"paths": ["a"], "compare": [["1", "2"]], "reasons": ["x"]}
    b = {"paths": ["b", "a"], "compare": [["2", "3"]], "reasons": ["y"]}
    assert merge_scan(a, b) == {
        "paths": ["a", "b"],
        "compare": [["1", "2"], ["2", "3"]],
        "reasons": ["x", "y"],
    }
    assert merge_scan(a, {**b, "paths": None})["paths"] is None
    assert merge_scan({**a, "paths": None}, b) == {**b, "paths": None, "compare": [], "reasons": ["x", "y"]}


def test_push_changes_subtracts_later_removals():
    p = {"before": "a" * 40, "commits": [{"added": ["x"], "modified": [], "removed": []},
                                         {"added": [], "modified": [], "removed": ["x"]}]}  # fmt: skip
    assert push.changes(p) == ([], True)


# --- schedule -------------------------------------------------------------------------------------
def test_schedule_parses_cron_and_rejects_nonsense():
    cron = parse_cron("17 3 * * *")
    assert cron(dt.datetime(2026, 1, 1, 3, 17)) and not cron(dt.datetime(2026, 1, 1, 3, 18))
    for bad in ("daily", "* * * *", "61 * * * *"):
        with pytest.raises(SettingsError):
            parse_cron(bad)


def test_schedule_window_is_most_of_the_time_to_the_next_tick():
    daily = parse_cron("0 3 * * *")
    assert schedule.window(daily, dt.datetime(2026, 1, 1, 3, 0)) == pytest.approx(24 * 3600 * 0.8)
    assert schedule.window(parse_cron("*/30 * * * *"), dt.datetime(2026, 1, 1, 3, 0)) == 30 * 60 * 0.8


def test_schedule_plan_spreads_each_installation_within_its_budget():
    repos = [(1, f"big/r{i}") for i in range(1000)] + [(2, "small/a"), (2, "small/b")]
    plan = schedule.plan(repos, span=3600.0)
    big = sorted(d for i, _, d in plan if i == 1)
    assert len(plan) == 1002
    gaps = [b - a for a, b in itertools.pairwise(big)]
    assert min(gaps) >= schedule.MIN_GAP - 1e-6  # 1000 repos do not fit an hour at <= 100 scans/hour
    small = sorted(d for i, _, d in plan if i == 2)
    assert small[1] - small[0] == pytest.approx(1800) and small[1] < 3600


def test_schedule_job_submits_spread_full_scans(queue: Queue, monkeypatch):
    from bot import github

    repos = {7: ["o/a", "o/b"], 8: ["p/c"]}
    monkeypatch.setattr(github, "installation_ids", lambda settings: sorted(repos))
    monkeypatch.setattr(
        github, "installed_repositories", lambda settings, inst: iter((inst, r) for r in repos[inst])
    )
    queue._tick()
    queue._tick()  # a second consumer firing the same tick adds nothing
    (tick,) = [j for j in _open(queue) if j.kind == "schedule"]
    execute(queue, tick.id)
    per_installation = [j for j in _open(queue) if j.kind == "schedule"]
    assert sorted(j.payload["installation_id"] for j in per_installation) == [7, 8]
    for j in per_installation:
        execute(queue, j.id)
    scans = sorted(_open(queue), key=lambda j: j.repo)
    assert [(j.repo, j.payload["installation_id"], j.payload["paths"]) for j in scans] == [
        ("o/a", 7, None),
        ("o/b", 7, None),
        ("p/c", 8, None),
    ]
    assert len({j.not_before for j in scans}) == 3 and all(j.not_before > j.created_at for j in scans[1:])


def _open(queue: Queue) -> list[Job]:
    with queue.journal.store.transaction() as t:
        return t.open_jobs()


def _closed(branch: str, *, merged: bool, fork: bool = False) -> dict:
    p = example("pull_request", "closed")
    p["pull_request"]["head"]["ref"] = branch
    p["pull_request"]["merged"] = merged
    if fork:
        p["pull_request"]["head"]["repo"] = {**p["pull_request"]["head"]["repo"], "full_name": "someone/fork"}
    else:
        p["pull_request"]["head"]["repo"] = dict(p["repository"])
    return p


@pytest.mark.parametrize("merged", [True, False])
def test_closing_one_of_our_pull_requests_rescans_the_repository(queue: Queue, merged: bool):
    p = _closed("pullable/bitnami-kubectl", merged=merged)
    jobs = [j for j in run_delivery(queue, "pull_request", p) if j.kind == "scan"]
    (job,) = jobs
    assert job.repo == p["repository"]["full_name"].lower() and job.payload["paths"] is None
    assert job.payload["reasons"] == [f"pull request #{p['number']} {'merged' if merged else 'closed'}"]


@pytest.mark.parametrize(("branch", "fork"), [("feature/x", False), ("pullable/all", True)])
def test_other_closed_pull_requests_are_ignored(queue: Queue, branch: str, fork: bool):
    assert [j for j in run_delivery(queue, "pull_request", _closed(branch, merged=False, fork=fork))
            if j.kind == "scan"] == []  # fmt: skip
