"""GitHub Actions finder: job containers, services, docker:// steps, docker actions."""

from __future__ import annotations

import pytest

from bot.model import ImageRef, Skip
from bot.scan import LocalRepo, claimant
from bot.scan import github_actions as gha
from tests.support.spans import FIXTURES, check_spans, parts, scan_data, scan_fixture

DIGEST = "sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31"


def row(r: ImageRef) -> tuple[int, int, str, str | None, str | None]:
    return (r.line, r.column, r.text, r.reference, None if r.skip is None else str(r.skip))


def test_workflow_fixture() -> None:
    _data, res = scan_fixture("github_actions/.github/workflows/ci.yml")
    got = [(*row(r), r.context.name, r.context.container, r.context.field) for r in res.refs]
    assert got == [
        (11, 14, "node:20.15-bookworm", "docker.io/library/node:20.15-bookworm", None,
         "test", None, "jobs.test.container.image"),
        (15, 16, "postgres:16", "docker.io/library/postgres:16", None,
         "test", "postgres", "jobs.test.services.postgres.image"),
        (18, 14, "redis:7.2", "docker.io/library/redis:7.2", None,
         "test", "redis", "jobs.test.services.redis"),
        (23, 24, "hadolint/hadolint:v2.12.0", "docker.io/hadolint/hadolint:v2.12.0", None,
         "test", "Lint Dockerfiles", "jobs.test.steps[2].uses"),
        # The matrix values are what the templated container pulls: found where written.
        (30, 18, "alpine:3.19", "docker.io/library/alpine:3.19", None,
         "matrix", None, "jobs.matrix.strategy.matrix.image[0]"),
        (30, 33, "alpine:3.20", "docker.io/library/alpine:3.20", None,
         "matrix", None, "jobs.matrix.strategy.matrix.image[1]"),
        (31, 16, "${{ matrix.image }}", None, "templated", "matrix", None, "jobs.matrix.container"),
        (33, 25, f"ghcr.io/acme/checker@{DIGEST}", f"ghcr.io/acme/checker@{DIGEST}", None,
         "matrix", None, "jobs.matrix.steps[0].uses"),
    ]  # fmt: skip
    # docker:// is not part of the span: a fix writes only the reference.
    assert parts(res.refs[3]) == [("image", "hadolint/hadolint:v2.12.0", 23, 24)]
    assert parts(res.refs[7]) == [("image", f"ghcr.io/acme/checker@{DIGEST}", 33, 25)]
    assert res.refs[7].parts[0].quote == '"'
    # The job container runs `run:` steps through a shell; services run their own entrypoint.
    assert [r.context.needs_shell for r in res.refs[:3]] == [True, None, None]


def test_docker_action_and_dockerfile_action() -> None:
    _data, res = scan_fixture("github_actions/actions/lint/action.yml")
    assert [(row(r), r.context.kind, r.context.field, parts(r)) for r in res.refs] == [
        ((5, 19, "ghcr.io/acme/linter:1.8.0", "ghcr.io/acme/linter:1.8.0", None), "action", "runs.image",
         [("image", "ghcr.io/acme/linter:1.8.0", 5, 19)]),
    ]  # fmt: skip
    _data, res = scan_fixture("github_actions/action.yaml")
    assert res.refs == []  # `image: Dockerfile` is built on the runner, not pulled


def test_composite_action_steps_crlf_and_bom() -> None:
    text = (
        "\ufeff# Composite action — vérifie le dépôt\r\n"
        "runs:\r\n"
        "  using: composite\r\n"
        "  steps:\r\n"
        "    - uses: docker://alpine:3.20\r\n"
        "      with: {args: echo hi}\r\n"
    )
    data = text.encode()
    res = scan_data("tools/action.yml", data, None)
    assert res.errors == []
    assert [(row(r), r.context.field, parts(r)) for r in res.refs] == [
        ((5, 22, "alpine:3.20", "docker.io/library/alpine:3.20", None), "runs.steps[0].uses",
         [("image", "alpine:3.20", 5, 22)]),
    ]  # fmt: skip
    s = res.refs[0].parts[0].span
    assert data[s.start : s.end] == b"alpine:3.20"


