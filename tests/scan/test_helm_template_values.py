"""Issue 14 §2: a chart template's ``image:`` built from ``.Values`` paths that the chart's
``values.yaml`` sets literally is resolved, its parts pointing into ``values.yaml``; one the Helm
values finder already reports is not reported twice."""

from __future__ import annotations

from bot.edit import apply_all, plan
from bot.model import Role, Skip
from bot.scan import LocalRepo, helm_template, scan_file
from tests.support.spans import FIXTURES

JOB = "helm_template/resolved/templates/job.yaml"
VALUES = "helm_template/resolved/values.yaml"


def _refs() -> list:  # type: ignore[type-arg]
    res = scan_file(JOB, (FIXTURES / JOB).read_bytes(), LocalRepo(FIXTURES), helm_template)
    assert res.errors == []
    return res.refs


def test_values_paths_resolve_to_parts_in_values_yaml() -> None:
    kubectl, worker, sidecar, pinned = _refs()
    assert kubectl.reference == "docker.io/bitnami/kubectl:1.31.4" and kubectl.line == 10
    assert [(p.role, p.text, p.path) for p in kubectl.parts] == [
        (Role.REGISTRY, "docker.io", VALUES),
        (Role.REPOSITORY, "bitnami/kubectl", VALUES),
        (Role.TAG, "1.31.4", VALUES),
    ]
    assert kubectl.context.notes == (f"resolved from {VALUES}",)
    # The worker image map is the Helm values finder's: said here, reported there.
    assert worker.skip is Skip.TEMPLATED and f"renders ghcr.io/acme/worker:2.0.1, reported from {VALUES}" in (
        worker.detail or ""
    )
    assert sidecar.skip is Skip.TEMPLATED  # `| default .Chart.AppVersion`: template logic, left as is
    assert pinned.reference == "quay.io/acme/tool:1.31.4"
    assert [(p.role, p.path) for p in pinned.parts] == [(Role.REPOSITORY, None), (Role.TAG, VALUES)]
    data = (FIXTURES / JOB).read_bytes()
    s = pinned.parts[0].span
    assert data[s.start : s.end] == b"quay.io/acme/tool"


def test_fix_edits_the_values_file() -> None:
    kubectl = _refs()[0]
    files = {VALUES: (FIXTURES / VALUES).read_bytes(), JOB: (FIXTURES / JOB).read_bytes()}
    changed = apply_all(files, plan(kubectl, "docker.io/bitnami/kubectl:1.32.0"))
    assert set(changed) == {VALUES}
    assert b'version: "1.32.0"' in changed[VALUES]
