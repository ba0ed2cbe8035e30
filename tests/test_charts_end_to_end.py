"""Images hidden in the defaults of the charts a repository deploys (issue 12), end to end:
a Helm repository and an OCI chart on loopback, `pullable scan` and `pullable fix`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import cli
from tests.support.helmrepo import HelmRepo, chart, serve

pytestmark = pytest.mark.registry

CHART_HOST = "charts.example.test"


@pytest.fixture
def helm_repo(tmp_path: Path) -> Iterator[HelmRepo]:
    yield from serve(tmp_path / "srv", prefix="stable")


def _ns() -> str:
    return "t" + uuid.uuid4().hex[:10]


def _repo(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def _operator(tmp_path: Path, registry, helm: HelmRepo | None) -> Path:
    mapping = registry.config_mapping(host="docker.io")
    mapping["registries"].update(registry.config_mapping()["registries"])  # its own host: OCI charts
    if helm is not None:
        mapping["registries"].update(helm.config_mapping(CHART_HOST)["registries"])
    path = tmp_path / "operator.yml"
    path.write_text(json.dumps(mapping))
    return path


def _bitnami_values(repo: str, tag: str = "15.5.0") -> str:
    return f"""\
## Bitnami-style defaults
global:
  imageRegistry: ""
  security:
    allowInsecureImages: false
image:
  registry: docker.io
  repository: {repo}
  tag: {tag}
  digest: ""
metrics:
  enabled: false
"""


def _scan(root: Path, operator: Path, capsys) -> dict:
    cli.main(["scan", str(root), "--config", str(operator), "--format", "json"])
    return json.loads(capsys.readouterr().out)


def _fix(root: Path, operator: Path, capsys) -> str:
    assert cli.main(["fix", str(root), "--config", str(operator)]) == 0
    return capsys.readouterr().out


def _chart_findings(report: dict) -> list[dict]:
    return [f for f in report["findings"] if f["source"] == "helm-chart"]


def test_chart_dependency_default_image_404_is_found_and_overridden(
    registry_open, helm_repo, tmp_path, capsys
):
    ns = _ns()
    registry_open.push(f"bitnamilegacy/{ns}", "15.5.0")  # the rotten default's frozen copy exists
    registry_open.push(f"bitnami/{ns}", "latest")  # as on Docker Hub: the repository lives, no versions
    helm_repo.add(chart(ns, "1.2.3", values=_bitnami_values(f"bitnami/{ns}")))
    helm_repo.add(chart(ns, "1.1.0", values=_bitnami_values(f"bitnami/{ns}", "15.4.0")))
    values = f"# our values\n{ns}:\n  auth:\n    username: app  # keep\n\nother: 1\n"
    root = _repo(tmp_path / "repo", {
        "Chart.yaml": f"apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n"
                      f"  - name: {ns}\n    version: ^1.1.0\n    repository: https://{CHART_HOST}/stable\n",
        "values.yaml": values,
    })  # fmt: skip
    operator = _operator(tmp_path, registry_open, helm_repo)

    found = _chart_findings(_scan(root, operator, capsys))
    assert len(found) == 1, found
    f = found[0]
    assert f["reference"], (f["detail"], f["evidence"])
    assert f["reference"] == f"docker.io/bitnami/{ns}:15.5.0"  # ^1.1.0 resolved to 1.2.3
    assert f["status"] == "tag-missing"
    assert f["rule"] == "bitnami-retired"
    assert f["path"] == "Chart.yaml"
    assert f"default of `{ns}` 1.2.3, values.yaml key `image`" in f["detail"]
    assert any(f"values.yaml at `{ns}.image`" in n for n in f["context"]["notes"])

    out = _fix(root, operator, capsys)
    assert "1 reference(s) fixed" in out
    assert (root / "values.yaml").read_text() == (
        f"# our values\n{ns}:\n  auth:\n    username: app  # keep\n"
        f"  image:\n    registry: docker.io\n    repository: bitnamilegacy/{ns}\n    tag: 15.5.0\n"
        "\nother: 1\n"
        "global:\n  security:\n    allowInsecureImages: true\n"
    )
    # Fixed: a second scan finds the chart's image overridden with a live one, nothing to do.
    again = _scan(root, operator, capsys)
    assert all(x["status"] == "ok" for x in again["findings"] if x["reference"])
    assert not _chart_findings(again)


def _dep(ns: str, *, alias: str | None = None, repo: str = f"https://{CHART_HOST}/stable") -> str:
    text = f"apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: {ns}\n    version: 1.2.3\n"
    text += f"    repository: {repo}\n"
    return text + (f"    alias: {alias}\n" if alias else "")


def test_a_default_the_repository_overrides_with_a_live_image_is_not_reported(
    registry_open, helm_repo, tmp_path, capsys
):
    ns = _ns()
    registry_open.push(f"acme/{ns}", "2.0")
    helm_repo.add(chart(ns, "1.2.3", values=_bitnami_values(f"bitnami/{ns}")))
    root = _repo(tmp_path / "repo", {
        "Chart.yaml": _dep(ns),
        "values.yaml": f"{ns}:\n  image:\n    registry: docker.io\n"
                       f"    repository: acme/{ns}\n    tag: '2.0'\n",
    })  # fmt: skip
    report = _scan(root, _operator(tmp_path, registry_open, helm_repo), capsys)
    assert not _chart_findings(report)
    mine = [f for f in report["findings"] if f["path"] == "values.yaml"]
    assert [(f["reference"], f["status"]) for f in mine] == [(f"docker.io/acme/{ns}:2.0", "ok")]


def test_aliased_dependency_and_global_image_registry(registry_open, helm_repo, tmp_path, capsys):
    ns = _ns()
    registry_open.push(f"bitnami/{ns}", "15.5.0")  # present on the mirror the repository names
    helm_repo.add(chart(ns, "1.2.3", values=_bitnami_values(f"bitnami/{ns}")))
    root = _repo(tmp_path / "repo", {
        "Chart.yaml": _dep(ns, alias="db"),
        "values.yaml": f"global:\n  imageRegistry: {registry_open.host}\n"
                       f"db:\n  auth: {{}}\n{ns}:\n  ignored: true\n",
    })  # fmt: skip
    found = _chart_findings(_scan(root, _operator(tmp_path, registry_open, helm_repo), capsys))
    assert [(f["reference"], f["status"], f["context"]["name"]) for f in found] == [
        (f"{registry_open.host}/bitnami/{ns}:15.5.0", "ok", "db")
    ]
    assert any("at `db.image`" in n for n in found[0]["context"]["notes"])


def test_argocd_application_gets_the_override_in_values_object(registry_open, helm_repo, tmp_path, capsys):
    ns = _ns()
    registry_open.push(f"bitnamilegacy/{ns}", "15.5.0")
    helm_repo.add(chart(ns, "1.2.3", values=_bitnami_values(f"bitnami/{ns}")))
    app = f"""\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: db
