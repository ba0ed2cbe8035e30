"""Property: on generated Kubernetes manifests and Helm values, rewriting every reference changes
only the bytes of the rewritten spans, the file still parses to the same structure except for
those values (which read back as strings), a re-scan reads exactly the targets, and planning
again changes nothing."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from bot.edit import EditError, apply, expected, plan, verify
from bot.model import Edit, ImageRef
from bot.scan import scan_file
from tests.edit.helpers import DictRepo

PATH = "values.yaml"
FINDER = importlib.import_module("bot.scan.helm_values")  # reads Kubernetes objects too

NAMES = ["nginx", "redis", "kubectl", "pause", "node-exporter", "app", "postgresql", "busybox"]
ORGS = ["bitnami", "library", "alpine", "prometheus", "acme", "org/team"]
TAGS = ["1.27", "1.30", "1.10", "8", "16.4", "v1.2.3", "latest", "3.9-alpine", "2024-01-01", "1e3", "0x1f"]
TAGS += ["1.31.4", "7", "on", "y", "null", "3.20", "stable-slim"]
DOMAINS = ["docker.io", "index.docker.io", "ghcr.io", "quay.io", "registry.k8s.io", "localhost:5000"]

digests = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"sha256:{h}")
tags = st.one_of(st.sampled_from(TAGS), st.from_regex(r"[a-z0-9][a-z0-9._-]{0,10}", fullmatch=True))


@st.composite
def repo_paths(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(NAMES))
    org = draw(st.none() | st.sampled_from(ORGS))
    return f"{org}/{name}" if org else name


@st.composite
def references(draw: st.DrawFn) -> str:
    """A reference as people write them: registry or not, tag, digest, both or neither."""
    domain = draw(st.none() | st.sampled_from(DOMAINS))
    text = (f"{domain}/" if domain else "") + draw(repo_paths())
    if draw(st.booleans()):
        text += ":" + draw(tags)
    if draw(st.integers(0, 4)) == 0:
        text += "@" + draw(digests)
    return text


@st.composite
def targets(draw: st.DrawFn) -> tuple[str, str | None]:
    domain = draw(st.sampled_from(["docker.io", "ghcr.io", "quay.io", "registry.k8s.io", "localhost:5000"]))
    path = draw(repo_paths())
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    tag = draw(tags)
    return f"{domain}/{path}:{tag}", draw(st.none() | digests)


@st.composite
def scalars(draw: st.DrawFn, text: str) -> str:
    """``text`` plain, single- or double-quoted, maybe with a comment after it."""
    quote = draw(st.sampled_from(["", "'", '"']))
    if not quote and (text == "" or text[0] in "-?:,[]{}#&*!|>'\"%@`"):
        quote = '"'
    comment = draw(st.sampled_from(["", "  # pinned", " # renovate: datasource=docker"]))
    return f"{quote}{text}{quote}{comment}"


@st.composite
def manifests(draw: st.DrawFn) -> list[str]:
    ind = draw(st.sampled_from(["  ", "    "]))
    seq = draw(st.sampled_from(["", ind]))  # sequences indented under their key or not
    lines = ["apiVersion: apps/v1", "kind: Deployment", "metadata:", f"{ind}name: app", "spec:"]
    lines += [f"{ind}template:", f"{ind * 2}spec:", f"{ind * 3}containers:"]
    for i in range(draw(st.integers(1, 3))):
        ref = draw(references())
        if draw(st.integers(0, 3)) == 0:
            lines.append(f"{ind * 3}{seq}- {{name: c{i}, image: {ref}}}")
        else:
            lines.append(f"{ind * 3}{seq}- name: c{i}")
            lines.append(f"{ind * 3}{seq}  image: {draw(scalars(ref))}")
    return lines


@st.composite
def values(draw: st.DrawFn) -> list[str]:
    ind = draw(st.sampled_from(["  ", "    "]))
    lines = ["# values", "replicaCount: 1"]
    for i in range(draw(st.integers(1, 3))):
        lines.append(f"comp{i}:")
        if draw(st.integers(0, 3)) == 0:
            lines.append(f"{ind}image: {draw(scalars(draw(references())))}")
            continue
        lines.append(f"{ind}image:")
        domain = draw(st.none() | st.sampled_from(DOMAINS))
        repo = draw(repo_paths())
        if domain and draw(st.booleans()):
            lines.append(f"{ind * 2}registry: {draw(scalars(domain))}")
        elif domain:
            repo = f"{domain}/{repo}"
        lines.append(f"{ind * 2}repository: {draw(scalars(repo))}")
        lines.append(f"{ind * 2}tag: {draw(scalars(draw(tags)))}")
        if draw(st.booleans()):
            lines.append(f"{ind * 2}digest: {draw(scalars(draw(st.just('') | digests)))}")
        lines.append(f"{ind * 2}pullPolicy: IfNotPresent")
    return lines


@st.composite
def files(draw: st.DrawFn) -> bytes:
    docs = [draw(st.one_of(manifests(), values())) for _ in range(draw(st.integers(1, 3)))]
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = f"{eol}---{eol}".join(eol.join(d) for d in docs)
    if draw(st.booleans()):
        text += eol
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode()


@dataclass
class Planned:
    ref: ImageRef
    target: str
    digest: str | None


def scan(data: bytes) -> list[ImageRef]:
    got = scan_file(PATH, data, DictRepo({PATH: data}), FINDER)
    assert got.errors == []
    return got.refs


def untouched_outside(before: bytes, after: bytes, edits: list[Edit]) -> None:
    """Every byte outside the edited spans is the same, in the same order."""
    pos = prev = 0
    for e in sorted(set(edits), key=lambda e: e.span.start):
        gap = before[prev : e.span.start]
        assert after[pos : pos + len(gap)] == gap
        pos += len(gap)
        new = e.new.encode()
        assert after[pos : pos + len(new)] == new
        pos += len(new)
        prev = e.span.end
    assert after[pos:] == before[prev:]


def same_structure(before: bytes, after: bytes, edits: list[Edit]) -> None:
    """Node for node the same tree; scalars differ only where an edit was made on that line,
    and every edited scalar still reads as a string."""
    changed = {(e.span.line, e.old): e.new.strip("'\"") for e in edits}
    b_docs = list(yaml.compose_all(before.decode("utf-8-sig"), Loader=yaml.SafeLoader))
    a_docs = list(yaml.compose_all(after.decode("utf-8-sig"), Loader=yaml.SafeLoader))
    assert len(a_docs) == len(b_docs)
    stack = list(zip(b_docs, a_docs, strict=True))
    while stack:
        b, a = stack.pop()
        assert type(a) is type(b)
        if isinstance(b, yaml.ScalarNode):
            new = changed.get((b.start_mark.line + 1, b.value))
            if new is None:
                assert (a.value, a.tag) == (b.value, b.tag)
            else:
                assert a.value == new
                assert a.tag == "tag:yaml.org,2002:str", f"{a.value!r} no longer reads as a string"
        elif isinstance(b, yaml.SequenceNode):
            assert len(a.value) == len(b.value)
            stack += zip(b.value, a.value, strict=True)
        elif isinstance(b, yaml.MappingNode):
            assert len(a.value) == len(b.value)
            for (bk, bv), (ak, av) in zip(b.value, a.value, strict=True):
                stack += [(bk, ak), (bv, av)]
    list(YAML(typ="rt").load_all(after))  # YAML 1.2 round-trip reader accepts it too


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=files(), picks=st.data())
def test_rewriting_every_reference_touches_only_its_spans(data: bytes, picks: st.DataObject) -> None:
    refs = scan(data)
    planned: list[Planned] = []
    edits: list[Edit] = []
    for ref in refs:
        if ref.reference is None:
            continue
        target, digest = picks.draw(targets())
        try:
            got = plan(ref, target, digest=digest, unpin=True)
        except EditError as exc:
            event(f"refused: {str(exc).split(': ', 1)[1][:40]}")
            continue  # a refusal is a decision, tested elsewhere; the rest must still hold
        spans = {(p.span.start, p.span.end) for p in ref.parts}
        assert all((e.span.start, e.span.end) in spans for e in got), "edit outside the reference's parts"
        planned.append(Planned(ref, target, digest))
        edits += got
    after = apply(data, edits)
    event(f"edits: {min(len(edits), 5)}")
    quoted = any(e.new[:1] in "'\"" and e.old[:1] not in "'\"" for e in edits)
    event(f"quotes added: {quoted}")

    untouched_outside(data, after, edits)
    same_structure(data, after, edits)

    again = scan(after)
    intended = {p.ref.key: expected(p.target, p.digest) for p in planned}
    assert verify(refs, again, intended) == []
    by_key = {p.ref.key: p for p in planned}
    for b, a in zip(refs, again, strict=True):
        if b.key in by_key:
            p = by_key[b.key]
            assert plan(a, p.target, digest=p.digest) == ()
