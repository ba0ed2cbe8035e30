"""Variables in image references, with every character traced back to where it is written.

A Dockerfile ``FROM ${REG}/app:${TAG}``, a compose ``${IMAGE:-nginx:1.27}`` and a GitLab
``$BASE_IMAGE`` all pull a reference that is written somewhere else, or in several places. A fix
must edit those places (the ``ARG`` default, the compose default, the CI variable), so expansion
here keeps the origin of every character as :class:`Piece` runs, and :func:`traced_parts` turns
the result into :class:`~bot.model.Part` spans when each component of the reference is written
in one place. Jinja variables in Ansible roles (issue 7) fit the same shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from yaml.nodes import MappingNode, Node, ScalarNode

from bot.model import Context, ImageRef, Part, Role, Skip, Source
from bot.scan.common import make_ref
from bot.scan.text import Locator
from bot.scan.yamlsrc import items

if TYPE_CHECKING:
    from bot.scan.yamlsrc import Doc

MAX_DEPTH = 8  # nested defaults / variables defined through variables; real files use 1-2


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of characters of an expanded value: ``start`` is the character offset in the file
    where ``text`` is written as is, or -1 when it is not (escapes, folded YAML); ``quote`` is the
    quoting of the scalar it sits in."""

    text: str
    start: int
    quote: str = ""
    scalar: bool = False  # the text is a whole YAML scalar (see ``Part.scalar``)


class Unresolved(Exception):
    """A variable whose value the file does not give (an environment variable, a build arg
    without default, a predefined CI variable), or an expansion we do not model."""

    def __init__(self, name: str, why: str, *, missing: bool = False) -> None:
        super().__init__(f"${name}: {why}" if name else why)
        self.name = name
        self.why = why
        self.missing = missing  # True: a variable without value (else a form we do not model)


# A variable's value as pieces, or None when the file does not say (unset or set elsewhere).
Lookup = Callable[[str], list[Piece] | None]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def sub(piece: Piece, start: int, end: int) -> Piece:
    """The piece for ``piece.text[start:end]``."""
    whole = piece.scalar and start == 0 and end >= len(piece.text)
    return Piece(piece.text[start:end], piece.start + start if piece.start >= 0 else -1, piece.quote, whole)


def expand(piece: Piece, lookup: Lookup, *, dollar_escape: bool = False, depth: int = 0) -> list[Piece]:
    """Expand ``$VAR``, ``${VAR}`` and the POSIX forms ``${VAR:-word}``, ``${VAR-word}``,
    ``${VAR:+word}``, ``${VAR+word}``, ``${VAR:?msg}``, ``${VAR?msg}`` (Dockerfile, compose and
    GitLab agree on these). ``word`` may itself hold variables. ``dollar_escape``: ``$$`` is a
    literal ``$`` (compose, GitLab). A variable with no value in the file and no default raises
    :class:`Unresolved`; so does an unknown operator (``${VAR/x/y}``), rather than guess."""
    if depth > MAX_DEPTH:
        raise Unresolved("", "variables nested too deeply")
    text = piece.text
    out: list[Piece] = []
    lit = i = 0

    def again(word: Piece) -> list[Piece]:
        return expand(word, lookup, dollar_escape=dollar_escape, depth=depth + 1)

    while True:
        j = text.find("$", i)
        if j < 0:
            break
        if dollar_escape and text.startswith("$$", j):
            out.append(sub(piece, lit, j + 1))
            lit = i = j + 2
            continue
        if text.startswith("{", j + 1):
            close = _closing(text, j + 1)
            if close < 0:
                raise Unresolved(text[j + 2 : j + 40], "unterminated ${")
            m = _NAME.match(text, j + 2)
            if m is None:
                raise Unresolved(text[j + 2 : close], "not a variable name")
            pieces = _operator(piece, m, close, lookup(m.group()), again)
            end = close + 1
        else:
            m = _NAME.match(text, j + 1)
            if m is None:  # a lone "$" is literal
                i = j + 1
                continue
            pieces = _required(m.group(), lookup(m.group()))
            end = m.end()
        out.append(sub(piece, lit, j))
        out.extend(pieces)
        lit = i = end
    out.append(sub(piece, lit, len(text)))
    return [p for p in out if p.text]


def _operator(
    piece: Piece,
    m: re.Match[str],
    close: int,
    value: list[Piece] | None,
    again: Callable[[Piece], list[Piece]],
) -> list[Piece]:
    """The value of ``${NAME<op>word}``; ``m`` matched NAME, ``close`` is the index of ``}``,
    ``again`` expands ``word``."""
    name, text, at = m.group(), piece.text, m.end()
    if at == close:
        return _required(name, value)
    colon = text.startswith(":", at)
    op = text[at + colon] if at + colon < close else ""
    if op not in ("-", "+", "?"):
        raise Unresolved(name, f"unsupported expansion {text[at:close][:20]!r}")
    word = sub(piece, at + colon + 1, close)
    empty = value is not None and not "".join(p.text for p in value)
    alternative = value is None or (colon and empty)  # "unset (or empty, with a colon)"
    if op == "-":
        return again(word) if alternative else value or []
    if op == "?":
        if alternative:
            raise Unresolved(name, word.text or "required and not set in this file", missing=True)
        return value or []
    if value is None:  # ${VAR:+word}: depends on whether VAR is set, which the file does not say
        raise Unresolved(name, "not set in this file", missing=True)
    return [] if alternative else again(word)