spec:
  source:
    repoURL: https://{CHART_HOST}/stable
    chart: {ns}
    targetRevision: 1.2.3
    helm:
      valuesObject:
        auth:
          username: app
  destination:
    namespace: db
"""
    root = _repo(tmp_path / "repo", {"apps/db.yaml": app})
    operator = _operator(tmp_path, registry_open, helm_repo)
    found = _chart_findings(_scan(root, operator, capsys))
    assert [(f["reference"], f["status"], f["rule"]) for f in found] == [
        (f"docker.io/bitnami/{ns}:15.5.0", "repo-missing", "bitnami-retired")
    ]
    _fix(root, operator, capsys)
    assert (root / "apps/db.yaml").read_text() == app.replace(
        "          username: app\n",
        "          username: app\n        image:\n          registry: docker.io\n"
        f"          repository: bitnamilegacy/{ns}\n          tag: 15.5.0\n"
        "        global:\n          security:\n            allowInsecureImages: true\n",
    )
    assert not _chart_findings(_scan(root, operator, capsys))


def test_flux_helmrelease_with_its_repository_elsewhere_and_values_from_a_configmap(
    registry_open, helm_repo, tmp_path, capsys
):
    ns = _ns()
    registry_open.push(f"bitnami/{ns}", "15.5.1")
    helm_repo.add(chart(ns, "1.2.3", values=_bitnami_values(f"bitnami/{ns}")))
    root = _repo(tmp_path / "repo", {
        "clusters/prod/sources/charts.yaml": f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: example
  namespace: flux-system
spec:
  url: https://{CHART_HOST}/stable
""",
        "clusters/prod/apps/db.yaml": f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: db-values
  namespace: db
data:
  values.yaml: |
    image:
      tag: 15.5.1
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: db
  namespace: db
spec:
  chart:
    spec:
      chart: {ns}
      version: "1.x"
      sourceRef:
        kind: HelmRepository
        name: example
        namespace: flux-system
  valuesFrom:
    - kind: ConfigMap
      name: db-values
""",
    })  # fmt: skip
    found = _chart_findings(_scan(root, _operator(tmp_path, registry_open, helm_repo), capsys))
    assert [(f["path"], f["reference"], f["status"]) for f in found] == [
        ("clusters/prod/apps/db.yaml", f"docker.io/bitnami/{ns}:15.5.1", "ok")
    ]


def test_flux_helmrelease_override_goes_into_spec_values(registry_open, helm_repo, tmp_path, capsys):
    ns = _ns()
    registry_open.push(f"bitnamilegacy/{ns}", "15.5.0")
    helm_repo.add(chart(ns, "1.2.3", values=_bitnami_values(f"bitnami/{ns}")))
    release = f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: example
spec:
  url: https://{CHART_HOST}/stable
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: db
spec:
  chart:
    spec:
      chart: {ns}
      sourceRef:
        kind: HelmRepository
        name: example
"""
    root = _repo(tmp_path / "repo", {"db.yaml": release})
    operator = _operator(tmp_path, registry_open, helm_repo)
    _fix(root, operator, capsys)
    assert (root / "db.yaml").read_text() == release + (
        "  values:\n    image:\n      registry: docker.io\n"
        f"      repository: bitnamilegacy/{ns}\n      tag: 15.5.0\n"
        "    global:\n      security:\n        allowInsecureImages: true\n"
    )


