"""Dockerfile / Containerfile finder: directives, stages, ARG tracing, --from, heredocs, caps."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.edit import apply, plan
from bot.model import ImageRef, Skip
from bot.scan import LocalRepo, claimant, scan_file
from bot.scan import dockerfile as df
from tests.support.spans import FIXTURES, check_spans, parts, scan_data, scan_fixture

DIGEST = "sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31"


def refs_of(text: str, path: str = "Dockerfile") -> list[ImageRef]:
    """Through ``find`` and through the scan driver; both must agree, spans checked."""
    found = list(df.find(text, path, LocalRepo(FIXTURES)))
    data = text.encode()
    check_spans(data, found)
    res = scan_data(path, data, df)
    assert res.errors == []
    assert res.refs == found
    return found


def row(r: ImageRef) -> tuple[int, int, str, str | None, str | None]:
    return (r.line, r.column, r.text, r.reference, None if r.skip is None else str(r.skip))


def test_fixture_multi_stage() -> None:
    data, res = scan_fixture("dockerfile/Dockerfile")
    got = [(*row(r), r.context.kind, r.context.name, r.context.field) for r in res.refs]
    assert got == [
        (1, 10, "docker/dockerfile:1.7", "docker.io/docker/dockerfile:1.7", None,
         "directive", "syntax", "# syntax"),
        (10, 32, "golang:1.22.5-alpine", "docker.io/library/golang:1.22.5-alpine", None,
         "stage", "build", "FROM"),
        (13, 28, "ghcr.io/acme/protos:2024.06", "ghcr.io/acme/protos:2024.06", None,
         "stage", "build", "RUN --mount from"),
        (17, 6, "${REGISTRY}/acme/tools:${BUILD_TAG}", None, "variable-without-default",
         "stage", "tools", "FROM"),
        (19, 6, "debian:bookworm-slim", "docker.io/library/debian:bookworm-slim", None,
         "stage", "runtime", "FROM"),
        (20, 13, "docker.io/bitnami/kubectl:1.31", "docker.io/bitnami/kubectl:1.31", None,
         "stage", "runtime", "COPY --from"),
        (31, 21, "quay.io/acme/assets:3", "quay.io/acme/assets:3", None,
         "stage", "runtime", "COPY --from"),
    ]  # fmt: skip
    # Literal references span their bytes; tags pieced from an ARG and literal text cannot be
    # edited in one place, so that part is marked not raw and sits where the FROM uses it.
    assert parts(res.refs[0]) == [("image", "docker/dockerfile:1.7", 1, 10)]
    golang = res.refs[1]
    assert parts(golang) == [("image", "golang:1.22.5-alpine", 10, 32)]
    assert not golang.parts[0].raw
    span = golang.parts[0].span
    assert data[span.start : span.end] == b"golang:${GO_VERSION}-alpine"
    assert res.refs[3].detail == "$BUILD_TAG: no value or default in this file"
    assert data[res.refs[3].parts[0].span.start : res.refs[3].parts[0].span.end] == (
        b"${REGISTRY}/acme/tools:${BUILD_TAG}"
    )
    # Nothing from the heredoc body, the stage names, scratch, or --from=0.
    assert not any("evil" in r.text for r in res.refs)


def test_bom_crlf_and_non_ascii_comments_keep_byte_spans() -> None:
    data, res = scan_fixture("dockerfile/Containerfile")
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    assert [row(r) for r in res.refs] == [
        (3, 6, "alpine:3.20", "docker.io/library/alpine:3.20", None),
        (6, 5, "quay.io/prometheus/busybox:glibc", "quay.io/prometheus/busybox:glibc", None),
    ]
    alpine, busybox = res.refs
    assert parts(alpine) == [("image", "alpine:3.20", 2, 12)]  # the ARG default
    s = alpine.parts[0].span
    assert data[s.start : s.end] == b"alpine:3.20"
    assert s.start == data.index(b"alpine:3.20")  # BOM and the UTF-8 comment counted in bytes
    s = busybox.parts[0].span
    assert data[s.start : s.end] == b"quay.io/prometheus/busybox:glibc"
    assert busybox.context.name == "final" and "final stage" in busybox.context.notes


def test_arg_default_is_what_a_fix_edits() -> None:
    text = "ARG BASE=alpine:3.19\nFROM $BASE\nFROM ${BASE} AS again\n"
    first, second = refs_of(text)
    assert [row(first), row(second)] == [
        (2, 6, "alpine:3.19", "docker.io/library/alpine:3.19", None),
        (3, 6, "alpine:3.19", "docker.io/library/alpine:3.19", None),
    ]
    assert parts(first) == parts(second) == [("image", "alpine:3.19", 1, 10)]
    assert first.context.notes == ("expanded from $BASE",)
    edits = plan(first, "docker.io/library/alpine:3.20")
    assert apply(text.encode(), edits) == b"ARG BASE=alpine:3.20\nFROM $BASE\nFROM ${BASE} AS again\n"


def test_composite_reference_parts_point_at_each_arg() -> None:
    text = f'ARG REG=ghcr.io\nARG TAG="1.4"\nARG PIN={DIGEST}\nFROM ${{REG}}/acme/app:${{TAG}}@${{PIN}}\n'
    (ref,) = refs_of(text)
    assert row(ref) == (4, 6, f"ghcr.io/acme/app:1.4@{DIGEST}", f"ghcr.io/acme/app:1.4@{DIGEST}", None)
    assert parts(ref) == [
        ("registry", "ghcr.io", 1, 9),
        ("repository", "acme/app", 4, 13),
        ("tag", "1.4", 2, 10),
        ("digest", DIGEST, 3, 9),
    ]
    assert ref.parts[2].quote == '"'


def test_name_and_tag_from_different_args() -> None:
    text = "ARG IMAGE=registry.example.com/team/app\nARG VERSION=2.0\nFROM $IMAGE:$VERSION\n"
    (ref,) = refs_of(text)
    assert ref.reference == "registry.example.com/team/app:2.0"
    assert parts(ref) == [("repository", "registry.example.com/team/app", 1, 11), ("tag", "2.0", 2, 13)]


def test_arg_defaults_through_other_args_and_posix_forms() -> None:
    text = (
        "ARG V=3.20\n"
        "ARG IMG=alpine:${V}\n"
        "ARG EMPTY=\n"
        "ARG NODEF\n"
        "FROM $IMG\n"
        "FROM ${UNDECLARED:-busybox:1.36}\n"
        "FROM ${NODEF:-redis:7}\n"
        "FROM ${IMG:-ignored:1}\n"
        "FROM ${EMPTY:-nginx:1.27}\n"
        "FROM ${NODEF:+x}\n"
        "FROM ${IMG/alpine/debian}\n"
    )
    got = [row(r) for r in refs_of(text)]
    assert got == [
        (5, 6, "alpine:3.20", "docker.io/library/alpine:3.20", None),
        (6, 6, "busybox:1.36", "docker.io/library/busybox:1.36", None),
        (7, 6, "redis:7", "docker.io/library/redis:7", None),
        (8, 6, "alpine:3.20", "docker.io/library/alpine:3.20", None),
        (9, 6, "nginx:1.27", "docker.io/library/nginx:1.27", None),
        (10, 6, "${NODEF:+x}", None, "variable-without-default"),
        (11, 6, "${IMG/alpine/debian}", None, "templated"),
    ]
    refs = refs_of(text)
    assert parts(refs[0]) == [("repository", "alpine", 2, 9), ("tag", "3.20", 1, 7)]
    assert parts(refs[1]) == [("image", "busybox:1.36", 6, 20)]  # the default, in the FROM line


def test_variables_without_value_and_platform_args() -> None:
    text = "ARG TAG\nFROM alpine:$TAG\nFROM golang:1.22-$TARGETARCH\nFROM $NOWHERE\n"
    got = [(row(r), r.detail) for r in refs_of(text)]
    assert got == [
        ((2, 6, "alpine:$TAG", None, "variable-without-default"), "$TAG: no value or default in this file"),
        ((3, 6, "golang:1.22-$TARGETARCH", None, "variable-without-default"),
         "$TARGETARCH: set by the builder for each platform"),
        ((4, 6, "$NOWHERE", None, "variable-without-default"), "$NOWHERE: no value or default in this file"),
    ]  # fmt: skip


def test_stage_args_are_scoped_like_buildkit() -> None:
    """Inside a stage only redeclared ARGs are visible; ``ARG X`` brings the global default."""
    text = (
        "ARG TOOLS=1.5\n"
        "FROM alpine:3.20\n"
        "COPY --from=acme/tools:${TOOLS} /a /a\n"
        "ARG TOOLS\n"
        "COPY --from=acme/tools:${TOOLS} /b /b\n"
    )
    got = [row(r) for r in refs_of(text)]
    assert got == [
        (2, 6, "alpine:3.20", "docker.io/library/alpine:3.20", None),
        (3, 13, "acme/tools:${TOOLS}", None, "variable-without-default"),
        (5, 13, "acme/tools:1.5", "docker.io/acme/tools:1.5", None),
    ]
    assert parts(refs_of(text)[2]) == [("repository", "acme/tools", 5, 13), ("tag", "1.5", 1, 11)]


def test_stages_scratch_and_from_flags() -> None:
    text = (
        "FROM golang:1.22 AS Build\n"
        "FROM build AS test\n"
        "FROM scratch\n"
        "COPY --from=BUILD /out /out\n"
        "COPY --from=1 /x /x\n"
        "COPY --from=later /y /y\n"
        "COPY --chown=1000 --from=nginx:1.27 /etc/nginx /etc/nginx\n"
        "RUN --mount=type=bind,from=build,target=/src --mount=type=cache,target=/c,from=redis:7 true\n"
        "FROM alpine AS later\n"
    )
    got = [(*row(r), r.context.name, r.context.field) for r in refs_of(text)]
    assert got == [
        (1, 6, "golang:1.22", "docker.io/library/golang:1.22", None, "build", "FROM"),
        (7, 26, "nginx:1.27", "docker.io/library/nginx:1.27", None, "2", "COPY --from"),
        (8, 80, "redis:7", "docker.io/library/redis:7", None, "2", "RUN --mount from"),
        (9, 6, "alpine", "docker.io/library/alpine", None, "later", "FROM"),
    ]


def test_heredocs_are_not_instructions() -> None:
    text = (
        "FROM alpine:3.20\n"
        "RUN <<EOF\nFROM evil:1\nEOF\n"
        "RUN <<-'SCRIPT' bash\n\tFROM evil:2\n\tSCRIPT\n"
        "COPY <<A <<B /dst/\nFROM evil:3\nA\nFROM evil:4\nB\n"
        "FROM busybox:1.36\n"
    )
    assert [r.text for r in refs_of(text)] == ["alpine:3.20", "busybox:1.36"]


def test_continuations_comments_case_and_escape_directive() -> None:
    text = (
        "# escape=`\n"
        "\n"
        "from `\n"
        "  # a comment line inside the continuation\n"
        "\n"
        "  mcr.microsoft.com/windows/servercore:ltsc2022 `\n"
        "  as base\n"
        "Copy --FROM=x /a /b\n"
        "copy --from=mcr.microsoft.com/powershell:lts-nanoserver-1809 /ps /ps\n"
    )
    got = [(row(r), parts(r)) for r in refs_of(text)]
    assert got == [
        ((6, 3, "mcr.microsoft.com/windows/servercore:ltsc2022",
          "mcr.microsoft.com/windows/servercore:ltsc2022", None),
         [("image", "mcr.microsoft.com/windows/servercore:ltsc2022", 6, 3)]),
        ((9, 13, "mcr.microsoft.com/powershell:lts-nanoserver-1809",
          "mcr.microsoft.com/powershell:lts-nanoserver-1809", None),
         [("image", "mcr.microsoft.com/powershell:lts-nanoserver-1809", 9, 13)]),
    ]  # fmt: skip


def test_directives_only_at_the_top() -> None:
    text = "FROM alpine:3.20\n# syntax=evil.example/frontend:1\n"
    assert [r.text for r in refs_of(text)] == ["alpine:3.20"]
    text = "\n# syntax=docker/dockerfile:1\nFROM alpine:3.20\n"
    assert [r.text for r in refs_of(text)] == ["alpine:3.20"]


def test_syntax_directive_and_metadata_address_are_plain_references() -> None:
    """F17/F18: an attacker's frontend or a link-local registry is just a reference here; the
    registry client's guard refuses to connect, not the finder."""
    text = "# syntax=attacker.example/frontend:1\nARG REG=169.254.169.254\nFROM ${REG}/x:1\n"
    got = [row(r) for r in refs_of(text)]
    assert got == [
        (1, 10, "attacker.example/frontend:1", "attacker.example/frontend:1", None),
        (3, 6, "169.254.169.254/x:1", "169.254.169.254/x:1", None),
    ]