def _required(name: str, value: list[Piece] | None) -> list[Piece]:
    if value is None:
        raise Unresolved(name, "no value or default in this file", missing=True)
    return value


def _closing(text: str, open_at: int) -> int:
    """Index of the ``}`` matching the ``{`` at ``open_at``, or -1."""
    level = 0
    for k in range(open_at, len(text)):
        c = text[k]
        if c == "{":
            level += 1
        elif c == "}":
            level -= 1
            if level == 0:
                return k
    return -1


def joined(pieces: Sequence[Piece]) -> str:
    return "".join(p.text for p in pieces)


def components(text: str) -> list[tuple[Role, int, int]]:
    """The registry, repository, tag and digest of a reference as written (character ranges,
    nothing normalised), split as Docker splits them; empty components are left out."""
    at = text.find("@")
    name_end = at if at >= 0 else len(text)
    slash = text.rfind("/", 0, name_end)
    colon = text.find(":", slash + 1, name_end)
    repo_end = colon if colon >= 0 else name_end
    out: list[tuple[Role, int, int]] = []
    first = text.find("/", 0, repo_end)
    head = text[:first]
    if first > 0 and ("." in head or ":" in head or head == "localhost" or head != head.lower()):
        out += [(Role.REGISTRY, 0, first), (Role.REPOSITORY, first + 1, repo_end)]
    else:
        out.append((Role.REPOSITORY, 0, repo_end))
    if colon >= 0:
        out.append((Role.TAG, colon + 1, name_end))
    if at >= 0:
        out.append((Role.DIGEST, at + 1, len(text)))
    return [c for c in out if c[2] > c[1]]


def traced_parts(pieces: Sequence[Piece], loc: Locator) -> tuple[Part, ...] | None:
    """Parts that say where to edit an expanded reference.

    One ``IMAGE`` part when the whole text is written in one place (``FROM $BASE`` with
    ``ARG BASE=alpine:3.20``: the ``ARG`` default). Otherwise one part per component, when each
    is written in one place: ``REPOSITORY`` (holding the registry too, unless that is written
    apart as ``REGISTRY``), ``TAG``, ``DIGEST``. None when a component is itself pieced together
    (``python:${PY}-slim``): no single edit can change it.
    """
    merged: list[Piece] = []
    for p in pieces:
        last = merged[-1] if merged else None
        if (
            last is not None
            and p.start >= 0
            and last.start >= 0
            and last.start + len(last.text) == p.start
            and last.quote == p.quote
        ):
            merged[-1] = Piece(last.text + p.text, last.start, p.quote)
        elif p.text:
            merged.append(p)
    text = joined(merged)
    if not text:
        return None
    bounds, at = [], 0
    for p in merged:
        bounds.append(at)
        at += len(p.text)

    def part(role: Role, s: int, e: int) -> Part | None:
        for k, p in enumerate(merged):
            if bounds[k] <= s and e <= bounds[k] + len(p.text):
                if p.start < 0:
                    return None
                off = p.start + s - bounds[k]
                whole = p.scalar and s == bounds[k] and e == bounds[k] + len(p.text)
                return Part(role, text[s:e], loc.span(off, off + e - s), p.quote, scalar=whole)
        return None

    whole = part(Role.IMAGE, 0, len(text))
    if whole is not None:
        return (whole,)
    comps = components(text)
    if comps and comps[0][0] is Role.REGISTRY:
        name = part(Role.REPOSITORY, 0, comps[1][2])
        if name is not None:
            comps = comps[2:]
            out = [name]
        else:
            out = []
    else:
        out = []
    for role, s, e in comps:
        got = part(role, s, e)
        if got is None:
            return None
        out.append(got)
    return tuple(out)


def scalar_piece(doc: Doc, node: ScalarNode, part: Part) -> Piece:
    """The piece for a YAML scalar's value: traced when its bytes are the value (``part.raw``)."""
    start = doc.bounds(node)[0] + (1 if part.quote else 0)
    return Piece(node.value, start if part.raw else -1, part.quote, scalar=True)


def non_string(doc: Doc, node: Node, path: str, source: Source, ctx: Context) -> ImageRef:
    """``image: 123``, ``image: !reference [...]``, a map or list where a reference goes."""
    if isinstance(node, ScalarNode):
        part, what = doc.part(node, Role.IMAGE), f"{node.tag.rsplit(':', 1)[-1]} value"
    else:
        part, what = Part(Role.IMAGE, "", doc.span(node), raw=False), "a collection"
    return make_ref(
        path, source, part.text, [part], ctx, skip=Skip.NON_STRING, detail=f"{what}, not a string"
    )


def check_keys(node: Node | None) -> None:
    """Reject duplicate keys in a map we read with ``get`` (``image:`` twice in one service:
    the runtime's parser and ours may keep different ones)."""
    if isinstance(node, MappingNode):
        for _ in items(node):
            pass