def _push_oci_chart(registry, repo: str, built) -> str:
    from bot.registry.charts import HELM_CONFIG, HELM_LAYER

    name, version, _, data = built
    layer = registry.push_blob(repo, data)
    config = json.dumps({"name": name, "version": version}).encode()
    cfg = registry.push_blob(repo, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": HELM_CONFIG, "digest": cfg, "size": len(config)},
        "layers": [{"mediaType": HELM_LAYER, "digest": layer, "size": len(data)}],
    }).encode()  # fmt: skip
    return registry.push_manifest(repo, version, manifest, "application/vnd.oci.image.manifest.v1+json")


def test_helmfile_release_of_an_oci_chart_gets_the_override_in_its_values_file(
    registry_open, tmp_path, capsys
):
    ns = _ns()
    registry_open.push(f"bitnamilegacy/{ns}", "15.5.0")
    _push_oci_chart(
        registry_open, f"charts/{ns}", chart(ns, "1.2.3", values=_bitnami_values(f"bitnami/{ns}"))
    )
    helmfile = f"""\
repositories:
  - name: internal
    url: {registry_open.host}/charts
    oci: true
releases:
  - name: db
    chart: internal/{ns}
    version: 1.2.3
    values:
      - values/db.yaml
"""
    root = _repo(tmp_path / "repo", {"helmfile.yaml": helmfile, "values/db.yaml": "auth:\n  username: app\n"})
    operator = _operator(tmp_path, registry_open, None)
    found = _chart_findings(_scan(root, operator, capsys))
    assert found and found[0]["reference"], found[0]["detail"]
    assert [(f["path"], f["reference"], f["status"]) for f in found] == [
        ("helmfile.yaml", f"docker.io/bitnami/{ns}:15.5.0", "repo-missing")
    ]
    _fix(root, operator, capsys)
    assert (root / "values/db.yaml").read_text() == (
        "auth:\n  username: app\nimage:\n  registry: docker.io\n"
        f"  repository: bitnamilegacy/{ns}\n  tag: 15.5.0\n"
        "global:\n  security:\n    allowInsecureImages: true\n"
    )


def test_an_unreachable_chart_repository_is_reported_and_nothing_else_is_disturbed(
    registry_open, helm_repo, tmp_path, capsys
):
    ns = _ns()
    registry_open.push(f"acme/{ns}", "1.0")
    root = _repo(tmp_path / "repo", {
        "Chart.yaml": _dep(ns, repo="https://down.example.test/charts"),
        "deploy.yaml": "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                       f"    - name: a\n      image: acme/{ns}:1.0\n",
    })  # fmt: skip
    mapping = registry_open.config_mapping(host="docker.io")
    mapping["registries"]["down.example.test"] = {"endpoint": "http://127.0.0.1:9"}
    operator = tmp_path / "operator.yml"
    operator.write_text(json.dumps(mapping))
    report = _scan(root, operator, capsys)
    by_path = {f["path"]: f for f in report["findings"]}
    assert by_path["deploy.yaml"]["status"] == "ok"
    chart_use = by_path["Chart.yaml"]
    assert chart_use["status"] == "unreachable" and chart_use["artifact"] == "helm-chart"
    assert "down.example.test" in chart_use["detail"]
    assert cli.main(["fix", str(root), "--config", str(operator)]) == 0
    assert "0 reference(s) fixed" in capsys.readouterr().out


def test_tag_built_from_app_version_by_the_templates_and_a_bundled_subchart(
    registry_open, helm_repo, tmp_path, capsys
):
    ns = _ns()
    registry_open.push(f"acme/{ns}", "v2.1.0")  # the templates write "v" + appVersion
    exporter = chart("exporter", "0.3.0", values=f"image:\n  repository: acme/{ns}-exporter\n  tag: '0.1'\n")
    template = (
        'image: "{{ .Values.image.repository }}:'
        '{{ .Values.image.tag | default (printf "v%s" .Chart.AppVersion) }}"\n'
    )
    helm_repo.add(chart(
        ns, "1.2.3", app_version="2.1.0", values=f"image:\n  repository: acme/{ns}\n",
        templates={"deployment.yaml": template},
        subcharts={"exporter-0.3.0": exporter[3]},
    ))  # fmt: skip
    root = _repo(
        tmp_path / "repo", {"Chart.yaml": _dep(ns), "values.yaml": f"{ns}:\n  exporter:\n    x: 1\n"}
    )
    found = _chart_findings(_scan(root, _operator(tmp_path, registry_open, helm_repo), capsys))
    got = {(f["reference"], f["status"]) for f in found}
    assert got == {
        (f"docker.io/acme/{ns}:v2.1.0", "ok"),
        (f"docker.io/acme/{ns}-exporter:0.1", "repo-missing"),
    }
    (sub,) = [f for f in found if "exporter" in f["reference"]]
    assert any(f"at `{ns}.exporter.image`" in n for n in sub["context"]["notes"])


