"""Issue 14 §3: Jsonnet image strings, and images concatenated from versions kept in an
imported JSON file (kube-prometheus' ``versions.json``), the tag's part pointing into the JSON."""

from __future__ import annotations

import dataclasses

from bot.model import Skip, Source
from bot.scan import LocalRepo, claimant, jsonnet, scan_file
from tests.support.spans import FIXTURES, check_spans

MAIN = "jsonnet/kube-prometheus/main.libsonnet"
VERSIONS = "jsonnet/kube-prometheus/versions.json"


def _scan() -> list:  # type: ignore[type-arg]
    data = (FIXTURES / MAIN).read_bytes()
    res = scan_file(MAIN, data, LocalRepo(FIXTURES), jsonnet)
    assert res.errors == []
    json_data = (FIXTURES / VERSIONS).read_bytes()
    for r in res.refs:
        for p in r.parts:  # each part checked against the file it is written in
            check_spans(json_data if p.path == VERSIONS else data, [dataclasses.replace(r, parts=(p,))])
    return res.refs


def test_literal_and_concatenated_images() -> None:
    refs = _scan()
    assert [(r.line, r.reference, r.skip) for r in refs] == [
        (13, "quay.io/prometheus/alertmanager:v0.27.0", None),
        (14, "quay.io/prometheus/blackbox-exporter:v0.25.0", None),
        (15, "docker.io/grafana/grafana:11.2.0", None),
        (16, "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0", None),
        (17, "quay.io/brancz/kube-rbac-proxy:v0.18.1", None),
        (18, None, Skip.TEMPLATED),
        (19, "quay.io/prometheus/node-exporter:v1.8.2", None),
        (23, "registry.k8s.io/prometheus-adapter/prometheus-adapter:v0.12.0", None),
    ]  # the commented-out image, the ||| text block and the URL are not references
    assert all(r.source is Source.JSONNET for r in refs)


def test_the_tag_part_is_the_json_value() -> None:
    alertmanager = _scan()[0]
    repo, tag = alertmanager.parts
    assert (repo.text, repo.path) == ("quay.io/prometheus/alertmanager", None)
    assert (tag.text, tag.path, tag.span.line) == ("0.27.0", VERSIONS, 2)
    assert "fixed tag prefix written apart: v" in alertmanager.context.notes


def test_unresolvable_version_is_skipped_with_the_expression() -> None:
    skipped = _scan()[5]
    assert skipped.text.startswith("ghcr.io/jimmidyson/configmap-reload:v")
    assert "std.extVar" in (skipped.detail or "")


def test_claims() -> None:
    assert claimant("jsonnet/main.libsonnet", b"{}") is jsonnet
    assert claimant("example.jsonnet", b"{}") is jsonnet
    assert claimant("versions.json", b"{}") is None
