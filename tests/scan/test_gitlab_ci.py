"""GitLab CI finder: image/services in every form, variables traced, the dependency proxy."""

from __future__ import annotations

import pytest

from bot.edit import apply, plan
from bot.model import ImageRef
from bot.scan import LocalRepo, claimant
from bot.scan import gitlab_ci as gl
from tests.support.spans import FIXTURES, check_spans, parts, scan_data, scan_fixture


def row(r: ImageRef) -> tuple[int, int, str, str | None, str | None]:
    return (r.line, r.column, r.text, r.reference, None if r.skip is None else str(r.skip))


def refs_of(text: str, path: str = ".gitlab-ci.yml") -> list[ImageRef]:
    found = list(gl.find(text, path, LocalRepo(FIXTURES)))
    check_spans(text.encode(), found)
    res = scan_data(path, text.encode(), gl)
    assert res.errors == [] and res.refs == found
    return found


def test_fixture_pipeline() -> None:
    _data, res = scan_fixture("gitlab_ci/.gitlab-ci.yml")
    got = [(*row(r), r.context.kind, r.context.name, r.context.container, r.context.field) for r in res.refs]
    assert got == [
        (12, 8, "ruby:3.3", "docker.io/library/ruby:3.3", None, "default", None, None, "image"),
        (16, 7, "postgres:16", "docker.io/library/postgres:16", None,
         "default", None, None, "default.services[0]"),
        (20, 11, "registry.example.com/ci/tools:2.1.0", "registry.example.com/ci/tools:2.1.0", None,
         "job", ".tools", None, ".tools.image.name"),
        (30, 52, "node:20.15", "docker.io/library/node:20.15", None, "job", "test", None, "test.image"),
        (32, 13, "docker:27.1-dind", "docker.io/library/docker:27.1-dind", None,
         "job", "test", "docker", "test.services[0].name"),
        (34, 13, "redis:7.2", "docker.io/library/redis:7.2", None,
         "job", "test", "cache", "test.services[1].name"),
        (36, 7, "$CI_REGISTRY_IMAGE/fixtures:latest", None, "variable-without-default",
         "job", "test", None, "test.services[2]"),
        (42, 21, "", None, "non-string-value", "job", "reuse", None, "reuse.image"),
    ]  # fmt: skip
    by_field = {r.context.field: r for r in res.refs}
    # Variables: the parts are the variables' values, where a fix edits them.
    assert parts(by_field["default.services[0]"]) == [("repository", "postgres", 16, 7), ("tag", "16", 5, 16)]
    assert parts(by_field[".tools.image.name"]) == [
        ("repository", "registry.example.com/ci/tools", 6, 16),
        ("tag", "2.1.0", 7, 27),
    ]
    # The dependency proxy prefix is not part of the reference.
    assert parts(by_field["test.image"]) == [("image", "node:20.15", 30, 52)]
    assert gl.PROXY_NOTE in by_field["test.image"].context.notes
    # `docker:${DOCKER_VERSION}-dind`: a tag pieced from a variable and text, not editable.
    assert not by_field["test.services[0].name"].parts[0].raw
    assert by_field["test.image"].context.needs_shell is True
    assert by_field["test.services[1].name"].context.needs_shell is None


def test_included_file_is_claimed_by_its_path() -> None:
    _data, res = scan_fixture("gitlab_ci/.gitlab/ci/build.yml")
    assert [(row(r), parts(r)) for r in res.refs] == [
        ((3, 10, "docker:27.1", "docker.io/library/docker:27.1", None), [("image", "docker:27.1", 3, 10)]),
        ((4, 14, "docker:27.1-dind", "docker.io/library/docker:27.1-dind", None),
         [("image", "docker:27.1-dind", 4, 14)]),
    ]  # fmt: skip


def test_variable_value_is_what_a_fix_edits() -> None:
    text = "variables:\n  BASE: 'python:3.11-slim'\nbuild:\n  image: $BASE\n  script: [make]\n"
    (ref,) = refs_of(text)
    assert row(ref) == (4, 10, "python:3.11-slim", "docker.io/library/python:3.11-slim", None)
    assert parts(ref) == [("image", "python:3.11-slim", 2, 10)]
    edits = plan(ref, "docker.io/library/python:3.12-slim")
    assert apply(text.encode(), edits) == text.replace("3.11", "3.12").encode()


def test_job_variables_win_and_value_maps_and_expand_false() -> None:
    text = (
        "variables:\n"
        "  TAG: '1.0'\n"
        "  RAW: {value: '$NOT_EXPANDED', expand: false}\n"
        "  DESCRIBED: {value: 'alpine:3.20', description: base image}\n"
        "a:\n"
        "  variables: {TAG: '2.0'}\n"
        "  image: acme/a:$TAG\n"
        "  services: [$DESCRIBED, $RAW, '$$literal']\n"
        "  script: [x]\n"
        "b:\n"
        "  image: ${LOOP}\n"
        "  variables: {LOOP: $LOOP}\n"
        "  script: [x]\n"
    )
    got = [(row(r), parts(r)) for r in refs_of(text)]
    assert got == [
        ((7, 10, "acme/a:2.0", "docker.io/acme/a:2.0", None),
         [("repository", "acme/a", 7, 10), ("tag", "2.0", 6, 21)]),
        ((8, 14, "alpine:3.20", "docker.io/library/alpine:3.20", None), [("image", "alpine:3.20", 4, 23)]),
        ((8, 26, "$RAW", None, "variable-without-default"), [("image", "$RAW", 8, 26)]),
        ((8, 33, "$literal", None, "invalid-reference"), [("image", "$literal", 8, 33)]),
        ((11, 10, "${LOOP}", None, "templated"), [("image", "${LOOP}", 11, 10)]),
    ]  # fmt: skip


def test_bom_crlf_and_non_ascii() -> None:
    data = "\ufeff# Pipeline — générée\r\nimage: alpine:3.20\r\nt:\r\n  script: [x]\r\n".encode()
    res = scan_data(".gitlab-ci.yml", data, None)
    assert res.errors == []
    assert [(row(r), parts(r)) for r in res.refs] == [
        ((2, 8, "alpine:3.20", "docker.io/library/alpine:3.20", None), [("image", "alpine:3.20", 2, 8)])
    ]


def test_malformed_yaml_is_an_error() -> None:
    res = scan_data(".gitlab-ci.yml", b"image: [alpine\n", None)
    assert res.refs == [] and len(res.errors) == 1 and "invalid YAML" in res.errors[0].message


def test_duplicate_key_keeps_the_last_value_with_a_warning() -> None:
    res = scan_data(".gitlab-ci.yml", b"job:\n  image: a:1\n  image: b:1\n  script: [x]\n", None)
    assert [r.text for r in res.refs] == ["b:1"]
    (warning,) = res.errors
    assert warning.level == "warning" and "duplicate key 'image' at line 2" in warning.message


@pytest.mark.parametrize(
    ("path", "head", "claimed"),
    [
        (".gitlab-ci.yml", b"", True),
        ("ci/deploy.gitlab-ci.yml", b"", True),
        (".gitlab/ci/test.yml", b"", True),
        (".gitlab/ci/jobs/lint.yaml", b"", True),
        ("ci/jobs.yml", b"stages: [test]\ntest:\n  script: [make]\n", True),
        ("ci/jobs.yml", b"name: x\nsteps:\n  - script: y\n", False),
        (".gitlab-ci.yml.bak", b"", False),
    ],
)
def test_claims(path: str, head: bytes, claimed: bool) -> None:
    assert gl.claims(path, head) is claimed
    if claimed:
        assert claimant(path, head) is gl
