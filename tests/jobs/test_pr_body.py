"""What a pull request description says about evidence (issue 11 item 11): HTTP statuses only for
HTTP statuses, and never the operator's own endpoints."""

from __future__ import annotations

import httpx

from bot.jobs import pr_body
from bot.jobs.pr_state import PrState
from bot.model import Edit, Evidence, Finding, Fix, ImageRef, Part, Role, Source, Span, Status
from bot.registry import MemoryStore, Registry, RegistryConfig


def _finding(status: Status, evidence: Evidence) -> Finding:
    text = "bitnami/kubectl:1.31"
    part = Part(Role.IMAGE, text, Span(10, 10 + len(text), 3, 12))
    ref = ImageRef("k8s/job.yaml", 3, 12, Source.KUBERNETES, text, (part,), "docker.io/bitnami/kubectl:1.31")
    edit = Edit("k8s/job.yaml", part.span, text, "alpine/kubectl:1.31.4")
    fix = Fix("bitnami-kubectl", "Bitnami retired its images", text, "alpine/kubectl:1.31.4",
              "docker.io/alpine/kubectl:1.31.4", "sha256:" + "a" * 64, edits=(edit,))  # fmt: skip
    return Finding(ref, status, evidence, "bitnami-kubectl", fix)


def _body(f: Finding) -> str:
    return pr_body.body([f], [], {"bitnami-kubectl": "Bitnami retired its images"}, PrState())


def test_internal_codes_are_not_printed_as_http_statuses():
    ev = Evidence(error_code="CONNECT", checked_at="2026-12-07T00:00:00Z", detail="cannot reach the registry")
    text = _body(_finding(Status.UNREACHABLE, ev))
    assert "HTTP CONNECT" not in text and "(HTTP" not in text
    assert "unreachable (no connection)" in text


def test_registry_answers_keep_their_http_status_and_code():
    ev = Evidence(http_status=404, error_code="MANIFEST_UNKNOWN", checked_at="2026-12-07T00:00:00Z")
    assert "the tag does not exist (HTTP 404, MANIFEST_UNKNOWN)" in _body(_finding(Status.TAG_MISSING, ev))


def test_a_down_mirror_is_not_named_in_what_people_read():
    """The operator's mirror endpoint (docker.io -> harbor.internal) is down: the evidence says
    the registry could not be reached, not where the operator's mirror lives."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    config = RegistryConfig.from_mapping(
        {"registries": {"docker.io": {"endpoint": "http://harbor.internal:5000"}}}
    )
    with Registry(config, store=MemoryStore(), transport=httpx.MockTransport(refuse)) as reg:
        res = reg.check("bitnami/kubectl:1.31")
    assert res.status is Status.UNREACHABLE
    text = _body(_finding(res.status, res.evidence))
    assert "harbor.internal" not in text
    assert "harbor.internal" not in (res.evidence.detail or "")
