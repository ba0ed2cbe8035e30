"""Jsonnet (``*.jsonnet``, ``*.libsonnet``): image strings, and images concatenated from a
version kept in an imported JSON file.

kube-prometheus builds its images as ``'quay.io/prometheus/alertmanager:v' +
$.values.common.versions.alertmanager`` with ``versions: ... + (import 'versions.json')``. Such a
reference has two parts: the repository in the Jsonnet string and the tag, the JSON value, in
``versions.json`` (its :class:`~bot.model.Part` carries that path, so the fix edits the JSON
value and nothing else; a fixed prefix such as ``v`` written in the string is a context note the
edit engine honours). A version that a ``local x = '...'`` in the same file gives is resolved the
same way; anything else (``std.extVar``, a function argument) is reported as skipped, with the
expression, never dropped.

Literal strings are references when the field holding them names an image (``image:``,
``initImage:``) or when Docker's grammar reads them as a qualified reference with a tag or digest
(``'quay.io/brancz/kube-rbac-proxy:v0.18.1'`` under any field). The file is tokenised (strings,
comments, ``|||`` text blocks, identifiers), never evaluated.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass

from bot.model import Context, ImageRef, Part, Role, Skip, Source
from bot.scan.common import TAG_PREFIX, make_ref
from bot.scan.text import Locator

SOURCE = Source.JSONNET

_ID = re.compile(r"[A-Za-z_$][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9][0-9.eE+-]*")
_IMPORT_JSON = re.compile(r"""\bimport\s+(['"])([^'"\n]+\.json)\1""")
_LOCAL = re.compile(r"""\blocal\s+([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(['"])([^'"\\\n]*)\2\s*[;,]""")
_STEM = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._/-]*(?::[0-9]+)?/[a-z0-9._/-]+):(?P<prefix>[A-Za-z._-]*)$")


def claims(path: str, head: bytes) -> bool:
    return path.endswith((".jsonnet", ".libsonnet"))


@dataclass(slots=True)
class Tok:
    kind: str  # "str", "id", "op"
    start: int  # of the value (inside the quotes for a string)
    end: int
    value: str
    quote: str = ""
    raw: bool = True


