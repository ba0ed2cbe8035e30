"""The App with chart defaults (issue 12), no extra configuration: a repository whose Chart.yaml
depends on a chart whose default image is gone gets one pull request adding the override, and
the finding shows in the dashboard and in the check run of a pull request touching Chart.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.jobs import checks, dashboard, inventory
from tests.jobs.pr_world import PrWorld, build
from tests.support.helmrepo import HelmRepo, chart

HOST = "charts.example.test"
VALUES = "# overrides\npostgresql:\n  auth:\n    username: app\n"
CHART = f"""\
apiVersion: v2
name: shop
version: 0.1.0
dependencies:
  - name: postgresql
    version: 15.5.20
    repository: https://{HOST}/bitnami
"""
DEFAULTS = """\
global:
  security:
    allowInsecureImages: false
image:
  registry: docker.io
  repository: bitnami/postgresql
  tag: 17.2.0-debian-12-r3
"""


@pytest.fixture
def world(fake_github, registry_open, tmp_path: Path, monkeypatch) -> PrWorld:
    helm = HelmRepo(tmp_path / "srv", prefix="bitnami")
    helm.add(chart("postgresql", "15.5.20", values=DEFAULTS))
    registry_open.push("bitnami/postgresql", "latest")
    registry_open.push("bitnamilegacy/postgresql", "17.2.0-debian-12-r3")
    w = build(fake_github, registry_open, tmp_path, monkeypatch)
    operator = Path(w.settings.config)
    mapping = json.loads(operator.read_text())
    mapping["registries"].update(helm.config_mapping(HOST)["registries"])
    operator.write_text(json.dumps(mapping))
    w.fake.commit(w.repo, {"charts/shop/Chart.yaml": CHART, "charts/shop/values.yaml": VALUES})
    yield w
    helm.stop()


def test_the_app_opens_a_pr_with_the_override_and_reports_it_everywhere(world: PrWorld) -> None:
    w = world
    outcome = w.scan()
    mine = [f for f in outcome.findings if f.ref.chart is not None]
    assert len(mine) == 1, [(f.ref, f.status) for f in mine]
    (found,) = mine
    assert found.ref.reference == "docker.io/bitnami/postgresql:17.2.0-debian-12-r3"
    assert found.rule == "bitnami-retired" and found.fix is not None and found.fix.edits

    report = w.publish(outcome)
    assert report.opened
    (pr,) = [p for p in w.fake.pulls(w.repo) if p.pull and p.pull.head == "pullable/bitnami-retired"]
    assert pr.pull is not None
    assert w.fake.file(w.repo, "charts/shop/values.yaml", pr.pull.head) == VALUES + (
        "  image:\n    registry: docker.io\n    repository: bitnamilegacy/postgresql\n"
        "    tag: 17.2.0-debian-12-r3\n"
        "global:\n  security:\n    allowInsecureImages: true\n"
    )
    body = pr.body or ""
    assert "so this change sets it" in body and "allowInsecureImages" in body  # why, in the PR
    assert "default of the chart `postgresql` 15.5.20" in body

    # The dashboard shows the inventory the scan recorded, chart defaults included.
    doc = {"findings": [f.to_json() for f in outcome.findings], "errors": []}
    text = dashboard.render(doc, set())
    assert "charts/shop/Chart.yaml" in text

    # A pull request touching Chart.yaml gets the finding in its check run.
    main = w.repo.refs["refs/heads/main"]
    _, head = w.fake.commit(w.repo, {"charts/shop/Chart.yaml": CHART + "# touched\n"}, branch="feature",
                            force_parent=main)  # fmt: skip
    from tests.support.fakegithub import Pull

    issue = w.fake._new_issue(w.repo, "Touch the chart", "", "octocat")
    issue.pull = Pull("feature", "main", head, main)
    s = inventory.session(w.settings, w.inst.id, w.repo.full_name, checks.PERMISSIONS)
    try:
        result = checks.check_pull(w.settings, s, issue.number, head, "main")
    finally:
        s.close()
    assert any(f.ref.chart is not None and f.rule == "bitnami-retired" for f in result.findings)
    (run,) = [r for r in w.repo.check_runs.values() if r["head_sha"] == head]
    assert "bitnami/postgresql" in json.dumps(run)


def test_the_app_reads_a_flux_chart_from_its_own_git_source_only(world: PrWorld) -> None:
    """The App knows the repository it scans (owner/name on its GitHub): a HelmRelease whose
    GitRepository is this repository reads the chart here; one whose GitRepository is another
    repository is skipped, naming its url, even though a chart sits at the same path here."""
    w = world
    here = f"{w.settings.github_url}/{w.repo.full_name}"
    flux = "".join(
        f"""\
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: {name}
  namespace: flux-system
spec:
  url: {url}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {name}-app
  namespace: flux-system
spec:
  chart:
    spec:
      chart: ./charts/app
      sourceRef:
        kind: GitRepository
        name: {name}
  values:
    image:
      tag: "2.0"
"""
        for name, url in (("self", here + ".git"), ("other", "https://github.com/else/where"))
    )
    w.fake.commit(w.repo, {
        "clusters/apps.yaml": flux,
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
        "charts/app/values.yaml": "image:\n  repository: acme/app\n  tag: '1.0'\n",
    })  # fmt: skip
    found = [f for f in w.scan().findings if f.ref.path == "clusters/apps.yaml"]
    read = [(f.ref.reference, f.ref.context.notes) for f in found if f.ref.reference]
    assert [r for r, _ in read] == ["docker.io/acme/app:2.0"] and not any(
        "taken to be" in n for n in read[0][1]
    )
    (skipped,) = [f for f in found if not f.ref.reference]
    assert skipped.ref.context.name == "other-app"
    assert "outside this repository (GitRepository flux-system/other at https://github.com/else/where" in (
        skipped.ref.detail or ""
    )