def test_a_rotten_default_no_rule_can_replace_gets_newer_chart_advice(
    registry_open, helm_repo, tmp_path, capsys
):
    ns = _ns()
    helm_repo.add(chart(ns, "1.2.3", values=f"image:\n  repository: acme/{ns}\n  tag: '1.0'\n"))
    helm_repo.add(chart(ns, "2.0.0", values=f"image:\n  repository: acme/{ns}\n  tag: '2.0'\n"))
    root = _repo(tmp_path / "repo", {"Chart.yaml": _dep(ns)})
    (f,) = _chart_findings(_scan(root, _operator(tmp_path, registry_open, helm_repo), capsys))
    assert f["reference"] == f"docker.io/acme/{ns}:1.0" and f["status"] == "repo-missing"
    assert f"`{ns}` 2.0.0 is newer than 1.2.3" in f["advice"]


def test_several_rotten_defaults_of_one_chart_are_overridden_in_one_change(
    registry_open, helm_repo, tmp_path, capsys
):
    ns = _ns()
    for repo in (ns, f"{ns}-exporter"):
        registry_open.push(f"bitnamilegacy/{repo}", "1.0.0")
    values = _bitnami_values(f"bitnami/{ns}", "1.0.0").replace(
        "metrics:\n  enabled: false\n",
        f"metrics:\n  enabled: true\n  image:\n    registry: docker.io\n"
        f"    repository: bitnami/{ns}-exporter\n    tag: 1.0.0\n"
        f"volumePermissions:\n  enabled: false\n  image:\n    repository: bitnami/{ns}-shell\n"
        "    tag: '12'\n",
    )
    helm_repo.add(chart(ns, "1.2.3", values=values))
    root = _repo(tmp_path / "repo", {"Chart.yaml": _dep(ns), "values.yaml": f"{ns}:\n  auth: {{}}\n"})
    operator = _operator(tmp_path, registry_open, helm_repo)
    found = _chart_findings(_scan(root, operator, capsys))
    assert sorted(f["context"]["field"] for f in found) == ["image", "metrics.image"]  # disabled: not pulled
    out = _fix(root, operator, capsys)
    assert "2 reference(s) fixed" in out
    assert (root / "values.yaml").read_text() == (
        f"{ns}:\n  auth: {{}}\n  image:\n    registry: docker.io\n    repository: bitnamilegacy/{ns}\n"
        f"    tag: 1.0.0\n  metrics:\n    image:\n      registry: docker.io\n"
        f"      repository: bitnamilegacy/{ns}-exporter\n      tag: 1.0.0\n"
        "global:\n  security:\n    allowInsecureImages: true\n"
    )


def test_a_hostile_chart_archive_is_reported_as_invalid(registry_open, helm_repo, tmp_path, capsys):
    from tests.support.helmrepo import tgz

    ns = _ns()
    evil = tgz(
        {f"{ns}/Chart.yaml": f"name: {ns}\nversion: 1.2.3\n"}, links={f"{ns}/values.yaml": "/etc/passwd"}
    )
    helm_repo.add((ns, "1.2.3", None, evil))
    root = _repo(tmp_path / "repo", {"Chart.yaml": _dep(ns)})
    (f,) = _chart_findings(_scan(root, _operator(tmp_path, registry_open, helm_repo), capsys))
    assert f["status"] == "invalid" and "is a link" in f["detail"]


def test_argocd_values_string_gets_the_override_inside_it(registry_open, helm_repo, tmp_path, capsys):
    ns = _ns()
    registry_open.push(f"bitnamilegacy/{ns}", "15.5.0")
    helm_repo.add(chart(ns, "1.2.3", values=_bitnami_values(f"bitnami/{ns}")))
    app = f"""\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: db
spec:
  source:
    repoURL: https://{CHART_HOST}/stable
    chart: {ns}
    targetRevision: 1.2.3
    helm:
      values: |
        auth:
          username: app
  destination:
    namespace: db
"""
    root = _repo(tmp_path / "repo", {"apps/db.yaml": app})
    operator = _operator(tmp_path, registry_open, helm_repo)
    _fix(root, operator, capsys)
    assert (root / "apps/db.yaml").read_text() == app.replace(
        "          username: app\n",
        "          username: app\n        image:\n          registry: docker.io\n"
        f"          repository: bitnamilegacy/{ns}\n          tag: 15.5.0\n"
        "        global:\n          security:\n            allowInsecureImages: true\n",
    )
    assert not _chart_findings(_scan(root, operator, capsys))