def test_invalid_references_are_reported_invalid() -> None:
    long_name = "a" * 300
    text = f"FROM Nginx:1.27\nFROM {long_name}:1\nFROM alpine:bad!tag\n"
    assert [(r.text, r.skip) for r in refs_of(text)] == [
        ("Nginx:1.27", Skip.INVALID),
        (f"{long_name}:1", Skip.INVALID),
        ("alpine:bad!tag", Skip.INVALID),
    ]


def test_instruction_cap_is_a_clear_error() -> None:
    text = "FROM alpine:3.20\n" + "RUN true\n" * df.MAX_INSTRUCTIONS
    res = scan_file("Dockerfile", text.encode(), LocalRepo(FIXTURES), df)
    assert res.refs == []
    assert [e.message for e in res.errors] == [
        f"could not read: DockerfileRejected: more than {df.MAX_INSTRUCTIONS} instructions"
    ]


def test_ten_thousand_lines_of_continuations_and_heredoc_are_read() -> None:
    body = "RUN apt-get install -y \\\n" + "    pkg \\\n" * 5_000 + "    last\n"
    heredoc = "RUN <<EOF\n" + "echo FROM evil\n" * 5_000 + "EOF\n"
    text = "FROM debian:12\n" + body + heredoc + "FROM alpine:3.20\n"
    assert [r.text for r in refs_of(text)] == ["debian:12", "alpine:3.20"]


