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