def test_an_existing_partial_override_is_updated_in_place(registry_open, helm_repo, tmp_path, capsys):
    ns = _ns()
    registry_open.push(f"bitnami/{ns}", "latest")
    registry_open.push(f"bitnamilegacy/{ns}", "15.4.0")
    helm_repo.add(chart(ns, "1.2.3", values=_bitnami_values(f"bitnami/{ns}")))
    values = f'{ns}:\n  image:\n    tag: "15.4.0"   # pinned by ops\n  auth: {{}}\n'
    root = _repo(tmp_path / "repo", {"Chart.yaml": _dep(ns), "values.yaml": values})
    operator = _operator(tmp_path, registry_open, helm_repo)
    (f,) = _chart_findings(_scan(root, operator, capsys))
    assert f["reference"] == f"docker.io/bitnami/{ns}:15.4.0"  # the repository's tag, the chart's name
    assert f"`{ns}` 1.2.3 values.yaml key `image`, with the repository's values applied" in f["detail"]
    _fix(root, operator, capsys)
    assert (root / "values.yaml").read_text() == (
        f'{ns}:\n  image:\n    tag: "15.4.0"   # pinned by ops\n    registry: docker.io\n'
        f"    repository: bitnamilegacy/{ns}\n  auth: {{}}\n"
        "global:\n  security:\n    allowInsecureImages: true\n"
    )


def test_a_tag_the_templates_take_from_the_cluster_version(registry_open, helm_repo, tmp_path, capsys):
    ns = _ns()
    registry_open.push(f"acme/{ns}-kubectl", "1.33")
    template = (
        "image: {{ .Values.kubectl.image.repository }}:"
        '{{ .Values.kubectl.image.tag | default (printf "%s.%s" .Capabilities.KubeVersion.Major '
        ".Capabilities.KubeVersion.Minor) }}\n"
    )
    values = f"kubectl:\n  image:\n    repository: acme/{ns}-kubectl\n    tag: ''\n"
    helm_repo.add(chart(ns, "1.2.3", app_version="9.9.9", values=values, templates={"job.yaml": template}))
    files = {"Chart.yaml": _dep(ns)}
    operator = _operator(tmp_path, registry_open, helm_repo)
    root = _repo(tmp_path / "unknown", files)
    assert not _chart_findings(_scan(root, operator, capsys))  # no cluster.version: the tag is unknown
    root = _repo(tmp_path / "known", {**files, ".github/pullable.yml": 'cluster:\n  version: "1.33"\n'})
    (f,) = _chart_findings(_scan(root, operator, capsys))
    assert (f["reference"], f["status"]) == (f"docker.io/acme/{ns}-kubectl:1.33", "ok")
    assert any("cluster version 1.33" in n for n in f["context"]["notes"])


def test_a_rotten_image_of_a_bundled_subchart_is_overridden_under_both_names(
    registry_open, helm_repo, tmp_path, capsys
):
    ns = _ns()
    registry_open.push(f"bitnamilegacy/{ns}-exporter", "0.1.0")
    exporter = chart("exporter", "0.3.0", values=_bitnami_values(f"bitnami/{ns}-exporter", "0.1.0"))
    helm_repo.add(chart(ns, "1.2.3", values="replicas: 1\n", subcharts={"exporter-0.3.0": exporter[3]}))
    root = _repo(tmp_path / "repo", {"Chart.yaml": _dep(ns, alias="db"), "values.yaml": "db: {}\n"})
    operator = _operator(tmp_path, registry_open, helm_repo)
    (f,) = _chart_findings(_scan(root, operator, capsys))
    assert (f["reference"], f["context"]["name"]) == (
        f"docker.io/bitnami/{ns}-exporter:0.1.0",
        f"{ns}/exporter",
    )
    _fix(root, operator, capsys)
    assert (root / "values.yaml").read_text() == (
        "db: {exporter: {image: {registry: docker.io, "
        f"repository: bitnamilegacy/{ns}-exporter, tag: 0.1.0" + "}}}\n"
        "global:\n  security:\n    allowInsecureImages: true\n"
    )


# --- file:// sub-charts: the parent's overrides applied to a chart read from the repository --------


