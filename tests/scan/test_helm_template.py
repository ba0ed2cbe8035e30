"""Helm template finder: literal image lines with exact spans, templated ones skipped."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.model import ImageRef, Source
from bot.scan import LocalRepo, claimant
from bot.scan import helm_template as ht
from tests.support.spans import FIXTURES, check_spans, parts, scan_data, scan_fixture


def row(r: ImageRef) -> tuple[int, int, str, str | None, str | None]:
    return (r.line, r.column, r.text, r.reference, None if r.skip is None else str(r.skip))


def test_chart_template_fixture() -> None:
    _data, res = scan_fixture("helm_template/web/templates/deployment.yaml")
    got = [(*row(r), r.context.kind, r.context.container) for r in res.refs]
    assert got == [
        (13, 19, "busybox:1.36", "docker.io/library/busybox:1.36", None, "Deployment", "wait-for-db"),
        (17, 19, "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}",
         None, "templated", "Deployment", None),
        (19, 18, "quay.io/prometheus/statsd-exporter:v0.26.0", "quay.io/prometheus/statsd-exporter:v0.26.0",
         None, "Deployment", "metrics"),
        (21, 19, "envoyproxy/envoy:v1.30.2", "docker.io/envoyproxy/envoy:v1.30.2", None, "Deployment", None),
        (34, 16, "{{ .Values.migrate.image | quote }}", None, "templated", "Job", "migrate"),
    ]  # fmt: skip
    assert [(parts(r), r.parts[0].quote) for r in res.refs[:4]] == [
        ([("image", "busybox:1.36", 13, 19)], '"'),
        ([("image", res.refs[1].text, 17, 19)], '"'),
        ([("image", "quay.io/prometheus/statsd-exporter:v0.26.0", 19, 18)], ""),  # comment left out
        ([("image", "envoyproxy/envoy:v1.30.2", 21, 19)], "'"),
    ]
    assert res.refs[1].detail is not None and res.refs[1].detail.startswith("templated value '{{ .Values")


def test_helpers_tpl() -> None:
    _data, res = scan_fixture("helm_template/web/templates/_helpers.tpl")
    assert [(row(r), parts(r)) for r in res.refs] == [
        ((3, 8, "bitnami/kubectl:1.31", "docker.io/bitnami/kubectl:1.31", None),
         [("image", "bitnami/kubectl:1.31", 3, 8)]),
    ]  # fmt: skip


def test_value_forms_crlf_bom_and_non_ascii() -> None:
    text = (
        "\ufeff{{- /* modèle — conteneurs */ -}}\r\n"
        "containers:\r\n"
        "  - image: nginx:1.27\r\n"
        '    "image": "redis:7#not-a-comment"\r\n'
        "  - image: alpine:3.20 # comment {{ x }}\r\n"
        "    image: {{ .Values.a }} # {{ .Values.b }}\r\n"
        "    image:\r\n"
        "      repository: nested\r\n"
        "    image: |\r\n"
        '    image: "unterminated\r\n'
        "    image: {{- if .Values.x }}\r\n"
        "    image: 'it''s'\r\n"
        '    image: "nginx:latest\\nFROM evil"\r\n'
        "    nodeImage: kindest/node:v1.30.0\r\n"
    )
    data = text.encode()
    res = scan_data("chart/templates/pod.yaml", data, None)
    assert res.errors == []
    got = [(row(r), parts(r), r.parts[0].raw) for r in res.refs]
    assert got == [
        ((3, 12, "nginx:1.27", "docker.io/library/nginx:1.27", None), [("image", "nginx:1.27", 3, 12)], True),
        ((4, 15, "redis:7#not-a-comment", None, "invalid-reference"),
         [("image", "redis:7#not-a-comment", 4, 15)], True),
        ((5, 12, "alpine:3.20", "docker.io/library/alpine:3.20", None),
         [("image", "alpine:3.20", 5, 12)], True),
        ((6, 12, "{{ .Values.a }}", None, "templated"), [("image", "{{ .Values.a }}", 6, 12)], True),
        ((12, 13, "it's", None, "invalid-reference"), [("image", "it's", 12, 13)], False),
        ((13, 13, "nginx:latest\nFROM evil", None, "invalid-reference"),
         [("image", "nginx:latest\nFROM evil", 13, 13)], False),
    ]  # fmt: skip
    s = res.refs[0].parts[0].span
    assert data[s.start : s.end] == b"nginx:1.27"
    s = res.refs[-1].parts[0].span  # escapes decoded for the verdict; the span is what is written
    assert data[s.start : s.end] == b"nginx:latest\\nFROM evil"


def test_image_lines_reads_from_lines_for_jinja() -> None:
    """The line reader the Jinja finder (issue 7) reuses for ``*.j2`` Dockerfile templates."""
    text = "FROM --platform=linux/amd64 python:3.12-slim AS base\nFROM {{ base }}:{{ tag }} AS b\nRUN echo\n"
    found = list(ht.image_lines(text, "roles/app/templates/Dockerfile.j2", Source.JINJA, from_lines=True))
    check_spans(text.encode(), found)
    assert [(row(r), r.source, r.context.field) for r in found] == [
        ((1, 29, "python:3.12-slim", "docker.io/library/python:3.12-slim", None), Source.JINJA, "FROM"),
        ((2, 6, "{{ base }}:{{ tag }}", None, "templated"), Source.JINJA, "FROM"),
    ]


@pytest.mark.parametrize(
    ("path", "head", "claimed"),
    [
        ("charts/web/templates/deployment.yaml", b"metadata:\n  name: {{ .Release.Name }}\n", True),
        ("templates/_helpers.tpl", b"", True),
        ("charts/web/templates/sub/cm.yml", b"{{- if .Values.x }}\n", True),
        ("charts/web/templates/plain.yaml", b"apiVersion: v1\nkind: Pod\n", False),
        ("roles/app/templates/compose.yml.j2", b"image: {{ image }}\n", False),
        ("charts/web/templates/NOTES.txt", b"{{ .Release.Name }}\n", False),
        ("charts/web/values.yaml", b"image: {{ x }}\n", False),
    ],
)
def test_claims(path: str, head: bytes, claimed: bool) -> None:
    assert ht.claims(path, head) is claimed
    if claimed:
        assert claimant(path, head) is ht


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("image:-{}\"'# \n\r\tax.1/\\|")), max_size=300))
def test_arbitrary_text_never_crashes(text: str) -> None:
    found = list(ht.find(text, "templates/x.yaml", LocalRepo(FIXTURES)))
    check_spans(text.encode(), found)
