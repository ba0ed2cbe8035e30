"""Variable expansion with traced origins, and the parts a traced reference edits."""

from __future__ import annotations

import pytest

from bot.model import Role
from bot.scan.interpolate import Piece, Unresolved, components, expand, joined, traced_parts
from bot.scan.text import Locator


def test_components_split_as_docker_does() -> None:
    text = "localhost:5000/team/app:1.2@sha256:abc"
    got = [(r, text[s:e]) for r, s, e in components(text)]
    assert got == [
        (Role.REGISTRY, "localhost:5000"),
        (Role.REPOSITORY, "team/app"),
        (Role.TAG, "1.2"),
        (Role.DIGEST, "sha256:abc"),
    ]
    assert [(r, "library/nginx"[s:e]) for r, s, e in components("library/nginx")] == [
        (Role.REPOSITORY, "library/nginx")
    ]


def test_expand_keeps_origins_and_defaults() -> None:
    text = "X ${A:-nginx}:${B} $$ $"
    values = {"B": [Piece("1.27", 100)]}
    got = expand(Piece(text, 0), values.get, dollar_escape=True)
    assert joined(got) == "X nginx:1.27 $ $"
    assert [(p.text, p.start) for p in got] == [("X ", 0), ("nginx", 7), (":", 13), ("1.27", 100),
                                                (" $", 18), (" $", 21)]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "missing"),
    [("${A}", True), ("$A", True), ("${A:?need A}", True), ("${A:+x}", True), ("${A/x/y}", False),
     ("${A", False), ("${1}", False)],
)  # fmt: skip
def test_unresolved(text: str, missing: bool) -> None:
    with pytest.raises(Unresolved) as info:
        expand(Piece(text, 0), lambda _n: None)
    assert info.value.missing is missing


def test_nesting_is_bounded() -> None:
    deep = "${A:-" * 12 + "x" + "}" * 12
    with pytest.raises(Unresolved, match="nested too deeply"):
        expand(Piece(deep, 0), lambda _n: None)
    assert joined(expand(Piece("${A:-" * 3 + "x" + "}" * 3, 0), lambda _n: None)) == "x"


def test_traced_parts_whole_split_and_pieced() -> None:
    text = "ARG T=1.2\nFROM app:$T\n"
    loc = Locator(text)
    whole = traced_parts([Piece("app:1.2", 40)], Locator("x" * 60))
    assert whole is not None and [p.role for p in whole] == [Role.IMAGE]
    split = traced_parts([Piece("app:", 15), Piece("1.2", 6)], loc)
    assert split is not None
    assert [(p.role, p.text, text[p.span.start : p.span.end]) for p in split] == [
        (Role.REPOSITORY, "app", "app"),
        (Role.TAG, "1.2", "1.2"),
    ]
    assert traced_parts([Piece("app:", 15), Piece("1.2", 6), Piece("-x", -1)], loc) is None
