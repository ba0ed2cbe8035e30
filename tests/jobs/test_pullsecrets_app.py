"""Pull-secret findings in the App: the full scan's inventory, the dashboard issue and the check
run of a pull request, against the fake GitHub and real registries on loopback (the private one
with htpasswd auth, so its images answer auth-required)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot import github, pullsecrets
from bot.github import GitHubApp, issues
from bot.jobs import checks, dashboard, inventory
from bot.jobs.queue import Queue
from tests.support.fakegithub import Pull
from tests.support.helmrepo import HelmRepo, chart
from tests.support.webhooks import app_settings
from tests.test_pullsecrets import FIXTURE, PRIVATE, PRIVATE_REPOS, PUBLIC

pytestmark = pytest.mark.registry


@pytest.fixture
def world(
    fake_github, registry_basic, registry_open, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request
):
    monkeypatch.setenv("PULLABLE_GITHUB_PACING", "0")
    issues._logins.clear()
    for repo in PRIVATE_REPOS:
        registry_basic.push(f"shop/{repo}", "1.0")
    registry_open.push("library/redis", "7.2")
    files = {str(p.relative_to(FIXTURE)): p.read_text() for p in sorted(FIXTURE.rglob("*")) if p.is_file()}
    app = fake_github.create_app()
    inst = fake_github.create_installation(app)
    repo = fake_github.create_repo("octo-org/shop", files, installation=inst)
    mapping = registry_basic.config_mapping(host=PRIVATE)
    mapping["registries"].update(registry_open.config_mapping(host=PUBLIC)["registries"])
    charts = HelmRepo(tmp_path / "charts")  # the chart argocd/billing.yaml deploys, on loopback
    request.addfinalizer(charts.stop)
    charts.add(chart("billing", "2.4.1", values="replicaCount: 1\n"))
    mapping["registries"].update(charts.config_mapping("charts.example.com")["registries"])
    operator = tmp_path / "operator.json"
    operator.write_text(json.dumps(mapping))
    settings = app_settings(tmp_path / "data", app, fake_github.base_url, config=str(operator))
    gh = GitHubApp(app.id, app.private_key, fake_github.base_url, settings.data_dir, sleep=lambda s: None,
                   pacing=False)  # fmt: skip
    monkeypatch.setitem(github._apps, (settings.app_id, settings.github_api_url, str(settings.data_dir)), gh)
    return SimpleNamespace(fake=fake_github, inst=inst, repo=repo, settings=settings)


def test_full_scan_and_dashboard_list_pull_secret_findings(world) -> None:
    out = inventory.take(world.settings, world.inst.id, world.repo.full_name, None, None)
    assert out is not None
    ours = {(f.ref.path, f.rule) for f in out.findings if f.rule in pullsecrets.RULES}
    assert ("apps/api/deployment.yaml", pullsecrets.WRONG_NAMESPACE) in ours
    assert ("kustomize/base/deployment.yaml", pullsecrets.WRONG_NAMESPACE) in ours
    assert ("apps/batch/cronjob.yaml", pullsecrets.MISSING) in ours
    assert ("apps/legacy/deployment.yaml", pullsecrets.UNDEFINED) in ours
    assert not any(f.ref.path == "apps/public/deployment.yaml" for f in out.findings if f.rule)
    dashboard.write(out, [], SimpleNamespace(queue=Queue(world.settings)))
    (issue,) = [i for i in world.repo.issues.values() if i.pull is None and i.user == "pullable[bot]"]
    body = issue.body
    for text in ("`pull-secret-wrong-namespace`", "`pull-secret-missing`", "`pull-secret-wrong-registry`",
                 "`pull-secret-undefined`", "made-by-terraform", "not in staging"):  # fmt: skip
        assert text in body, text
    assert "Fx7-pull-s3cret-9Q" not in body


def test_check_run_annotates_pull_secret_findings_and_the_note_stays_a_notice(world) -> None:
    main = world.repo.refs["refs/heads/main"]
    api = (
        (FIXTURE / "apps" / "api" / "deployment.yaml")
        .read_text()
        .replace("labels: {app: api}", "labels: {app: api, v: '2'}")
    )
    legacy = (FIXTURE / "apps" / "legacy" / "deployment.yaml").read_text() + "# touched\n"
    changes = {"apps/api/deployment.yaml": api, "apps/legacy/deployment.yaml": legacy}
    _, head = world.fake.commit(world.repo, changes, branch="feature", force_parent=main)
    pr = world.fake._new_issue(world.repo, "Relabel", "", "octocat")
    pr.pull = Pull("feature", "main", head, main)
    s = github.session(world.settings, world.inst.id, world.repo.full_name, checks.PERMISSIONS)
    try:
        result = checks.check_pull(world.settings, s, pr.number, head, "main")
    finally:
        s.close()
    (run,) = [r for r in world.repo.check_runs.values() if r["head_sha"] == head]
    notes = [a for a in run["_annotations"] if "made-by-terraform" in a["message"]]
    wrong = [a for a in run["_annotations"] if "not in api" in a["message"]]
    assert [a["annotation_level"] for a in notes] == ["notice"]
    assert [(a["path"], a["annotation_level"]) for a in wrong] == [("apps/api/deployment.yaml", "warning")]
    (note,) = [f for f in result.findings if f.rule == pullsecrets.UNDEFINED]
    assert not checks.rotten(note)
    # the secret in namespace shop is in a file the PR does not touch: the whole repository counted
    assert "secrets/regcred.yaml" in wrong[0]["message"]


def test_pull_request_writer_proposes_the_mechanical_fix(world) -> None:
    from bot.jobs.publish import PERMISSIONS, publish

    out = inventory.take(world.settings, world.inst.id, world.repo.full_name, None, None)
    assert out is not None
    s = inventory.session(world.settings, world.inst.id, world.repo.full_name, PERMISSIONS)
    try:
        report = publish(s, out)
    finally:
        s.close()
    (pr,) = [i for i in world.repo.issues.values() if i.pull is not None]
    assert report.opened == [pr.number] and pr.pull.head == "pullable/pull-secret-missing"
    assert (
        "imagePullSecrets: [{name: batch-pull}]" in pr.body and "Could not be fixed automatically" in pr.body
    )
    # an addition, not a replacement: the title and the introduction say so
    assert pr.title.startswith("Add imagePullSecrets for registry.example.com/shop/"), pr.title
    assert "Replace" not in pr.title and "Only the bytes of each reference" not in pr.body
    cron = world.fake.file(world.repo, "apps/batch/cronjob.yaml", "pullable/pull-secret-missing")
    original = (FIXTURE / "apps" / "batch" / "cronjob.yaml").read_text()
    assert cron == original + "          imagePullSecrets:\n            - name: batch-pull\n"
    # files the fix does not need are not in the commit
    for path in ("apps/api/deployment.yaml", "charts/site/values.yaml"):
        assert (
            world.fake.file(world.repo, path, "pullable/pull-secret-missing") == (FIXTURE / path).read_text()
        )