def test_pathological_continuations_hit_the_length_cap() -> None:
    text = "FROM alpine:3.20\nRUN " + "x" * 1000 + " \\\n" + ("y" * 1000 + " \\\n") * 300 + "done\n"
    res = scan_file("Dockerfile", text.encode(), LocalRepo(FIXTURES), df)
    assert res.refs == []
    assert len(res.errors) == 1
    assert f"longer than {df.MAX_INSTRUCTION_CHARS} characters" in res.errors[0].message
    # Escapes alone, thousands of them, are one empty instruction: read, nothing found.
    assert [r.text for r in refs_of("FROM alpine:3.20\nRUN \\\n" + "\\\n" * 20_000)] == ["alpine:3.20"]


@pytest.mark.parametrize(
    ("path", "head", "claimed"),
    [
        ("Dockerfile", b"", True),
        ("docker/Dockerfile.prod", b"", True),
        ("build/app.dockerfile", b"", True),
        ("Containerfile", b"", True),
        ("images/containerfile-debug", b"", True),
        ("Dockerfile.j2", b"FROM {{ base }}\n", False),
        ("Dockerfile.dockerignore", b"node_modules\n", False),
        ("docs/Dockerfile.md", b"FROM alpine\n", False),
        ("images/base", b"# comment\n\nFROM alpine:3.20\n", True),
        ("images/base", b"\xef\xbb\xbfARG V=1\nFROM x\n", True),
        ("images/base", b"# syntax=docker/dockerfile:1\n", True),
        ("mail/inbox", b"From: someone@example.com\n", False),
        ("notes.txt", b"Remember FROM here on\n", False),
        ("values.yaml", b"FROM alpine\n", False),
    ],
)
def test_claims(path: str, head: bytes, claimed: bool) -> None:
    assert df.claims(path, head) is claimed
    if claimed:
        assert claimant(path, head) is df


DOCKERISH = st.sampled_from(list("FROMARGCOPY $${}:-+@/\\`#<>'\"=,\n\r\t ax0fsfromEOF"))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.text(alphabet=DOCKERISH, max_size=400))
def test_arbitrary_text_never_crashes(text: str) -> None:
    refs = list(df.find(text, "Dockerfile", LocalRepo(FIXTURES)))
    check_spans(text.encode(), refs)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_through_the_driver(data: bytes) -> None:
    res = scan_file("Dockerfile", data, LocalRepo(FIXTURES), df)
    assert res.files == 1
    check_spans(data, res.refs)
