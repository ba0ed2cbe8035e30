"""verify(): a re-scan must read the intended targets and nothing else may change."""

from __future__ import annotations

import dataclasses

from bot.edit import apply, expected, plan, verify
from bot.scan import dockerfile, scan_file
from tests.edit.helpers import DictRepo

SHARED = b"ARG BASE=alpine:3.19\nFROM ${BASE} AS one\nRUN true\nFROM ${BASE} AS two\n"


def scan(data: bytes) -> list:
    got = scan_file("Dockerfile", data, DictRepo({"Dockerfile": data}), dockerfile)
    assert got.errors == []
    return got.refs


def test_an_arg_shared_by_two_stages_moves_both() -> None:
    one, two = scan(SHARED)
    assert one.parts[0].span == two.parts[0].span  # both point at the ARG default
    target = "docker.io/library/alpine:3.20"
    after = apply(SHARED, plan(one, target) + plan(two, target))  # the same edit, applied once
    assert after == SHARED.replace(b"3.19", b"3.20")
    intended = {one.key: expected(target), two.key: expected(target)}
    assert verify([one, two], scan(after), intended) == []
    # Meaning to move only the first stage is caught: the second moved with it.
    (problem,) = verify([one, two], scan(after), {one.key: expected(target)})
    assert problem.key == two.key and "no edit was meant" in problem.why


def test_a_wrong_result_and_a_lost_reference_are_reported() -> None:
    refs = scan(SHARED)
    after = SHARED.replace(b"3.19", b"3.21")
    problems = verify(refs, scan(after), {r.key: expected("docker.io/library/alpine:3.20") for r in refs})
    assert [p.key for p in problems] == [r.key for r in refs]
    assert "not docker.io/library/alpine:3.20" in problems[0].why
    gone = verify(refs, refs[:1], {})
    assert gone[0].key == ("Dockerfile", 0, 0)


def test_helm_digest_wins_still_checks_the_written_tag() -> None:
    (ref,) = scan(b"FROM alpine:3.19\n")
    d = "sha256:" + "1" * 64
    pulled = dataclasses.replace(ref, reference=f"docker.io/library/alpine@{d}", text=f"alpine:3.20@{d}")
    assert verify([ref], [pulled], {ref.key: expected("docker.io/library/alpine:3.20", d)}) == []
    stale = dataclasses.replace(pulled, text=f"alpine:3.19@{d}")
    assert len(verify([ref], [stale], {ref.key: expected("docker.io/library/alpine:3.20", d)})) == 1