def tokens(text: str) -> list[Tok]:
    """Strings, identifiers and operators, comments and text blocks dropped (a linear scan)."""
    out: list[Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c == "#" or text.startswith("//", i):
            nl = text.find("\n", i)
            i = n if nl < 0 else nl
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif text.startswith("|||", i):
            end = text.find("|||", i + 3)
            i = n if end < 0 else end + 3
        elif c in "'\"" or (c == "@" and text[i + 1 : i + 2] in ("'", '"')):
            verbatim = c == "@"
            q = text[i + 1] if verbatim else c
            j = i + (2 if verbatim else 1)
            chars: list[str] = []
            raw = True
            while j < n and text[j] != q:
                if text[j] == "\\" and not verbatim and j + 1 < n:
                    raw = False
                    nxt = text[j + 1]
                    chars.append({"n": "\n", "t": "\t", "'": "'", '"': '"', "\\": "\\"}.get(nxt, nxt))
                    j += 2
                    continue
                if verbatim and text.startswith(q * 2, j):
                    raw = False
                    chars.append(q)
                    j += 2
                    continue
                chars.append(text[j])
                j += 1
            start = i + (2 if verbatim else 1)
            out.append(Tok("str", start, j, "".join(chars), q, raw and not verbatim))
            i = j + 1
        elif (m := _ID.match(text, i)) is not None:
            out.append(Tok("id", i, m.end(), m.group()))
            i = m.end()
        elif (m := _NUMBER.match(text, i)) is not None:
            out.append(Tok("num", i, m.end(), m.group()))
            i = m.end()
        else:
            out.append(Tok("op", i, i + 1, c))
            i += 1
    return out


def find(text: str, path: str, repo: object = None) -> Iterator[ImageRef]:
    if "/" not in text and "mage" not in text:
        return iter(())
    loc = Locator(text)
    toks = tokens(text)
    versions = _Versions(text, path, repo)
    out: list[ImageRef] = []
    for k, t in enumerate(toks):
        if t.kind != "str":
            continue
        before = toks[k - 1] if k else None
        after = toks[k + 1] if k + 1 < len(toks) else None
        if after is not None and after.kind == "op" and after.value == ":":
            continue  # a field name
        if before is not None and before.kind == "op" and before.value == "+":
            continue  # the right operand of a concatenation: read with its left
        key = _key(toks, k)
        ctx = Context(kind="jsonnet", field=key)
        if after is not None and after.kind == "op" and after.value == "+":
            ref = _concatenated(toks, k, t, path=path, loc=loc, versions=versions, ctx=ctx)
            if ref is not None:
                out.append(ref)
            continue
        if not t.value.strip():
            continue
        named = key is not None and key.lower().endswith("image")
        if named or _qualified(t.value):
            part = Part(Role.IMAGE, t.value, loc.span(t.start, t.end), t.quote, t.raw)
            out.append(make_ref(path, SOURCE, t.value, [part], ctx))
    return iter(out)


def _qualified(text: str) -> bool:
    from bot.reference import ReferenceError, parse, qualified

    if "/" not in text or " " in text or not qualified(text):
        return False
    try:
        ref = parse(text)
    except ReferenceError:
        return False
    return ref.tag is not None or ref.digest is not None


def _key(toks: list[Tok], k: int) -> str | None:
    """The field a value belongs to: ``name:``/``name::``/``'name':`` right before it."""
    j = k - 1
    colons = 0
    while j >= 0 and toks[j].kind == "op" and toks[j].value in ":+" and colons < 3:
        colons += 1
        j -= 1
    if colons and j >= 0 and toks[j].kind in ("id", "str") and toks[j + 1].value == ":":
        return toks[j].value
    return None


def _operand(toks: list[Tok], k: int) -> tuple[list[str], int]:
    """The dotted path starting at ``toks[k]`` (``$.values.common.versions.x``) and its end."""
    names: list[str] = []
    j = k
    while j < len(toks) and toks[j].kind == "id":
        names.append(toks[j].value)
        if j + 1 < len(toks) and toks[j + 1].kind == "op" and toks[j + 1].value == ".":
            j += 2
            continue
        j += 1
        break
    return names, j


def _concatenated(
    toks: list[Tok], k: int, t: Tok, *, path: str, loc: Locator, versions: _Versions, ctx: Context
) -> ImageRef | None:
    """``'repo:prefix' + <version>``: the tag from where the version is written, else a skip."""
    m = _STEM.match(t.value)
    if m is None:
        return None
    name, prefix = m.group("name"), m.group("prefix")
    names, end = _operand(toks, k + 2)
    follows = end < len(toks) and toks[end].kind == "op" and toks[end].value in "+(["
    expr = ".".join(names) or (toks[k + 2].value if k + 2 < len(toks) else "")
    stem = Part(Role.REPOSITORY, name, loc.span(t.start, t.start + len(name)), t.quote, t.raw)
    found = versions.lookup(names[-1], names) if names and not follows else None
    tag: Part
    written = f"{name}:{prefix}{found[0].text if found else '<' + expr + '>'}"
    if found is None:
        return make_ref(
            path,
            SOURCE,
            written,
            [stem],
            ctx,
            skip=Skip.TEMPLATED,
            detail=f"the tag is {prefix!r} + {expr}, which is not a literal this scan can read",
        )
    tag, where = found
    notes = (f"tag from {where}",) + ((f"{TAG_PREFIX}{prefix}",) if prefix else ())
    context = Context(ctx.kind, ctx.name, ctx.container, ctx.needs_shell, ctx.field, notes)
    return make_ref(path, SOURCE, written, [stem, tag], context)


class _Versions:
    """Where a version named by the last component of an expression is written: a top-level
    string of a JSON file the Jsonnet file imports, or a ``local`` string in the file itself."""

    def __init__(self, text: str, path: str, repo: object) -> None:
        self.text, self.path, self.repo = text, path, repo
        self._json: list[tuple[str, str]] | None = None  # (path, text) of imported JSON files

    def lookup(self, name: str, names: list[str]) -> tuple[Part, str] | None:
        if len(names) == 1:
            for m in _LOCAL.finditer(self.text):
                if m.group(1) == name:
                    loc = Locator(self.text)
                    s = m.start(3)
                    part = Part(Role.TAG, m.group(3), loc.span(s, m.end(3)), m.group(2))
                    return part, f"local {name} in this file"
            return None
        for jpath, jtext in self.imported():
            found = _json_value(jtext, jpath, name)
            if found is not None:
                return found, jpath
        return None

    def imported(self) -> list[tuple[str, str]]:
        if self._json is None:
            self._json = []
            read = getattr(self.repo, "read_text", None)
            here = posixpath.dirname(self.path)
            for m in _IMPORT_JSON.finditer(self.text):
                target = posixpath.normpath(posixpath.join(here, m.group(2)))
                text = read(target) if read is not None and not target.startswith("..") else None
                if text is not None:
                    self._json.append((target, text))
        return self._json


def _json_value(text: str, path: str, name: str) -> Part | None:
    """The span of the top-level string ``name`` of a JSON object, checked against a real parse."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, str):
        return None
    pat = re.compile(r'"' + re.escape(name) + r'"\s*:\s*"(' + re.escape(value) + r')"')
    hits = list(pat.finditer(text))
    if len(hits) != 1:
        return None  # the same key in a nested object too: not sure which is top-level
    m = hits[0]
    return Part(Role.TAG, value, Locator(text).span(m.start(1), m.end(1)), '"', True, path)
