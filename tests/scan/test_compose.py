"""Compose finder: services, x- extensions and anchors, interpolation defaults, builds."""

from __future__ import annotations

import pytest

from bot.edit import apply, plan
from bot.model import ImageRef
from bot.scan import LocalRepo, claimant
from bot.scan import compose as cf
from tests.support.spans import FIXTURES, check_spans, parts, scan_data, scan_fixture


def refs_of(text: str, path: str = "compose.yaml") -> list[ImageRef]:
    found = list(cf.find(text, path, LocalRepo(FIXTURES)))
    check_spans(text.encode(), found)
    res = scan_data(path, text.encode(), cf)
    assert res.errors == [] and res.refs == found
    return found


def row(r: ImageRef) -> tuple[int, int, str, str | None, str | None]:
    return (r.line, r.column, r.text, r.reference, None if r.skip is None else str(r.skip))


def test_fixture_services_extensions_and_defaults() -> None:
    _data, res = scan_fixture("compose/docker-compose.yml")
    got = [(*row(r), r.context.kind, r.context.name, r.context.notes) for r in res.refs]
    assert got == [
        (7, 11, "ghcr.io/acme/shop-worker:2.3.1", "ghcr.io/acme/shop-worker:2.3.1", None,
         "extension", "x-worker", ("used by worker-a, worker-b",)),
        (11, 29, "redis:7.2-alpine", "docker.io/library/redis:7.2-alpine", None,
         "service", "cache", ("used by cache, cache-replica",)),
        (15, 12, "nginx:1.27-alpine", "docker.io/library/nginx:1.27-alpine", None,
         "service", "web", ("default of ${WEB_IMAGE:-nginx:1.27-alpine}",)),
        (22, 30, "python:3.12-slim", "docker.io/library/python:3.12-slim", None,
         "service", "api", ()),
        (23, 12, "registry.example.com/shop/api:1.4.2", None, "built-locally",
         "service", "api", (cf.BUILT_LOCALLY, "default of registry.example.com/shop/api:${API_TAG-1.4.2}")),
        (26, 12, "postgres:16.3", "docker.io/library/postgres:16.3", None, "service", "db", ()),
        (29, 12, "$MIGRATE_IMAGE", None, "variable-without-default", "service", "migrate", ()),
        (43, 13, "${NOT_A_VAR}/app:1", None, "invalid-reference", "service", "cost",
         ("default of $${NOT_A_VAR}/app:1",)),
    ]  # fmt: skip
    by_name = {r.context.name: r for r in res.refs}
    assert parts(by_name["x-worker"]) == [("image", "ghcr.io/acme/shop-worker:2.3.1", 7, 11)]
    assert by_name["x-worker"].parts[0].quote == '"'
    # The anchored scalar's span starts after `&cache-image `, not at the anchor.
    assert parts(by_name["cache"]) == [("image", "redis:7.2-alpine", 11, 29)]
    # ${VAR:-default}: the ref sits at the value, its part at the default.
    assert parts(by_name["web"]) == [("image", "nginx:1.27-alpine", 15, 25)]
    api = [r for r in res.refs if r.context.name == "api"]
    assert parts(api[1]) == [
        ("repository", "registry.example.com/shop/api", 23, 12),
        ("tag", "1.4.2", 23, 52),
    ]
    assert [r.context.needs_shell for r in api] == [None, True]
    assert by_name["db"].context.needs_shell is True  # docker-entrypoint.sh is a shell script
    assert by_name["web"].context.needs_shell is None
    # frontend-dev (build only) has no reference at all.
    assert "frontend-dev" not in by_name


def test_hostile_values_are_skipped_with_reasons() -> None:
    data, res = scan_fixture("compose/compose.override.yaml")
    got = [(row(r), r.detail) for r in res.refs]
    assert got == [
        ((3, 13, "nginx:1.27.0", "docker.io/library/nginx:1.27.0", None), None),
        ((5, 13, "nginx:latest\nFROM evil", None, "invalid-reference"), "invalid reference format"),
        ((7, 12, "1.10", None, "non-string-value"), "float value, not a string"),
    ]
    broken = res.refs[1].parts[0]
    assert not broken.raw and data[broken.span.start : broken.span.end] == b"nginx:latest\\nFROM evil"


