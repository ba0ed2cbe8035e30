"""Jinja templates: literal image and FROM lines with exact spans, comments blanked, templated
lines skipped, and role templates resolved from the role's variables."""

from __future__ import annotations

import json

from bot.model import ImageRef, Role, Skip, Source
from bot.scan import LocalRepo, ansible, claimant, jinja, scan_file
from tests.edit.helpers import DictRepo, Spec, make
from tests.edit.test_golden import FIXTURES as EDIT
from tests.edit.test_golden import tree
from tests.scan.test_ansible import check_spans
from tests.support.spans import FIXTURES, parts, scan_fixture


def row(r: ImageRef) -> tuple[int, int, str, str | None, Skip | None]:
    return (r.line, r.column, r.text, r.reference, r.skip)


def test_manifest_template() -> None:
    _data, res = scan_fixture("jinja/k8s/deployment.yaml.j2")
    assert all(r.source is Source.JINJA for r in res.refs)
    assert [(*row(r), r.context.container) for r in res.refs] == [
        # line 3 is inside a {# #} comment; line 14 follows multi-byte characters in comments
        (14, 19, "busybox:1.36.1", "docker.io/library/busybox:1.36.1", None, "wait"),
        (17, 19, "{{ app_image | default('nginx:1.27') }}", None, Skip.TEMPLATED, "app"),
        (19, 18, "bitnami/kubectl:1.31", "docker.io/bitnami/kubectl:1.31", None, "kubectl"),  # {# #} left out
        (22, 18, "quay.io/prometheus/node-exporter:v1.8.0", "quay.io/prometheus/node-exporter:v1.8.0", None,
         "metrics"),
    ]  # fmt: skip
    assert [p.quote for r in res.refs for p in r.parts] == ['"', '"', "", ""]
    assert res.refs[1].detail == "templated value \"{{ app_image | default('nginx:1.27') }}\""


def test_dockerfile_template_from_lines() -> None:
    _data, res = scan_fixture("jinja/docker/Dockerfile.j2")
    assert [row(r) for r in res.refs] == [
        (3, 6, "{{ base_registry }}/python:3.12", None, Skip.TEMPLATED),
        (
            5,
            29,
            "gcr.io/distroless/python3-debian12:nonroot",
            "gcr.io/distroless/python3-debian12:nonroot",
            None,
        ),
    ]
    assert parts(res.refs[1]) == [("image", "gcr.io/distroless/python3-debian12:nonroot", 5, 29)]


def test_from_lines_only_in_dockerfile_templates() -> None:
    _data, res = scan_fixture("jinja/sql/report.sql.j2")
    assert res.refs == []
    sniffed = scan_file("build/base.j2", b"{# base #}\nARG V=1\nFROM alpine:3.20\n", LocalRepo(FIXTURES))
    assert [row(r) for r in sniffed.refs] == [(3, 6, "alpine:3.20", "docker.io/library/alpine:3.20", None)]
    named = scan_file("x/app.Containerfile.jinja2", b"# c\nFROM alpine:3.20\n", LocalRepo(FIXTURES))
    assert [r.reference for r in named.refs] == ["docker.io/library/alpine:3.20"]


def test_bom_and_crlf() -> None:
    data = "\ufeff{# é #}\r\nservices:\r\n  web:\r\n    image: nginx:1.27.3 {# ✓ #}\r\n".encode()
    res = scan_file("compose.yml.j2", data, LocalRepo(FIXTURES))
    (r,) = res.refs
    assert (row(r), r.parts[0].span.start) == (
        (4, 12, "nginx:1.27.3", "docker.io/library/nginx:1.27.3", None),
        43,
    )
    assert data[43:55] == b"nginx:1.27.3"


def test_claims_every_jinja_suffix_before_the_yaml_finders() -> None:
    for path in (
        "t/deploy.yaml.j2",
        "t/deploy.yml.j2",
        "Dockerfile.j2",
        "a/b.jinja2",
        "c.jinja",
        "templates/x.j2",
    ):
        assert claimant(path, b"apiVersion: v1\nkind: Pod\n") is jinja, path
    assert claimant("t/deploy.yaml", b"apiVersion: v1\nkind: Pod\n") is not jinja
    assert claimant("roles/app/templates/x.yaml", b"image: {{ x }}\n") is not jinja


def test_role_template_resolves_role_variables() -> None:
    rel = "ansible/roles/app/templates/compose.yml.j2"
    data = (FIXTURES / rel).read_bytes()
    res = scan_file(rel, data, LocalRepo(FIXTURES))
    assert res.errors == []
    check_spans(FIXTURES, rel, res.refs)
    assert [row(r) for r in res.refs] == [
        (4, 13, "ghcr.io/acme/app:3.2.1", "ghcr.io/acme/app:3.2.1", None),
        (8, 12, "traefik:v3.1.6", "docker.io/library/traefik:v3.1.6", None),
        (10, 13, "postgres:16.4", "docker.io/library/postgres:16.4", None),
        (14, 12, "{{ svc.image }}", None, Skip.TEMPLATED),
    ]
    defaults = "ansible/roles/app/defaults/main.yml"
    assert [(p.role, p.text, p.path, p.span.line) for p in res.refs[0].parts] == [
        ("repository", "ghcr.io/acme/app", defaults, 3),
        ("tag", "3.2.1", defaults, 4),
    ]
    assert (
        res.refs[3].detail
        == "templated value '{{ svc.image }}': its variables are assigned inside the template"
    )


def test_finders_give_the_parts_of_the_hand_made_edit_goldens() -> None:
    """tests/fixtures/edit/{jinja,ansible} were built by hand before these finders read them:
    the finders must report exactly those parts, so the engine's goldens hold for real scans."""
    for case, finder in (("jinja", jinja), ("ansible", ansible)):
        meta = json.loads((EDIT / case / "case.json").read_text())
        files = tree(EDIT / case, "before", meta)
        found = [r for path in files for r in scan_file(path, files[path], DictRepo(files), finder).refs]
        for hand in meta["refs"]:
            specs = [Spec(Role(p["role"]), p["find"][0], path=p.get("path")) for p in hand["parts"]]
            want = make(files, hand["path"], Source(hand["source"]), specs)
            got = [r for r in found if r.path == want.path and r.reference == want.reference]
            assert [r.parts for r in got] == [want.parts], (case, want.text)
