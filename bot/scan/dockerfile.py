"""Dockerfile / Containerfile finder.

A line reader that follows BuildKit's parser where it matters for images: parser directives
(``# syntax=`` is an image, ``# escape=`` changes the continuation character), continuations with
comment and blank lines inside them, heredoc bodies (never instructions), case-insensitive
instructions, ``ONBUILD``. Images are ``FROM`` (not ``scratch``, not an earlier stage),
``COPY --from=`` and ``RUN --mount=...,from=`` (not a stage name or index), and the syntax
directive.

Variables expand as BuildKit expands them: ``FROM`` sees only global ``ARG``s (declared before the
first ``FROM``), instructions inside a stage only the ``ARG``s redeclared there. Dependabot ignores
``ARG``s entirely; Renovate substitutes them. We substitute and trace: when the reference comes
from ``ARG`` defaults, its parts point at those defaults, which is what a fix must edit. A
variable no default covers (a build arg, ``$TARGETARCH``) is ``Skip.VARIABLE``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

from bot.model import Context, ImageRef, Part, Role, Skip, Source
from bot.scan.common import make_ref
from bot.scan.interpolate import Piece, Unresolved, expand, joined, traced_parts
from bot.scan.text import Locator

SOURCE = Source.DOCKERFILE

MAX_INSTRUCTIONS = 5_000  # real Dockerfiles have tens; generated ones a few hundred
MAX_INSTRUCTION_CHARS = 256 * 1024  # one instruction with all its continuation lines


class DockerfileRejected(ValueError):
    """The file is past a hard cap; the message says which, for the scan's ``errors``."""


# Names that are something else even when they start with "Dockerfile": templates (the Jinja
# finder's), per-Dockerfile ignore files, and documents or code about Dockerfiles.
_NEVER = (
    ".j2", ".jinja", ".jinja2", ".tmpl", ".tpl", ".gotmpl", ".dockerignore", ".yaml", ".yml",
    ".json", ".md", ".rst", ".adoc", ".html", ".py", ".go", ".rs", ".js", ".ts", ".java", ".rb",
    ".sh", ".ps1", ".sql", ".toml", ".xml", ".lock", ".patch", ".diff", ".orig", ".rej",
)  # fmt: skip
_NAMED = re.compile(r"^(?:docker|container)file(?:$|[._-])|[._-](?:docker|container)file$")
# First instruction FROM/ARG (upper case: "From: a@b" opens mail files) or a syntax directive,
# after blank and comment lines.
_SNIFF = re.compile(
    rb"(?:\xef\xbb\xbf)?(?:[ \t]*(?:#[^\n]*)?\r?\n)*[ \t]*"
    rb"(?:#[ \t]*(?i:syntax)[ \t]*=[ \t]*\S|(?:FROM|ARG)[ \t]+[^\s#])"
)

_DIRECTIVE = re.compile(r"[ \t]*#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.*?)[ \t]*$")
_WORD = re.compile(r"\S+")
_ARG_WORD = re.compile(r"""(?:[^\s"']|"(?:\\.|[^"\\])*"?|'[^']*'?)+""")
_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEREDOC = re.compile(r"[0-9]*<<(-?)(['\"]?)([^\s'\"<>|&;]+)\2")
_PLATFORM_ARGS = frozenset(
    f"{p}{s}" for p in ("BUILD", "TARGET") for s in ("PLATFORM", "OS", "ARCH", "VARIANT")
)


def claims(path: str, head: bytes) -> bool:
    """By name (``Dockerfile*``, ``*.dockerfile``, ``Containerfile*``) or by a first instruction
    ``FROM``/``ARG`` or ``# syntax=`` directive in a file with no other known type."""
    base = path.rpartition("/")[2].lower()  # not os.path.basename: claims runs on every file
    if base.endswith(_NEVER):
        return False
    if _NAMED.search(base):
        return True
    if b"FROM" not in head and b"ARG" not in head and b"yntax" not in head:
        return False
    return _SNIFF.match(head) is not None