def test_a_local_file_dependency_gets_the_parents_overrides_and_each_image_is_reported_once(
    registry_open, tmp_path, capsys
):
    ns = _ns()
    registry_open.push(f"acme/{ns}", "2.0")  # what the parent deploys (its override of the tag)
    registry_open.push(f"acme/{ns}-sidecar", "3.0")
    common_values = (
        f"image:\n  registry: docker.io\n  repository: acme/{ns}\n  tag: '1.0'\n"
        f"sidecar:\n  image:\n    repository: acme/{ns}-sidecar\n    tag: '3.0'\n"
    )
    root = _repo(tmp_path / "repo", {
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n"
                                 "  - name: common\n    version: 0.1.0\n    repository: file://../common\n",
        "charts/app/values.yaml": "common:\n  image:\n    tag: '2.0'\n",
        "charts/common/Chart.yaml": "apiVersion: v2\nname: common\nversion: 0.1.0\n",
        "charts/common/values.yaml": common_values,
    })  # fmt: skip
    operator = _operator(tmp_path, registry_open, None)
    report = _scan(root, operator, capsys)
    found = _chart_findings(report)
    # What the parent deploys: the sub-chart's image with the parent's tag, at the dependency.
    assert [(f["path"], f["reference"], f["status"]) for f in found] == [
        ("charts/app/Chart.yaml", f"docker.io/acme/{ns}:2.0", "ok")
    ], found
    assert any("at `common.image`" in n for n in found[0]["context"]["notes"])
    # Each image once: the sidecar the parent does not override is reported where it is written
    # (its own values.yaml, fixed in place), never again at the dependency.
    refs = [f["reference"] for f in report["findings"] if f["reference"]]
    assert refs.count(f"docker.io/acme/{ns}-sidecar:3.0") == 1
    # The overridden default stays a finding of the repository's own file (a rotten default there
    # can be fixed in place), marked as not what the parent deploys.
    (own,) = [f for f in report["findings"] if f["reference"] == f"docker.io/acme/{ns}:1.0"]
    assert own["path"] == "charts/common/values.yaml" and own["status"] in ("tag-missing", "repo-missing")
    assert any("not deployed as written" in n and "charts/app" in n for n in own["context"]["notes"])


def test_a_local_file_dependency_with_global_image_registry_and_an_escaping_path(
    registry_open, tmp_path, capsys
):
    ns = _ns()
    registry_open.push(f"acme/{ns}", "1.0")
    root = _repo(tmp_path / "repo", {
        "Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n"
                      "  - name: lib\n    alias: db\n    version: '*'\n    repository: file://./sub/lib\n"
                      "  - name: evil\n    version: '*'\n    repository: file://../../etc\n",
        "values.yaml": f"global:\n  imageRegistry: {registry_open.host}\n",
        "sub/lib/Chart.yaml": "apiVersion: v2\nname: lib\nversion: 0.2.0\n",
        "sub/lib/values.yaml": f"image:\n  repository: acme/{ns}\n  tag: '1.0'\n",
    })  # fmt: skip
    found = _chart_findings(_scan(root, _operator(tmp_path, registry_open, None), capsys))
    by_ref = {f["reference"]: f for f in found}
    f = by_ref[f"{registry_open.host}/acme/{ns}:1.0"]
    assert f["status"] == "ok" and f["context"]["name"] == "db"
    (evil,) = [f for f in found if f["reference"] is None]
    assert "outside the repository" in evil["detail"]


def _release_writing_only_the_repository(ns: str, url: str) -> str:
    return f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: example
spec:
  url: {url}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: db
spec:
  chart:
    spec:
      chart: {ns}
      version: 1.2.3
      sourceRef:
        kind: HelmRepository
        name: example
  values:
    image:
      repository: acme/{ns}
