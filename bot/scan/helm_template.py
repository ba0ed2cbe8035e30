"""Helm chart templates (``templates/**``, ``.tpl`` helpers): Go templates, not YAML.

They are read line by line: a literal ``image: nginx:1.27`` (plain, quoted, or as a list item)
is a reference with its exact span; a templated one (``image: "{{ .Values.image.repository }}:
{{ .Values.image.tag }}"``) is reported as ``Skip.TEMPLATED`` with the expression, so the scan
says what it could not check. The chart's values are the Helm values finder's business.

:func:`image_lines` is the line reader itself, for any templated text: the Jinja finder reuses it
for ``*.j2`` files (with ``from_lines=True`` for Dockerfile templates).

A template file is claimed only when it holds ``{{`` in its head (or is a ``.tpl``): a plain
manifest that happens to sit in a ``templates/`` folder is YAML, read with real structure by the
Kubernetes finder. Chart.yaml cannot be checked from ``claims`` (no repository access there).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

import yaml

from bot.model import Context, ImageRef, Part, Role, Skip, Source, Span
from bot.scan.common import make_ref
from bot.scan.text import Locator

SOURCE = Source.HELM_TEMPLATE

_TEMPLATES = re.compile(r"(?:^|/)templates/")
_IMAGE = re.compile(r"^([ \t]*)(-[ \t]+)?([\"']?)image\3[ \t]*:(?:[ \t]+|$)(.*)$", re.M)
_FROM = re.compile(r"^[ \t]*FROM[ \t]+(?:--\S+[ \t]+)*((?:\{\{.*?\}\}|[^\s{]|\{(?!\{))+)", re.M | re.I)
_KIND = re.compile(r"^kind[ \t]*:[ \t]*[\"']?([A-Za-z0-9]+)", re.M)
_NAME = re.compile(r"^([ \t]*-[ \t]+)name[ \t]*:[ \t]*[\"']?([^\s\"'#{}]+)", re.M)
_DOC = re.compile(r"^---", re.M)
_TEMPLATE_ONLY = re.compile(r"^\{\{-?\s*(?:if|else|end|with|range|/\*)\b")


def claims(path: str, head: bytes) -> bool:
    """A ``.tpl`` helper, or a YAML file under a ``templates/`` folder holding ``{{``."""
    if "templates/" not in path:
        return False
    low = path.lower()
    if not _TEMPLATES.search(low):
        return False
    if low.endswith(".tpl"):
        return True
    return low.endswith((".yaml", ".yml")) and b"{{" in head


def find(text: str, path: str, repo: object = None) -> Iterator[ImageRef]:
    """The ``image:`` lines of a chart template, in file order; a templated one built only from
    ``.Values`` paths the chart's ``values.yaml`` sets literally is resolved (:class:`_Values`)."""
    values: _Values | None = None
    for ref in image_lines(text, path, SOURCE):
        if ref.skip is Skip.TEMPLATED and ".Values." in ref.text and ref.parts[0].raw:
            if values is None:
                values = _Values(path, repo, text.isascii())
            yield values.resolve(ref)
        else:
            yield ref


_EXPR = re.compile(r"\{\{-?\s*\.Values\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)\s*-?\}\}")


class _Values:
    """The chart's ``values.yaml`` (beside ``templates/``), read once, for resolving
    ``{{ .Values.a.b }}`` pieces: each must be a literal, non-empty string there, and the
    reference's registry, repository, tag and digest each written in one place (a values scalar
    or the template's own text). A reference the Helm values finder already reports from the
    same scalars is not reported twice: the template line says where it is."""

    def __init__(self, path: str, repo: object, ascii_text: bool) -> None:
        import posixpath

        chart = path.split("templates/", 1)[0].rstrip("/")
        self.path = posixpath.join(chart, "values.yaml") if chart else "values.yaml"
        read = getattr(repo, "read_text", None)
        self.text = read(self.path) if read is not None else None
        self.repo = repo
        self.ascii = ascii_text  # literal pieces of the template are located by character count
        self._root: object = None
        self._reported: set[tuple[int, int]] | None = None

    def _scalar(self, keys: list[str]) -> tuple[str, int, Part] | None:
        from bot.scan.yamlsrc import YamlRejected, documents, get_path, text_of

        if self.text is None:
            return None
        if self._root is None:
            try:
                docs = documents(self.text)
            except YamlRejected:
                docs = []
            self._root = docs[0] if docs else False
        if not self._root:
            return None
        doc = self._root
        node = get_path(doc.root, *keys)  # type: ignore[attr-defined]
        value = text_of(node, numeric=True)
        if not value or "{{" in value:
            return None
        part = doc.part(node, Role.IMAGE, self.path)  # type: ignore[attr-defined]
        if not part.raw:
            return None
        return value, part.span.start, part

    def reported(self) -> set[tuple[int, int]]:
        """Spans of the parts the Helm values finder reports in ``values.yaml``."""
        if self._reported is None:
            from bot.scan import helm_values

            self._reported = set()
            if self.text is not None:
                try:
                    refs = list(helm_values.find(self.text, self.path, self.repo))  # type: ignore[arg-type]
                except Exception:  # noqa: BLE001 - an unreadable values file only means no dedupe
                    refs = []
                self._reported = {(p.span.start, p.span.end) for r in refs for p in r.parts if p.path is None}
        return self._reported

    def resolve(self, ref: ImageRef) -> ImageRef:
        import dataclasses

        from bot.scan.interpolate import components

        written = ref.parts[0]
        pieces: list[tuple[str, Part | None, int]] = []  # (text, values part, offset in template value)
        pos = 0
        for m in _EXPR.finditer(ref.text):
            if m.start() > pos:
                pieces.append((ref.text[pos : m.start()], None, pos))
            got = self._scalar(m.group(1).split("."))
            if got is None:
                return ref
            pieces.append((got[0], got[2], m.start()))
            pos = m.end()
        if pos < len(ref.text):
            pieces.append((ref.text[pos:], None, pos))
        if "{{" in "".join(t for t, p, _o in pieces if p is None):
            return ref  # other template logic remains
        text = "".join(t for t, _p, _o in pieces)
        bounds, at = [], 0
        for t, _p, _o in pieces:
            bounds.append(at)
            at += len(t)
        parts: list[Part] = []
        comps = components(text)
        if len(comps) > 1 and comps[0][0] is Role.REGISTRY:
            joined = (Role.REPOSITORY, 0, comps[1][2])  # registry and path in one place: one part
            if any(
                b <= 0 and comps[1][2] <= b + len(t) for b, (t, _p, _o) in zip(bounds, pieces, strict=True)
            ):
                comps = [joined, *comps[2:]]
        for role, s, e in comps:
            hit = None
            for k, (t, vpart, off) in enumerate(pieces):
                b = bounds[k]
                if vpart is not None and (s, e) == (b, b + len(t)):
                    hit = dataclasses.replace(vpart, role=role)
                elif vpart is None and self.ascii and b <= s and e <= b + len(t):
                    start = written.span.start + off + (s - b)  # template text is ASCII-safe here
                    span = Span(start, start + e - s, written.span.line, written.span.column + off + s - b)
                    hit = Part(role, text[s:e], span, written.quote, written.raw)
            if hit is None:
                return dataclasses.replace(
                    ref, detail=f"{ref.detail}; {text!r} in values, not editable piece by piece"
                )
            parts.append(hit)
        from_values = [p for p in parts if p.path is not None]
        if from_values and all((p.span.start, p.span.end) in self.reported() for p in from_values):
            return dataclasses.replace(ref, detail=f"{ref.detail}; renders {text}, reported from {self.path}")
        notes = (*ref.context.notes, f"resolved from {self.path}")
        ctx = dataclasses.replace(ref.context, notes=notes)
        out = make_ref(ref.path, SOURCE, text, parts, ctx)
        return dataclasses.replace(out, line=ref.line, column=ref.column)


def image_lines(text: str, path: str, source: Source, *, from_lines: bool = False) -> Iterator[ImageRef]:
    """References on ``image:`` lines (and ``FROM`` lines with ``from_lines``) of a template.

    The value ends at the line's end, at a closing quote, or at a `` #`` comment outside
    ``{{ }}``. A value that is all template (``{{ toYaml .Values.image }}``, ``{{- if }}``)
    is skipped as templated; a line whose value starts a nested map is not a reference.
    """
    if "image" not in text and not (from_lines and "FROM" in text.upper()):
        return
    loc = Locator(text)
    index = _Index(text)
    found: list[tuple[int, int, Context]] = []
    for m in _IMAGE.finditer(text):
        indent = len(m.group(1))
        item = indent + len(m.group(2) or "")  # column where the list item's keys start
        ctx = _context(text, m.start(), item, index, own_item=bool(m.group(2)))
        found.append((m.start(4), m.end(4), ctx))
    if from_lines:
        for m in _FROM.finditer(text):
            found.append((m.start(1), m.end(1), Context(kind="stage", field="FROM")))
    for s, e, ctx in sorted(found, key=lambda f: f[0]):
        ref = _value(text, s, e, path=path, source=source, loc=loc, ctx=ctx)
        if ref is not None:
            yield ref


def _value(
    text: str, s: int, e: int, *, path: str, source: Source, loc: Locator, ctx: Context
) -> ImageRef | None:
    raw = text[s:e].rstrip(" \t\r")
    if not raw or raw[0] in "|>&*[" or (raw[0] == "{" and not raw.startswith("{{")):
        return None  # a nested map or block follows: not a string on this line
    quote = raw[0] if raw[0] in "\"'" else ""
    if quote:
        close = _closing_quote(raw, quote)
        if close < 0:
            return None  # an unterminated quote: not something we can read
        written, start = raw[1:close], s + 1
        value = _unquote(written, quote)
        exact = value == written
    else:
        written = value = _plain(raw)
        start, exact = s, True
    if _TEMPLATE_ONLY.match(value) and value.endswith("}}") and value.count("{{") == 1:
        return None  # control flow, not a value
    part = Part(Role.IMAGE, value, loc.span(start, start + len(written)), quote, exact)
    return make_ref(path, source, value, [part], ctx)


def _closing_quote(raw: str, quote: str) -> int:
    """Index of the quote closing ``raw[0]``: ``''`` inside single quotes and ``\\"`` inside
    double quotes do not close; -1 when nothing does."""
    i = 1
    while i < len(raw):
        c = raw[i]
        if quote == '"' and c == "\\":
            i += 2
            continue
        if c == quote:
            if quote == "'" and raw.startswith("''", i):
                i += 2
                continue
            return i
        i += 1
    return -1


def _unquote(written: str, quote: str) -> str:
    """The YAML value of a quoted scalar's inside (escapes decoded), so that
    ``"nginx:latest\\nFROM evil"`` is judged with its real newline."""
    if quote == "'":
        return written.replace("''", "'")
    if "\\" not in written:
        return written
    try:
        value = yaml.safe_load(f'"{written}"')
    except yaml.YAMLError:
        return written
    return value if isinstance(value, str) else written


def _plain(raw: str) -> str:
    """A plain value up to a `` #`` comment that is not inside ``{{ }}``."""
    depth = 0
    for i, c in enumerate(raw):
        if raw.startswith("{{", i):
            depth += 1
        elif raw.startswith("}}", i) and depth:
            depth -= 1
        elif c == "#" and depth == 0 and i > 0 and raw[i - 1] in " \t":
            return raw[:i].rstrip(" \t")
    return raw


def _context(text: str, at: int, item: int, index: _Index, *, own_item: bool) -> Context:
    """The manifest kind of the document the line is in, and the container name when the same
    list item says ``- name: x`` before the image (``own_item``: the image line opens the item)."""
    doc_start = index.docs[bisect.bisect_right(index.docs, at) - 1] if index.docs else 0
    k = bisect.bisect_right(index.kind_at, at) - 1
    kind = index.kinds[k][1] if k >= 0 and index.kind_at[k] >= doc_start else None
    name = None
    for pos, col, dash, value in reversed(index.names[: bisect.bisect_right(index.name_at, at)]):
        if pos < doc_start:
            break
        if col == item and not own_item:
            between = re.compile(rf"^[ \t]{{{dash}}}-[ \t]", re.M)
            if between.search(text, pos + 1, at) is None:
                name = value
            break
    return Context(kind=kind, container=name, field="image")


class _Index:
    """Positions of documents, kinds and ``- name:`` items, for :func:`_context`."""

    def __init__(self, text: str) -> None:
        self.docs = [0, *(m.start() for m in _DOC.finditer(text))]
        self.kinds = [(m.start(), m.group(1)) for m in _KIND.finditer(text)]
        self.kind_at = [p for p, _ in self.kinds]
        self.names = [
            (m.start(), len(m.group(1)), len(m.group(1)) - len(m.group(1).lstrip(" \t")), m.group(2))
            for m in _NAME.finditer(text)
        ]
        self.name_at = [n[0] for n in self.names]
