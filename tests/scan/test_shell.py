"""Issue 14 §3: docker/podman/crane/skopeo command lines in scripts, Makefiles, GitHub Actions
``run:`` steps and GitLab ``script:`` lines; only literal references, variables skipped."""

from __future__ import annotations

from bot.model import Skip, Source
from bot.scan import claimant, github_actions, gitlab_ci, shell
from tests.support.spans import FIXTURES, check_spans, scan_data


def _scan(rel: str, finder: object, path: str) -> object:
    res = scan_data(path, (FIXTURES / rel).read_bytes(), finder, all_raw=True)  # type: ignore[arg-type]
    assert res.errors == []
    return res


def _rows(res: object) -> list[tuple[int, str, Skip | None]]:
    return [(r.line, r.text, r.skip) for r in res.refs]  # type: ignore[attr-defined]


def test_script_commands_and_their_operands() -> None:
    text = (
        "#!/bin/sh\n"
        "sudo docker pull 'alpine:3.20' && podman create --pod p quay.io/x/y:1\n"
        "docker container run -d --network host -p 80:80 redis:7 redis-server\n"
        "docker --context prod run --rm nginx  # no tag: latest, still a reference\n"
        "crane copy gcr.io/a/b:1 ghcr.io/me/b:1\n"
        "docker build -t me/app:1 . ; echo docker run x:1\n"
        "docker run ${IMAGE}:${TAG}\n"
    )
    data = text.encode()
    refs = list(shell.find(text, "x.sh"))
    check_spans(data, refs, all_raw=True)
    assert [(r.line, r.text, r.skip) for r in refs] == [
        (2, "alpine:3.20", None),
        (2, "quay.io/x/y:1", None),
        (3, "redis:7", None),
        (4, "nginx", None),
        (5, "gcr.io/a/b:1", None),  # the copy's destination is pushed, not pulled
        (7, "${IMAGE}:${TAG}", Skip.VARIABLE),
    ]
    assert refs[0].parts[0].quote == "'" and all(r.source is Source.SHELL for r in refs)
    assert refs[2].context.notes == ("pulled by docker run",)


def test_makefile_recipes() -> None:
    res = _scan("shell/Makefile", shell, "Makefile")
    assert _rows(res) == [
        (7, "golang:1.23", None),
        (8, "$(IMAGE):$(VERSION)", Skip.VARIABLE),
        (11, "golangci/golangci-lint:v1.61.0", None),
    ]
    assert "make variable" in (res.refs[1].detail or "")  # type: ignore[attr-defined]


def test_github_actions_run_steps() -> None:
    res = _scan("shell/ci.yml", github_actions, ".github/workflows/ci.yml")
    assert _rows(res) == [
        (9, "postgres:16.4", None),
        (15, "postgres:16.4", None),
        (16, "registry.k8s.io/pause:3.10", None),
        (17, "${{ matrix.image }}", Skip.TEMPLATED),
    ]
    assert res.refs[1].context.field == "jobs.smoke.steps[2].run"  # type: ignore[attr-defined]


def test_gitlab_script_lines() -> None:
    res = _scan("shell/gitlab-ci.yml", gitlab_ci, ".gitlab-ci.yml")
    assert _rows(res) == [
        (3, "busybox:1.36", None),
        (5, "docker:27.3", None),
        (6, "docker:27.3-dind", None),
        (8, "golang:1.23", None),
        (10, "gcr.io/distroless/static:nonroot", None),
        (11, "$CI_REGISTRY_IMAGE:latest", Skip.VARIABLE),
    ]


def test_claims() -> None:
    assert claimant("scripts/release.sh", b"#!/bin/sh\ndocker pull x:1\n") is shell
    assert claimant("Makefile", b"test:\n\tdocker run x:1\n") is shell
    assert claimant("tools/run", b"#!/usr/bin/env bash\npodman run x:1\n") is shell
    assert claimant("notes.txt", b"docker run x:1\n") is None
    assert claimant("scripts/build.sh", b"#!/bin/sh\nmake all\n") is None  # short, names no tool