def find(text: str, path: str, repo: object = None) -> Iterator[ImageRef]:
    """The references in one Dockerfile, in file order."""
    refs = _Reader(text, path).read()
    return iter(sorted(refs, key=lambda r: (r.line, r.column)))


# Values of variables: pieces, None when no value is written, Unresolved when the value is
# written but depends on something unknown.
_Env = dict[str, list[Piece] | Unresolved | None]


@dataclass(slots=True)
class _Line:
    """One instruction, continuation lines joined as BuildKit joins them."""

    text: str
    segs: list[tuple[int, int]]  # (offset in text, character offset in the file) per physical line

    def pieces(self, s: int, e: int) -> list[Piece]:
        """Where ``text[s:e]`` is written: one piece per physical line it covers."""
        out: list[Piece] = []
        for k, (ls, fs) in enumerate(self.segs):
            le = self.segs[k + 1][0] if k + 1 < len(self.segs) else len(self.text)
            a, b = max(s, ls), min(e, le)
            if a < b:
                out.append(Piece(self.text[a:b], fs + a - ls))
        return out


@dataclass(slots=True)
class _Stage:
    index: int
    name: str | None = None
    env: _Env = field(default_factory=dict)


@dataclass(slots=True)
class _Pending:
    """A ``--from`` value that is an image unless it names a stage (known once all are read)."""

    key: str
    make: Callable[[], ImageRef | None]


