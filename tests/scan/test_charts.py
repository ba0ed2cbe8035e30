"""bot.scan.charts: the chart uses a repository declares, with the values it gives each chart."""

from __future__ import annotations

import json
from pathlib import Path

from bot.model import ImageRef, Source
from bot.scan import LocalRepo, scan_file
from bot.scan.charts import app_version_tag, claims, merge
from tests.edit.helpers import DictRepo


def _uses(files: dict[str, str], path: str) -> list[ImageRef]:
    repo = DictRepo({k: v.encode() for k, v in files.items()})
    res = scan_file(path, files[path].encode(), repo)
    assert res.errors == []
    return [r for r in res.refs if r.chart is not None]


def _values(ref: ImageRef) -> dict:
    assert ref.chart is not None
    return json.loads(ref.chart.values)


CHART = """\
apiVersion: v2
name: shop
version: 0.1.0
dependencies:
  - name: postgresql
    version: ~15.5.0
    repository: https://charts.bitnami.com/bitnami
    alias: db
  - name: redis
    version: 19.x
    repository: oci://registry-1.docker.io/bitnamicharts
    condition: redis.enabled
  - name: local
    version: 0.1.0
    repository: file://../local
  - name: common
    version: 2.x.x
    repository: "@bitnami"
"""


def test_chart_yaml_dependencies_with_alias_condition_lock_and_global() -> None:
    files = {
        "charts/shop/Chart.yaml": CHART,
        "charts/shop/Chart.lock": "dependencies:\n- name: postgresql\n"
        "  repository: https://charts.bitnami.com/bitnami\n  version: 15.5.20\n",
        "charts/shop/values.yaml": "global:\n  imageRegistry: mirror.example\n"
        "db:\n  image:\n    tag: '16'\nredis:\n  enabled: false\n",
    }
    (pg, local) = _uses(files, "charts/shop/Chart.yaml")  # redis disabled, @alias left out
    # file://../local: a chart of this repository, read from it (no Chart.yaml there: no files)
    assert local.chart is not None and local.chart.repository == "file://charts/local"
    assert local.chart.files == () and local.chart.site_keys == ("local",)
    use = pg.chart
    assert use is not None and pg.source is Source.HELM_CHART and pg.artifact == "helm-chart"
    assert (use.repository, use.name, use.version, use.alias) == (
        "https://charts.bitnami.com/bitnami", "postgresql", "15.5.20", "db"
    )  # fmt: skip
    assert _values(pg) == {"image": {"tag": "16"}, "global": {"imageRegistry": "mirror.example"}}
    assert (use.site, use.site_keys) == ("charts/shop/values.yaml", ("db",))
    assert (pg.line, pg.reference) == (5, None)
    enabled = {**files, "charts/shop/values.yaml": "redis:\n  enabled: true\n"}
    names = [
        (u.chart.name, u.chart.repository, u.chart.version) for u in _uses(enabled, "charts/shop/Chart.yaml")
    ]
    assert names[1] == ("redis", "oci://registry-1.docker.io/bitnamicharts", "19.x")


def test_a_missing_values_file_is_a_new_file_to_write() -> None:
    text = (
        "apiVersion: v2\nname: a\ndependencies:\n  - name: pg\n    repository: https://charts.example.com\n"
    )
    (pg,) = _uses({"Chart.yaml": text}, "Chart.yaml")
    assert pg.chart is not None and pg.chart.version == "*"
    assert pg.chart is not None and pg.chart.site == "values.yaml" and pg.chart.site_text == ""


APP = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: db
spec:
  sources:
    - repoURL: https://github.com/acme/deploy.git
      targetRevision: main
      ref: values
    - repoURL: registry-1.docker.io/bitnamicharts
      chart: postgresql
      targetRevision: 15.5.20
      helm:
        valueFiles:
          - $values/envs/prod/db.yaml
        values: |
          image:
            tag: "15"
        valuesObject:
          auth: {username: app}
        parameters:
          - name: image.repository
            value: acme/postgres
