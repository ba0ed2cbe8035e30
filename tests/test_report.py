"""Outputs: the documented JSON shape and SARIF that validates against the official 2.1.0 schema."""

from __future__ import annotations

import dataclasses
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
    assert lines[0].split()[:3] == ["LINE:COL", "IMAGE", "STATUS"]
    assert lines[1] == "k8s/job.yaml"
    assert "tag-missing" in lines[2] and "-> alpine/kubectl:1.31.4 [bitnami-kubectl]" in lines[2]
    assert "ok" in lines[3] and "docker.io/library/nginx:1.27" in lines[3]
    assert "x.yaml: bad" in out
    assert lines[-1].startswith("3 references in 2 files")


# --- issue 16: SARIF that does not merge alerts ---------------------------------------------------


def _schema() -> dict:
    return json.loads(npm_file("@microsoft/jest-sarif", "lib/schemas/sarif-2.1.0-rtm.5.json").read_text())


def test_sarif_fingerprints_are_unique_per_location(findings: list[Finding]) -> None:
    """The same text on two lines (and in two columns of one line) gives separate alerts."""
    missing = findings[0]
    twins = [
        Finding(_ref("bitnami/kubectl:1.31", "docker.io/bitnami/kubectl:1.31", line=n), Status.TAG_MISSING)
        for n in (12, 40, 41)
    ]
    moved = Finding(dataclasses.replace(twins[0].ref, column=30), Status.TAG_MISSING)
    doc = json.loads(report.to_sarif([missing, *twins, moved], []))
    jsonschema.validate(doc, _schema())
    prints = [r["partialFingerprints"]["pullableLocation/v2"] for r in doc["runs"][0]["results"]]
    assert len(prints) == 5 and len(set(prints)) == 4  # missing and twins[0] are the same place
    assert all(len(p) == 64 and "bitnami" not in p for p in prints)  # hashed, not path:text
    again = json.loads(report.to_sarif([missing, *twins, moved], []))
    assert prints == [r["partialFingerprints"]["pullableLocation/v2"] for r in again["runs"][0]["results"]]


def test_sarif_leaves_unchecked_references_out_unless_asked(findings: list[Finding]) -> None:
    unchecked = Finding(_ref("nginx:1.27", "docker.io/library/nginx:1.27", line=50), Status.UNCHECKED)
    templated = Finding(_ref("{{ .Values.image }}", None, Skip.TEMPLATED, line=60), Status.UNCHECKED)
    advised = Finding(_ref("bitnami/redis:7", "docker.io/bitnami/redis:7", line=70), Status.UNCHECKED,
                      rule="bitnami-retired", advice="would move this; not verified (offline)")  # fmt: skip
    every = [*findings, unchecked, templated, advised]
    doc = json.loads(report.to_sarif(every, []))
    lines = [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in doc["runs"][0]["results"]]
    assert lines == [12, 30, 70]  # a rule speaking about an unchecked reference still counts
    doc = json.loads(report.to_sarif(every, [], unchecked=True))
    jsonschema.validate(doc, _schema())
    assert [r["level"] for r in doc["runs"][0]["results"]][-3:] == ["note", "note", "warning"]


def test_sarif_rules_carry_help_text_and_uri(findings: list[Finding]) -> None:
    helps = {"bitnami-kubectl": "Bitnami stopped publishing versioned bitnami/kubectl images. See https://x."}
    doc = json.loads(report.to_sarif(findings, [], rule_help=helps))
    jsonschema.validate(doc, _schema())
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["bitnami-kubectl"]["help"]["text"] == helps["bitnami-kubectl"]
    assert rules["bitnami-kubectl"]["helpUri"].endswith("rules/README.md#the-built-in-rules")
    assert rules["invalid"]["help"]["text"] == report._DESCRIPTIONS[Status.INVALID]
    assert rules["invalid"]["helpUri"].endswith("#statuses")


def test_cli_sarif_gives_every_rule_its_why(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    from bot import cli

    examples = Path(__file__).resolve().parents[1] / "examples"
    assert cli.main(["scan", str(examples), "--offline", "--format", "sarif"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, _schema())
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert "Bitnami" in rules["bitnami-retired"]["help"]["text"]
    assert {r["ruleId"] for r in doc["runs"][0]["results"]} == set(rules)
    assert all(r["ruleId"] != "unchecked" for r in doc["runs"][0]["results"])