"""


def test_a_release_writing_only_the_repository_is_reported_once_with_the_charts_tag(
    registry_open, helm_repo, tmp_path, capsys
):
    ns = _ns()
    registry_open.push(f"acme/{ns}", "15.5.0")
    helm_repo.add(chart(ns, "1.2.3", values=_bitnami_values(f"bitnami/{ns}")))
    root = _repo(
        tmp_path / "repo",
        {"db.yaml": _release_writing_only_the_repository(ns, f"https://{CHART_HOST}/stable")},
    )
    report = _scan(root, _operator(tmp_path, registry_open, helm_repo), capsys)
    mine = [f for f in report["findings"] if f"acme/{ns}" in f["text"]]
    assert [(f["source"], f["reference"], f["status"], f["skip"]) for f in mine] == [
        ("helm-chart", f"docker.io/acme/{ns}:15.5.0", "ok", None)
    ], mine


def test_the_chart_default_skip_stays_when_the_chart_cannot_be_read(registry_open, tmp_path, capsys):
    ns = _ns()
    root = _repo(
        tmp_path / "repo",
        {"db.yaml": _release_writing_only_the_repository(ns, "https://down.example.test/c")},
    )
    mapping = registry_open.config_mapping(host="docker.io")
    mapping["registries"]["down.example.test"] = {"endpoint": "http://127.0.0.1:9"}
    operator = tmp_path / "operator.yml"
    operator.write_text(json.dumps(mapping))
    report = _scan(root, operator, capsys)
    (skipped,) = [f for f in report["findings"] if f["skip"] == "tag-from-chart-default"]
    assert f"acme/{ns}" in skipped["text"]
    assert "the chart could not be read" in skipped["detail"] and "down.example.test" in skipped["detail"]


def test_a_release_writing_only_the_tag_is_reported_once_with_the_charts_repository(
    registry_open, helm_repo, tmp_path, capsys
):
    ns = _ns()
    registry_open.push(f"bitnami/{ns}", "15.5.1")
    helm_repo.add(chart(ns, "1.2.3", values=_bitnami_values(f"bitnami/{ns}")))
    release = _release_writing_only_the_repository(ns, f"https://{CHART_HOST}/stable")
    release = release.replace(f"      repository: acme/{ns}", '      tag: "15.5.1"')
    root = _repo(tmp_path / "repo", {"db.yaml": release})
    report = _scan(root, _operator(tmp_path, registry_open, helm_repo), capsys)
    mine = [f for f in report["findings"] if ns in (f["reference"] or f["text"])]
    assert [(f["source"], f["reference"], f["status"], f["skip"]) for f in mine] == [
        ("helm-chart", f"docker.io/bitnami/{ns}:15.5.1", "ok", None)
    ], mine


def test_a_tag_only_override_says_so_when_the_chart_cannot_be_read(registry_open, tmp_path, capsys):
    ns = _ns()
    release = _release_writing_only_the_repository(ns, "https://down.example.test/c")
    release = release.replace(f"repository: acme/{ns}", "tag: 15.5.1")
    root = _repo(tmp_path / "repo", {"db.yaml": release})
    mapping = registry_open.config_mapping(host="docker.io")
    mapping["registries"]["down.example.test"] = {"endpoint": "http://127.0.0.1:9"}
    operator = tmp_path / "operator.yml"
    operator.write_text(json.dumps(mapping))
    report = _scan(root, operator, capsys)
    (skipped,) = [f for f in report["findings"] if f["skip"] == "repository-from-chart-default"]
    assert skipped["text"] == "tag: 15.5.1"
    assert skipped["line"] == release.splitlines().index("      tag: 15.5.1") + 1
    assert "the chart could not be read" in skipped["detail"] and "down.example.test" in skipped["detail"]


def test_flux_charts_from_a_git_source_and_values_from_secrets(registry_open, tmp_path, capsys):
    ns = _ns()
    for tag in ("2.0", "3.0"):
        registry_open.push(f"acme/{ns}", tag)
    flux = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  url: ssh://git@github.com/acme/fleet
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: app
  namespace: flux-system
spec:
  chart:
    spec:
      chart: ./charts/app
      sourceRef:
        kind: GitRepository
        name: flux-system
  valuesFrom:
    - kind: Secret
      name: app-secret-values
  values:
    image:
      tag: "2.0"
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmChart
metadata:
  name: app-chart
  namespace: flux-system
spec:
  chart: charts/app
  sourceRef:
    kind: GitRepository
    name: flux-system
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: app-by-ref
  namespace: flux-system
spec:
  chartRef:
    kind: HelmChart
    name: app-chart
  values:
    image:
      tag: "3.0"
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: elsewhere
  namespace: flux-system
spec:
  chart:
    spec:
      chart: ./charts/not-here
      sourceRef:
        kind: GitRepository
        name: other-repo
"""
    root = _repo(tmp_path / "repo", {
        "clusters/prod/apps.yaml": flux,
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
        "charts/app/values.yaml": f"image:\n  repository: acme/{ns}\n  tag: '1.0'\n",
    })  # fmt: skip
    report = _scan(root, _operator(tmp_path, registry_open, None), capsys)
    found = _chart_findings(report)
    got = sorted((f["line"], f["reference"], f["status"]) for f in found if f["reference"])
    assert got == [
        (17, f"docker.io/acme/{ns}:2.0", "ok"),  # chart.spec.chart of the release `app`
        (47, f"docker.io/acme/{ns}:3.0", "ok"),  # chartRef.name of `app-by-ref`
    ], found
    skipped = {f["context"]["name"]: f for f in found if f["skip"]}
    assert "chart from a git source outside this repository" in skipped["elsewhere"]["detail"]
    secret = skipped["app-secret-values"]
    assert secret["path"] == "clusters/prod/apps.yaml" and "Secret" in secret["detail"]
    assert "never read" in secret["detail"]