"""


def test_argocd_multi_source_application() -> None:
    files = {"apps/db.yaml": APP, "envs/prod/db.yaml": "image:\n  registry: mirror.example\n  tag: '14'\n"}
    (use_ref,) = _uses(files, "apps/db.yaml")
    use = use_ref.chart
    assert use is not None
    assert (use.repository, use.name, use.version) == (
        "oci://registry-1.docker.io/bitnamicharts",
        "postgresql",
        "15.5.20",
    )
    # valueFiles < values < valuesObject < parameters, as Argo CD merges them
    assert _values(use_ref) == {
        "image": {"registry": "mirror.example", "tag": "15", "repository": "acme/postgres"},
        "auth": {"username": "app"},
    }
    assert use.site_keys == ("spec", "sources", 1, "helm", "valuesObject") and use.site_problem is None


def test_argocd_values_string_only_takes_the_override_in_the_string() -> None:
    text = APP.replace("        valuesObject:\n          auth: {username: app}\n", "")
    (use_ref,) = _uses({"apps/db.yaml": text}, "apps/db.yaml")
    assert use_ref.chart is not None and use_ref.chart.site_problem is None and use_ref.chart.site_in_string
    assert use_ref.chart.site_keys == ("spec", "sources", 1, "helm", "values")
    folded = _uses({"apps/db.yaml": text.replace("values: |", "values: >")}, "apps/db.yaml")[0].chart
    assert folded is not None and "helm.values" in (folded.site_problem or "")


def test_flux_chart_ref_to_an_oci_repository() -> None:
    text = """\
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: OCIRepository
metadata:
  name: podinfo
  namespace: apps
spec:
  url: oci://ghcr.io/stefanprodan/charts/podinfo
  ref:
    tag: 6.7.1
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
spec:
  chartRef:
    kind: OCIRepository
    name: podinfo
  values:
    replicaCount: 2
"""
    (use_ref,) = _uses({"podinfo.yaml": text}, "podinfo.yaml")
    use = use_ref.chart
    assert use is not None
    assert (use.repository, use.name, use.version) == (
        "oci://ghcr.io/stefanprodan/charts",
        "podinfo",
        "6.7.1",
    )
    assert _values(use_ref) == {"replicaCount": 2}
    assert (use.site_keys, use.site_document) == (("spec", "values"), 1)


def test_flux_source_in_another_namespace_is_not_taken() -> None:
    files = {
        "a/source.yaml": "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n"
        "  name: example\n  namespace: other\nspec:\n  url: https://charts.example.com\n",
        "a/release.yaml": "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: x\n"
        "  namespace: apps\nspec:\n  chart:\n    spec:\n      chart: x\n      sourceRef:\n"
        "        kind: HelmRepository\n        name: example\n",
    }
    assert _uses(files, "a/release.yaml") == []


def test_helmfile_releases_inline_values_and_set() -> None:
    text = """\
repositories:
  - name: bitnami
    url: https://charts.bitnami.com/bitnami
releases:
  - name: local
    chart: ./charts/local
  - name: db
    chart: bitnami/postgresql
    version: 15.5.20
    values:
      - image:
          tag: "15"
    set:
      - name: image.repository
        value: acme/pg