def test_non_strings_expressions_and_anchors() -> None:
    text = (
        "on: push\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-latest\n"
        "    container: &img python:3.12-slim\n"
        "    services:\n"
        "      cache: {image: 'redis:${{ inputs.redis }}'}\n"
        "      weird: {image: [x]}\n"
        "  b:\n"
        "    runs-on: ubuntu-latest\n"
        "    container: *img\n"
        "    steps:\n"
        "      - uses: docker://nginx:latest\\nFROM evil\n"
    )
    found = list(gha.find(text, ".github/workflows/x.yml", LocalRepo(FIXTURES)))
    check_spans(text.encode(), found)
    assert [(row(r), r.detail) for r in found] == [
        ((5, 21, "python:3.12-slim", "docker.io/library/python:3.12-slim", None), None),
        ((7, 23, "redis:${{ inputs.redis }}", None, "templated"),
         "templated value 'redis:${{ inputs.redis }}'"),
        ((8, 22, "", None, "non-string-value"), "a collection, not a string"),
        ((13, 24, "nginx:latest\\nFROM evil", None, "invalid-reference"), "invalid reference format"),
    ]  # fmt: skip


def test_malformed_yaml_is_an_error() -> None:
    res = scan_data(".github/workflows/bad.yml", b"jobs:\n  a:\n    container: [\n", None)
    assert res.refs == [] and len(res.errors) == 1 and "invalid YAML" in res.errors[0].message


@pytest.mark.parametrize(
    ("path", "head", "claimed"),
    [
        (".github/workflows/ci.yml", b"", True),
        (".gitea/workflows/ci.yaml", b"", True),
        ("sub/.github/actions/setup/action.yml", b"", True),
        ("action.yaml", b"", True),
        ("templates/reusable.yml", b"on: workflow_call\njobs:\n  a:\n    runs-on: ubuntu-latest\n", True),
        (".github/workflows/README.md", b"", False),
        (".github/dependabot.yml", b"version: 2\n", False),
    ],
)
def test_claims(path: str, head: bytes, claimed: bool) -> None:
    assert gha.claims(path, head) is claimed
    if claimed:
        assert claimant(path, head) is gha


def test_with_image_inputs() -> None:
    _data, res = scan_fixture("github_actions/.github/workflows/release.yml")
    qemu, run = res.refs
    digest = "sha256:66e11bea77a5ea9d6f0fe79b57cd2b189b5d15b93a2bdb925be22949232e4e55"
    assert (row(qemu), parts(qemu)) == (
        (13, 18, f"tonistiigi/binfmt@{digest}", f"docker.io/tonistiigi/binfmt@{digest}", None),
        [("image", f"tonistiigi/binfmt@{digest}", 13, 18)],
    )
    assert (qemu.context.container, qemu.context.field, qemu.context.notes) == (
        "Set up QEMU",
        "jobs.images.steps[1].with.image",
        ("input of docker/setup-qemu-action@v3",),
    )
    assert (run.line, run.skip) == (22, Skip.TEMPLATED)
    # `driver-opts: image=moby/buildkit:v0.17.2` is not an `image` input: not read.


def test_with_image_that_names_a_build_is_not_a_reference() -> None:
    text = (
        "on: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: redhat-actions/buildah-build@v2\n        with:\n          image: my-app\n"
        "      - uses: addnab/docker-run-action@v3\n        with:\n          image: alpine:3.20\n"
    )
    res = scan_data(".github/workflows/b.yml", text.encode(), gha)
    assert [(r.line, r.column, r.text) for r in res.refs] == [(11, 18, "alpine:3.20")]