def test_default_is_what_a_fix_edits() -> None:
    text = "services:\n  web:\n    image: ${WEB_IMAGE:-nginx:1.26}\n"
    (ref,) = refs_of(text)
    edits = plan(ref, "docker.io/library/nginx:1.27")
    assert apply(text.encode(), edits) == b"services:\n  web:\n    image: ${WEB_IMAGE:-nginx:1.27}\n"


def test_interpolation_forms() -> None:
    text = (
        "services:\n"
        "  a:\n    image: ${A-redis:7}\n"
        '  b:\n    image: "${REG:-ghcr.io}/acme/b:${B_TAG:-2.0}"\n'
        "  c:\n    image: ${C:?set C}\n"
        "  d:\n    image: ${D:-${E:-busybox:1.36}}\n"
        "  e:\n    image: postgres:${PG:-16}-alpine\n"
    )
    got = [(row(r), parts(r)) for r in refs_of(text)]
    assert got == [
        ((3, 12, "redis:7", "docker.io/library/redis:7", None), [("image", "redis:7", 3, 16)]),
        ((5, 13, "ghcr.io/acme/b:2.0", "ghcr.io/acme/b:2.0", None),
         [("registry", "ghcr.io", 5, 20), ("repository", "acme/b", 5, 29), ("tag", "2.0", 5, 45)]),
        ((7, 12, "${C:?set C}", None, "variable-without-default"), [("image", "${C:?set C}", 7, 12)]),
        ((9, 12, "busybox:1.36", "docker.io/library/busybox:1.36", None), [("image", "busybox:1.36", 9, 22)]),
        ((11, 12, "postgres:16-alpine", "docker.io/library/postgres:16-alpine", None),
         [("image", "postgres:16-alpine", 11, 12)]),
    ]  # fmt: skip
    assert not refs_of(text)[-1].parts[0].raw  # a tag pieced from a default and text: no edit


def test_version_one_layout_and_crlf_bom() -> None:
    data = "\ufeff# service d'accès — v1\r\nweb:\r\n  image: nginx:1.27\r\nversion: '2'\r\n".encode()
    res = scan_data("docker-compose.yml", data, None)
    assert res.errors == []
    assert [(row(r), parts(r)) for r in res.refs] == [
        ((3, 10, "nginx:1.27", "docker.io/library/nginx:1.27", None), [("image", "nginx:1.27", 3, 10)])
    ]
    s = res.refs[0].parts[0].span
    assert data[s.start : s.end] == b"nginx:1.27"


def test_malformed_yaml_is_an_error() -> None:
    res = scan_data("docker-compose.yml", b"services:\n  web:\n    image: [nginx\n", None)
    assert res.refs == [] and len(res.errors) == 1 and "invalid YAML" in res.errors[0].message


def test_duplicate_key_keeps_the_last_value_with_a_warning() -> None:
    """Issue 14 §1: compose (Go YAML) keeps the last value; the file is read, not dropped."""
    text = "services:\n  web:\n    image: a:1\n    image: b:1\n  db:\n    image: postgres:16\n"
    res = scan_data("docker-compose.yml", text.encode(), None)
    assert [r.text for r in res.refs] == ["b:1", "postgres:16"]
    (warning,) = res.errors
    assert warning.level == "warning"
    assert "duplicate key 'image' at line 3 (again at line 4)" in warning.message


def test_billion_laughs_under_an_extension_is_visited_once() -> None:
    lines = ["x-a0: &a0 [nginx:1.27]"]
    lines += [f"x-a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    text = "\n".join(lines) + "\nservices:\n  web:\n    image: redis:7\n"
    assert [r.text for r in refs_of(text)] == ["redis:7"]


@pytest.mark.parametrize(
    ("path", "head", "claimed"),
    [
        ("docker-compose.yml", b"", True),
        ("deploy/docker-compose.prod.yaml", b"", True),
        ("compose.yaml", b"", True),
        ("stack/app.yml", b"services:\n  web:\n    image: nginx\n", True),
        ("stack/app.yml", b"version: '3'\nservices: # all\n  web:\n    build: .\n", True),
        ("k8s/svc.yaml", b"apiVersion: v1\nkind: List\nservices:\n  image: x\n", False),
        ("chart/values.yaml", b"services:\n  web:\n    image: nginx\n", False),
        ("notes/services.yml", b"services:\n  - name: a\n", False),
        ("docker-compose.json", b"", False),
    ],
)
def test_claims(path: str, head: bytes, claimed: bool) -> None:
    assert cf.claims(path, head) is claimed
    if claimed:
        assert claimant(path, head) is cf