"""
    (use_ref,) = _uses({"helmfile.yaml": text}, "helmfile.yaml")
    use = use_ref.chart
    assert use is not None
    assert (use.repository, use.name, use.version, use.via) == (
        "https://charts.bitnami.com/bitnami", "postgresql", "15.5.20", "helmfile release"
    )  # fmt: skip
    assert _values(use_ref) == {"image": {"tag": "15", "repository": "acme/pg"}}
    assert (use.site, use.site_keys) == ("helmfile.yaml", ("releases", 1, "values", 0))


def test_claims_and_helpers() -> None:
    assert claims("charts/x/Chart.yaml", b"") and claims("helmfile.yaml", b"")
    assert claims("deploy/helmfile.d/10-db.yaml", b"") and not claims("values.yaml", b"")
    assert merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": 3}, "d": None}) == {"a": {"b": 3, "c": 2}}
    assert (
        app_version_tag(
            {"t.yaml": 'image: "x:{{ .Values.image.tag | default (printf "v%s" .Chart.AppVersion) }}"'}
        )
        == "v{}"
    )
    assert app_version_tag({"t.yaml": "image: {{ .Chart.AppVersion }}"}) == "{}"


def test_helmfile_inline_values_images_are_still_found() -> None:
    text = (
        "repositories:\n  - name: r\n    url: https://charts.example.com\nreleases:\n  - name: a\n"
        "    chart: r/a\n    values:\n      - image: nginx:1.27\n"
    )
    repo = DictRepo({"helmfile.yaml": text.encode()})
    refs = scan_file("helmfile.yaml", text.encode(), repo).refs
    assert [(r.source, r.reference) for r in refs if r.chart is None] == [
        (Source.YAML, "docker.io/library/nginx:1.27")
    ]
    assert [r.chart.name for r in refs if r.chart is not None] == ["a"]


HELMFILE_LOCAL = Path(__file__).resolve().parents[1] / "fixtures" / "scan" / "helmfile-local"


def test_helmfile_releases_of_local_charts_are_read_from_the_repository() -> None:
    """Issue 12: a release whose chart is a path (``../charts/app``, ``./charts/worker``, a bare
    ``tool`` directory) is read from the repository, like a ``file://`` dependency; a path leaving
    the repository, an absolute one, or one with no chart there is reported with why."""
    repo = LocalRepo(HELMFILE_LOCAL)
    path = "deploy/helmfile.yaml"
    res = scan_file(path, (HELMFILE_LOCAL / path).read_bytes(), repo)
    assert res.errors == []
    uses = {r.context.name: r.chart for r in res.refs if r.chart is not None}
    assert sorted(uses) == ["app", "db", "tool", "worker"]
    app, worker, tool = uses["app"], uses["worker"], uses["tool"]
    assert app is not None and worker is not None and tool is not None
    assert (app.repository, app.name, app.site, app.site_keys) == (
        "file://charts/app", "app", "deploy/values/app.yaml", ()
    )  # fmt: skip
    assert json.loads(app.values) == {"image": {"repository": "acme/app"}}
    assert {p for p, _ in app.files} == {"Chart.yaml", "values.yaml", "templates/deployment.yaml"}
    assert (worker.repository, worker.site, worker.site_keys) == (
        "file://deploy/charts/worker", path, ("releases", 1, "values", 0)
    )  # fmt: skip
    assert json.loads(worker.values) == {"image": {"repository": "acme/worker-fork"}}
    assert tool.repository == "file://deploy/tool" and tool.site_problem is not None
    skipped = {
        r.context.name: r.detail for r in res.refs if r.chart is None and r.source == Source.HELM_CHART
    }
    assert skipped == {
        "shared": "chart ../../platform/charts/shared: the path is outside the repository, not read",
        "system": "chart /opt/charts/system: the path is outside the repository, not read",
        "missing": "chart ./charts/missing: no Chart.yaml at deploy/charts/missing in the repository, "
        "not read",
    }  # `stable/thing`: a repository declared elsewhere, as before


def test_a_local_helmfile_chart_gets_the_releases_values_applied() -> None:
    """The pipeline reads a local chart with no network: the release's values override its
    defaults (reported at the release); a default the release leaves alone is the chart's own
    values file's finding, not repeated at the release."""
    from bot.pipeline import expand_charts
    from bot.scan import scan_tree

    refs = scan_tree(HELMFILE_LOCAL, contain=False).refs
    expanded, failed = expand_charts(refs, None)
    assert failed == {}
    at_release = sorted(
        (r.context.name, r.reference, r.context.field)
        for r in expanded
        if r.path == "deploy/helmfile.yaml" and r.reference and r.chart is not None
    )
    assert at_release == [
        ("app", "docker.io/acme/app:1.0", "image"),
        ("worker", "docker.io/acme/worker-fork:1.0", "image"),
    ]
    own = {(r.path, r.reference) for r in expanded if r.chart is None and r.reference}
    assert ("deploy/tool/values.yaml", "docker.io/acme/tool:3.1") in own
    (app_default,) = [r for r in expanded if r.path == "charts/app/values.yaml" and r.chart is None]
    assert any("not deployed as written by deploy/helmfile.yaml" in n for n in app_default.context.notes)