class _Reader:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.loc = Locator(text)
        self.escape = "\\"
        self.globals: _Env = {}
        self.stage: _Stage | None = None
        self.stages: list[_Stage] = []
        self.refs: list[ImageRef] = []
        self.pending: list[_Pending] = []

    # --- reading ------------------------------------------------------------------------

    def _physical(self) -> list[tuple[int, str]]:
        out, at = [], 0
        for raw in self.text.split("\n"):
            out.append((at, raw[:-1] if raw.endswith("\r") else raw))
            at += len(raw) + 1
        return out

    def read(self) -> list[ImageRef]:
        lines = self._physical()
        k = self._directives(lines)
        count = 0
        while k < len(lines):
            content = lines[k][1]
            body = content.lstrip(" \t")
            if not body or body.startswith("#"):
                k += 1
                continue
            line, k = self._logical(lines, k)
            count += 1
            if count > MAX_INSTRUCTIONS:
                raise DockerfileRejected(f"more than {MAX_INSTRUCTIONS} instructions")
            keyword = self._dispatch(line, 0)
            if keyword in ("RUN", "COPY", "ADD"):
                k = self._skip_heredocs(line, lines, k)
        stage_names = {s.name for s in self.stages if s.name}
        for p in self.pending:
            if p.key not in stage_names and (ref := p.make()) is not None:
                self.refs.append(ref)
        self._mark_final()
        return self.refs

    def _directives(self, lines: list[tuple[int, str]]) -> int:
        """Parser directives: only at the very top, ended by anything else (a blank line too)."""
        k = 0
        while k < len(lines):
            start, content = lines[k]
            m = _DIRECTIVE.match(content)
            if m is None:
                break
            key, value = m.group(1).lower(), m.group(2)
            if key == "escape" and value in ("\\", "`"):
                self.escape = value
            elif key == "syntax" and value:
                s = start + m.start(2)
                part = Part(Role.IMAGE, value, self.loc.span(s, s + len(value)))
                ctx = Context(kind="directive", name="syntax", field="# syntax")
                self.refs.append(make_ref(self.path, SOURCE, value, [part], ctx))
            k += 1
        return k

    def _logical(self, lines: list[tuple[int, str]], k: int) -> tuple[_Line, int]:
        """The instruction starting at physical line ``k``, and the line after it."""
        parts: list[str] = []
        segs: list[tuple[int, int]] = []
        length = 0
        first = True
        while k < len(lines):
            start, content = lines[k]
            k += 1
            if first:
                lead = len(content) - len(content.lstrip(" \t"))
                start, content, first = start + lead, content[lead:], False
            else:
                stripped = content.lstrip(" \t")
                if not stripped or stripped.startswith("#"):
                    continue  # BuildKit drops comment and blank lines inside a continuation
            trimmed = content.rstrip(" \t")
            more = trimmed.endswith(self.escape)
            piece = trimmed[: -len(self.escape)] if more else content
            segs.append((length, start))
            parts.append(piece)
            length += len(piece)
            if length > MAX_INSTRUCTION_CHARS:
                line_no = self.loc.line_col(segs[0][1])[0]
                raise DockerfileRejected(
                    f"instruction at line {line_no} longer than {MAX_INSTRUCTION_CHARS} characters"
                )
            if not more:
                break
        return _Line("".join(parts), segs), k

    def _skip_heredocs(self, line: _Line, lines: list[tuple[int, str]], k: int) -> int:
        """Skip the bodies of ``<<EOF`` heredocs opened by ``line``: they are file or script
        content, and a ``FROM`` inside one is not an instruction."""
        for m in _WORD.finditer(line.text):
            h = _HEREDOC.fullmatch(m.group())
            if h is None:
                continue
            dash, name = h.group(1), h.group(3)
            while k < len(lines):
                content = lines[k][1]
                k += 1
                if (content.lstrip("\t") if dash else content) == name:
                    break
        return k

    # --- instructions ---------------------------------------------------------------------

    def _dispatch(self, line: _Line, at: int) -> str:
        words = [(m.start(), m.end()) for m in _WORD.finditer(line.text, at)]
        if not words:
            return ""
        keyword = line.text[words[0][0] : words[0][1]].upper()
        rest = words[1:]
        if keyword == "FROM":
            self._from(line, rest)
        elif keyword == "ARG":
            self._arg(line, words[0][1])
        elif keyword == "COPY":
            for s, e in self._flags(line, rest):
                if line.text.startswith("--from=", s):
                    self._from_flag(line, s + len("--from="), e, "COPY --from")
        elif keyword == "RUN":
            for s, e in self._flags(line, rest):
                if line.text.startswith("--mount=", s):
                    self._mount(line, s + len("--mount="), e)
        elif keyword == "ONBUILD" and rest:
            return self._dispatch(line, rest[0][0])
        return keyword

    @staticmethod
    def _flags(line: _Line, words: list[tuple[int, int]]) -> list[tuple[int, int]]:
        out = []
        for s, e in words:
            if not line.text.startswith("--", s):
                break
            out.append((s, e))
        return out

    def _from(self, line: _Line, words: list[tuple[int, int]]) -> None:
        flags = self._flags(line, words)
        words = words[len(flags) :]
        prior = {s.name for s in self.stages if s.name}
        stage = _Stage(index=len(self.stages))
        if len(words) >= 3 and line.text[words[1][0] : words[1][1]].lower() == "as":
            stage.name = line.text[words[2][0] : words[2][1]].lower()
        self.stages.append(stage)
        self.stage = stage
        if not words:
            return
        s, e = words[0]
        ctx = Context(kind="stage", name=stage.name or str(stage.index), field="FROM")
        ref = self._ref(line, s, e, ctx=ctx, lookup=self._lookup(self.globals), stages=prior)
        if ref is not None:
            self.refs.append(ref)

    def _arg(self, line: _Line, at: int) -> None:
        """``ARG NAME[=default] ...``; a default may use earlier ``ARG``s of the same scope.
        Inside a stage, ``ARG NAME`` without default brings the global default in."""
        scope = self.globals if self.stage is None else self.stage.env
        for m in _ARG_WORD.finditer(line.text, at):
            word = m.group()
            name, eq, _ = word.partition("=")
            if not _ARG_NAME.fullmatch(name):
                continue
            if not eq:
                scope[name] = self.globals.get(name) if self.stage is not None else None
                continue
            vs, ve = m.start() + len(name) + 1, m.end()
            quote = ""
            if ve - vs >= 2 and line.text[vs] in "\"'" and line.text[ve - 1] == line.text[vs]:
                quote, vs, ve = line.text[vs], vs + 1, ve - 1
            pieces = line.pieces(vs, ve)
            one = Piece(line.text[vs:ve], pieces[0].start if len(pieces) == 1 else -1, quote)
            if quote == "'" or "$" not in one.text:
                scope[name] = [one] if one.text else []
                continue
            try:
                scope[name] = expand(one, self._lookup(scope))
            except Unresolved as exc:
                scope[name] = exc

    def _from_flag(self, line: _Line, s: int, e: int, what: str) -> None:
        value = line.text[s:e]
        if not value or value.isdigit():
            return  # a stage index
        stage = self.stage
        ctx = Context(
            kind="stage",
            name=(stage.name or str(stage.index)) if stage else None,
            field=what,
        )
        lookup = self._lookup(dict(stage.env if stage else self.globals))  # as of this line
        self.pending.append(
            _Pending(
                value.lower(),
                lambda: self._ref(line, s, e, ctx=ctx, lookup=lookup, stages=set(), index_ok=False),
            )
        )

    def _mount(self, line: _Line, s: int, e: int) -> None:
        """``--mount=type=bind,from=image,source=/x,target=/y``: the ``from`` field."""
        at = s
        for item in line.text[s:e].split(","):
            if item.startswith("from="):
                self._from_flag(line, at + len("from="), at + len(item), "RUN --mount from")
            at += len(item) + 1

    def _lookup(self, env: _Env) -> Callable[[str], list[Piece] | None]:
        def lookup(name: str) -> list[Piece] | None:
            value = env.get(name)
            if isinstance(value, Unresolved):
                raise value
            if value is None and name in _PLATFORM_ARGS:
                raise Unresolved(name, "set by the builder for each platform", missing=True)
            return value

        return lookup

    # --- references ---------------------------------------------------------------------

    def _ref(
        self,
        line: _Line,
        s: int,
        e: int,
        *,
        ctx: Context,
        lookup: Callable[[str], list[Piece] | None],
        stages: Collection[str | None],
        index_ok: bool = True,
    ) -> ImageRef | None:
        """The reference written at ``line.text[s:e]``, expanded; None for a stage or scratch."""
        written = line.text[s:e]
        if written.lower() in stages or written.lower() == "scratch":
            return None
        pieces = line.pieces(s, e)
        one = pieces[0] if len(pieces) == 1 else Piece(written, -1)
        where = self.loc.span(pieces[0].start, pieces[-1].start + len(pieces[-1].text))
        as_written = Part(Role.IMAGE, written, where, raw=one.start >= 0)
        if "$" not in written:
            return make_ref(self.path, SOURCE, written, [as_written], ctx)
        try:
            value = expand(one, lookup)
        except Unresolved as exc:
            skip = Skip.VARIABLE if exc.missing else Skip.TEMPLATED
            return make_ref(self.path, SOURCE, written, [as_written], ctx, skip=skip, detail=str(exc))
        text = joined(value)
        if text.lower() in stages or text.lower() == "scratch":
            return None
        if not index_ok and text.isdigit():
            return None
        traced = traced_parts(value, self.loc)
        parts = traced or (dataclasses.replace(as_written, text=text, raw=False),)
        ctx = dataclasses.replace(ctx, notes=(*ctx.notes, f"expanded from {written}"))
        ref = make_ref(self.path, SOURCE, text, parts, ctx)
        return dataclasses.replace(ref, line=where.line, column=where.column)

    def _mark_final(self) -> None:
        """Note the last ``FROM`` image: it is what the build ships (Renovate's ``final``)."""
        last_stage = str(self.stages[-1].name or self.stages[-1].index) if self.stages else None
        for i in range(len(self.refs) - 1, -1, -1):
            r = self.refs[i]
            if r.context.field == "FROM":
                if r.context.name == last_stage:
                    ctx = dataclasses.replace(r.context, notes=(*r.context.notes, "final stage"))
                    self.refs[i] = dataclasses.replace(r, context=ctx)
                break
