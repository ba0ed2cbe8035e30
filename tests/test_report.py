"""Outputs: the documented JSON shape and SARIF that validates against the official 2.1.0 schema."""

from __future__ import annotations

import json

import jsonschema
import pytest

from bot import report
from bot.model import (
    Context,
    Edit,
    Evidence,
    Finding,
    Fix,
    ImageRef,
    Part,
    Role,
    ScanError,
    Skip,
    Source,
    Span,
    Status,
)
from tests.support.artifacts import npm_file


def _ref(text: str, reference: str | None, skip: Skip | None = None, line: int = 12) -> ImageRef:
    part = Part(Role.IMAGE, text, Span(100, 100 + len(text), line, 18))
    return ImageRef(
        "k8s/job.yaml",
        line,
        18,
        Source.KUBERNETES,
        text,
        (part,),
        reference,
        skip,
        None if skip is None else "why",
        Context(kind="Job", container="kubectl"),
    )


@pytest.fixture
def findings() -> list[Finding]:
    missing = Finding(
        _ref("bitnami/kubectl:1.31", "docker.io/bitnami/kubectl:1.31"),
        Status.TAG_MISSING,
        Evidence(http_status=404, error_code="MANIFEST_UNKNOWN", checked_at="2026-11-21T10:00:00Z"),
        rule="bitnami-kubectl",
        fix=Fix(
            "bitnami-kubectl",
            "Bitnami retired its images",
            "bitnami/kubectl:1.31",
            "alpine/kubectl:1.31.4",
            "docker.io/alpine/kubectl:1.31.4",
            "sha256:" + "a" * 64,
            edits=(
                Edit("k8s/job.yaml", Span(100, 120, 12, 18), "bitnami/kubectl:1.31", "alpine/kubectl:1.31.4"),
            ),
        ),
    )
    ok = Finding(
        _ref("nginx:1.27", "docker.io/library/nginx:1.27", line=20),
        Status.OK,
        Evidence(http_status=200, digest="sha256:" + "b" * 64),
    )
    bad = Finding(_ref("alpine:invalid!", None, Skip.INVALID, line=30), Status.INVALID)
    return [missing, ok, bad]


def test_json_shape(findings: list[Finding]) -> None:
    doc = json.loads(report.to_json(findings, [ScanError("x.yaml", "invalid YAML at line 3")]))
    first = doc["findings"][0]
    for key in ("path", "line", "column", "source", "text", "reference", "skip", "status", "rule", "fix"):
        assert key in first
    assert first["path"] == "k8s/job.yaml" and first["line"] == 12 and first["column"] == 18
    assert first["source"] == "kubernetes" and first["status"] == "tag-missing"
    assert first["fix"]["after"] == "alpine/kubectl:1.31.4"
    assert first["fix"]["edits"][0]["span"]["start"] == 100
    assert first["context"]["container"] == "kubectl"
    assert doc["findings"][1]["digest"] == "sha256:" + "b" * 64
    assert doc["findings"][2]["reference"] is None and doc["findings"][2]["skip"] == "invalid-reference"
    assert doc["errors"] == [{"path": "x.yaml", "message": "invalid YAML at line 3", "level": "error"}]


def test_sarif_validates_against_the_official_schema(findings: list[Finding]) -> None:
    schema = json.loads(npm_file("@microsoft/jest-sarif", "lib/schemas/sarif-2.1.0-rtm.5.json").read_text())
    doc = json.loads(report.to_sarif(findings, [ScanError("x.yaml", "invalid YAML")]))
    jsonschema.validate(doc, schema)
    results = doc["runs"][0]["results"]
    assert [r["level"] for r in results] == ["error", "error"]  # the ok one is not an alert
    assert results[0]["ruleId"] == "bitnami-kubectl"
    region = results[0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 12, "startColumn": 18, "endColumn": 38}
    rules = {r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert rules == {"bitnami-kubectl", "invalid"}


def test_sarif_rejects_a_broken_document() -> None:
    """The schema check above is meaningful: a result without a message fails it."""
    schema = json.loads(npm_file("@microsoft/jest-sarif", "lib/schemas/sarif-2.1.0-rtm.5.json").read_text())
    doc = json.loads(report.to_sarif([], []))
    doc["runs"][0]["results"] = [{"ruleId": "x"}]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def test_table_groups_by_file(findings: list[Finding]) -> None:
    out = report.to_table(findings, [ScanError("x.yaml", "bad")], files=2)
    lines = out.splitlines()
    assert lines[0] == "k8s/job.yaml"
    assert "tag-missing" in lines[1] and "docker.io/bitnami/kubectl:1.31" in lines[1]
    assert "-> alpine/kubectl:1.31.4  [bitnami-kubectl]" in lines[2]
    assert "x.yaml: bad" in out
    assert lines[-1].startswith("3 references in 2 files")