FLUX_GIT = Path(__file__).resolve().parents[1] / "fixtures" / "scan" / "flux-git-source"


def _flux_git(here: object) -> dict[str, list[tuple[str | None, str, tuple[str, ...]]]]:
    """What each HelmRelease of the fixture becomes with this repository's address ``here``:
    release name -> [(reference, detail, notes)]."""
    from bot.pipeline import expand_charts
    from bot.scan import scan_tree

    refs = scan_tree(FLUX_GIT, contain=False).refs
    expanded, _ = expand_charts(refs, None, here=here)  # type: ignore[arg-type]
    out: dict[str, list[tuple[str | None, str, tuple[str, ...]]]] = {}
    for r in expanded:
        if r.path == "clusters/prod/apps.yaml":
            key = r.context.name if r.chart is None else r.line
            out.setdefault(str(key), []).append((r.reference, r.detail or "", r.context.notes))
    return out


def test_a_flux_chart_from_this_repositorys_git_source_is_read_when_the_urls_match() -> None:
    asked: list[int] = []

    def here() -> str:
        asked.append(1)
        return "git@github.com:Acme/fleet.git"  # the checkout's origin, another spelling

    got = _flux_git(here)
    assert asked == [1]  # asked once, for both releases
    (app,) = got["21"]  # the release `app` (chart.spec.chart at line 21)
    assert app[0] == "docker.io/acme/app-fork:1.0" and not any("taken to be" in n for n in app[2])
    (unlisted,) = got["38"]  # its GitRepository is not in the repository: assumed, and said
    assert unlisted[0] == "docker.io/acme/app-other:1.0"
    assert any(
        "GitRepository flux-system/not-in-this-repository is taken to be this repository" in n
        and "url is unknown" in n
        for n in unlisted[2]
    )


def test_a_flux_chart_from_another_repositorys_git_source_is_skipped_naming_its_url() -> None:
    got = _flux_git("https://github.com/acme/platform")
    (skipped,) = got["app"]
    assert skipped[0] is None
    assert skipped[1] == (
        "chart from a git source outside this repository (GitRepository flux-system/fleet at "
        "https://github.com/acme/fleet, path charts/app): not read"
    )
    assert "21" not in got


def test_a_flux_chart_from_a_git_source_is_assumed_to_be_here_when_the_scan_cannot_know() -> None:
    got = _flux_git(None)
    (app,) = got["21"]
    assert app[0] == "docker.io/acme/app-fork:1.0"
    assert any(
        "GitRepository flux-system/fleet is taken to be this repository" in n
        and "own address is unknown to the scan, so https://github.com/acme/fleet cannot be compared" in n
        for n in app[2]
    ), app


def test_repository_addresses() -> None:
    from bot.pipeline import repository_address

    same = [
        "https://github.com/acme/fleet",
        "https://github.com/Acme/Fleet.git",
        "ssh://git@github.com/acme/fleet",
        "ssh://git@github.com:22/acme/fleet.git/",
        "git@github.com:acme/fleet.git",
        "https://user:token@github.com/acme/fleet",
    ]
    assert {repository_address(u) for u in same} == {"github.com/acme/fleet"}
    assert repository_address("https://gitlab.com/acme/fleet") == "gitlab.com/acme/fleet"
    assert repository_address("not a url") is None and repository_address("https://github.com") is None