def test_fix_of_a_local_file_dependency_overrides_in_the_parent_and_fixes_the_default_in_place(
    registry_open, tmp_path, capsys
):
    ns = _ns()
    for tag in ("1.0", "2.0"):
        registry_open.push(f"bitnamilegacy/{ns}", tag)
    root = _repo(tmp_path / "repo", {
        "Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n"
                      "  - name: common\n    version: 0.1.0\n    repository: file://charts/common\n",
        "values.yaml": "common:\n  image:\n    tag: '2.0'  # ours\n",
        "charts/common/Chart.yaml": "apiVersion: v2\nname: common\nversion: 0.1.0\n",
        "charts/common/values.yaml": f"image:\n  registry: docker.io\n"
                                     f"  repository: bitnami/{ns}\n  tag: '1.0'\n",
    })  # fmt: skip
    operator = _operator(tmp_path, registry_open, None)
    out = _fix(root, operator, capsys)
    assert "2 reference(s) fixed" in out, out
    # What the parent deploys: overridden in the parent's values, where its tag already is.
    assert (root / "values.yaml").read_text() == (
        "common:\n  image:\n    tag: '2.0'  # ours\n    registry: docker.io\n"
        f"    repository: bitnamilegacy/{ns}\n"
    )
    # The chart's own rotten default: fixed in place, in the repository's own file.
    assert (root / "charts/common/values.yaml").read_text() == (
        f"image:\n  registry: docker.io\n  repository: bitnamilegacy/{ns}\n  tag: '1.0'\n"
    )
    again = _scan(root, operator, capsys)
    assert all(f["status"] == "ok" for f in again["findings"] if f["reference"]), again["findings"]


def test_a_helmfile_release_of_a_local_chart_is_overridden_in_its_values_file(
    registry_open, tmp_path, capsys
):
    """Issue 12: ``chart: ../charts/app`` is read from the repository; the release's values file
    gets the override, the chart's own rotten default is fixed in place; a path leaving the
    repository is reported as skipped."""
    ns = _ns()
    for tag in ("1.0", "2.0"):
        registry_open.push(f"bitnamilegacy/{ns}", tag)
    root = _repo(tmp_path / "repo", {
        "deploy/helmfile.yaml": "releases:\n  - name: app\n    chart: ../charts/app\n    values:\n"
                                "      - values/app.yaml\n  - name: shared\n    chart: ../../shared\n",
        "deploy/values/app.yaml": "image:\n  tag: '2.0'  # ours\n",
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
        "charts/app/values.yaml": f"image:\n  registry: docker.io\n  repository: bitnami/{ns}\n"
                                  "  tag: '1.0'\n",
    })  # fmt: skip
    operator = _operator(tmp_path, registry_open, None)
    report = _scan(root, operator, capsys)
    found = _chart_findings(report)
    rotten = sorted((f["path"], f["reference"], f["status"]) for f in found if f["reference"])
    assert rotten == [("deploy/helmfile.yaml", f"docker.io/bitnami/{ns}:2.0", "repo-missing")], found
    (shared,) = [f for f in found if f["context"]["name"] == "shared"]
    assert "outside the repository" in shared["detail"]
    out = _fix(root, operator, capsys)
    assert "2 reference(s) fixed" in out, out
    assert (root / "deploy/values/app.yaml").read_text() == (
        f"image:\n  tag: '2.0'  # ours\n  registry: docker.io\n  repository: bitnamilegacy/{ns}\n"
    )
    assert (root / "charts/app/values.yaml").read_text() == (
        f"image:\n  registry: docker.io\n  repository: bitnamilegacy/{ns}\n  tag: '1.0'\n"
    )
    again = _scan(root, operator, capsys)
    assert all(f["status"] == "ok" for f in again["findings"] if f["reference"]), again["findings"]


def test_the_cli_compares_a_flux_git_source_with_the_checkouts_origin(tmp_path, capsys):
    """``pullable scan`` asks git for the checkout's ``origin`` (only because a chart comes from
    a GitRepository): the same repository is read, another one is skipped naming its url."""
    import shutil
    import subprocess

    from bot.cli import git_origin

    fixture = Path(__file__).parent / "fixtures" / "scan" / "flux-git-source"
    root = tmp_path / "fleet"
    shutil.copytree(fixture, root)
    assert git_origin(root) is None  # not a git checkout: unknown
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    results = {}
    for origin in ("git@github.com:acme/fleet.git", "https://github.com/acme/platform.git"):
        subprocess.run(["git", "-C", str(root), "remote", "remove", "origin"], capture_output=True)
        subprocess.run(["git", "-C", str(root), "remote", "add", "origin", origin], check=True)
        assert git_origin(root) == origin
        cli.main(["scan", str(root), "--offline", "--format", "json"])
        found = json.loads(capsys.readouterr().out)["findings"]
        results[origin] = {
            (f["line"], f["reference"], f["detail"]) for f in found if f["path"] == "clusters/prod/apps.yaml"
        }
    same = results["git@github.com:acme/fleet.git"]
    assert {(line, ref) for line, ref, _ in same} == {
        (21, "docker.io/acme/app-fork:1.0"),
        (38, "docker.io/acme/app-other:1.0"),
    }
    other = results["https://github.com/acme/platform.git"]
    assert (21, None, "chart from a git source outside this repository (GitRepository flux-system/fleet at "
            "https://github.com/acme/fleet, path charts/app): not read") in other  # fmt: skip
