"""Ansible variables in image references, traced to the file and bytes that define them.

``image: "{{ app_image_name }}:{{ app_image_version }}"`` pulls what a role's
``defaults/main.yml`` (or ``vars/``, an inventory's ``group_vars``/``host_vars``, the play's
``vars:``) says; a fix must edit that definition. :class:`Resolver` expands the simple Jinja forms
(``{{ name }}``, ``{{ a.b }}``, ``{{ name | default('literal') }}``) into
:class:`~bot.scan.interpolate.Piece` runs and lets :func:`~bot.scan.interpolate.traced_parts`
decide which written scalars hold which component; parts in other files get ``Part.path``.

Precedence, lowest first (Ansible's order, restricted to what a repository shows):

1. role ``defaults/`` (``main.yml``, ``main.yaml``, ``main`` or the files of ``main/``);
2. inventory ``group_vars/all``;
3. inventory ``group_vars/<group>``; 4. ``host_vars/<host>`` (both depend on the host);
5. play ``vars:``; 6. play ``vars_files:`` (literal paths);
7. role ``vars/``;
8. ``vars:`` of enclosing blocks (inner wins); 9. the task's own ``vars:``.

The highest level that defines a variable wins and the others are noted. When that cannot be
decided from the repository, the reference is skipped (``variable-without-default``) with the
places listed rather than guessed: two definitions at the same level (two inventories' ``all``,
two ``defaults/main/`` files), or a group/host definition next to any other (hosts outside the
group see another value). Inventory folders are looked for in every ancestor of the file:
``group_vars/``, ``host_vars/``, ``inventory*/`` and ``inventories/*/``.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.model import Context, ImageRef, Part, Role, Skip, Span
from bot.scan import Repo, decode
from bot.scan.common import make_ref
from bot.scan.interpolate import Piece, Unresolved, joined, sub, traced_parts
from bot.scan.text import Locator
from bot.scan.yamlsrc import FLOAT, INT, Doc, YamlRejected, documents, get, text_of

MAX_DEPTH = 8  # variables defined through variables; real roles use one or two levels
MAX_INVENTORIES = 32  # inventory folders looked at per file
_STRIDE = 1 << 40  # offsets of file i live in [i * _STRIDE, (i + 1) * _STRIDE)

ROLE_DEFAULTS, GROUP_ALL, GROUP, HOST, PLAY_VARS, PLAY_VARS_FILES, ROLE_VARS, BLOCK_VARS, TASK_VARS = range(
    1, 10
)
_PER_HOST = frozenset({GROUP, HOST})
_LEVEL_NAMES = {
    ROLE_DEFAULTS: "role defaults",
    GROUP_ALL: "group_vars/all",
    GROUP: "group_vars",
    HOST: "host_vars",
    PLAY_VARS: "play vars",
    PLAY_VARS_FILES: "play vars_files",
    ROLE_VARS: "role vars",
    BLOCK_VARS: "block vars",
    TASK_VARS: "task vars",
}

_EXPR = re.compile(r"\{\{-?(.*?)-?\}\}", re.S)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_SIMPLE = re.compile(
    rf"\s*(?P<name>{_NAME}(?:\.{_NAME})*)\s*"
    r"(?:\|\s*(?:default|d)\s*\(\s*(?P<q>['\"])(?P<lit>[^'\"\\]*)(?P=q)\s*"
    r"(?:,\s*(?P<empty>true|True|false|False)\s*)?\)\s*)?$"
)
_VAR_SUFFIXES = (".yml", ".yaml", ".json")


@dataclass(frozen=True, slots=True)
class _File:
    path: str | None  # None: the file being scanned
    text: str
    loc: Locator


@dataclass(frozen=True, slots=True)
class _Def:
    """One definition of a top-level variable: where, at which level, and its value node."""

    name: str
    level: int
    depth: int  # nesting of block/task vars (inner wins)
    where: str  # "roles/app/defaults/main.yml:3", for notes and details
    scope: str  # what it depends on: an inventory folder, a group, a host ("" when global)
    doc: Doc
    node: Node
    file: int  # index into Resolver.files


@dataclass(slots=True)
class _Scope:
    """A ``vars:`` block of this file and the character range it applies to."""

    start: int
    end: int
    level: int
    depth: int
    vars: MappingNode
    doc: Doc


@dataclass(slots=True)
class _Trace:
    """What one resolution used, for the reference's notes."""

    notes: list[str] = field(default_factory=list)


class _NotString(Unresolved):
    """A variable whose value is a number, boolean or collection where a string belongs."""


def role_dir(path: str, markers: Sequence[str]) -> str | None:
    """The role folder of a file in one of its ``markers`` folders (``tasks``, ``handlers``,
    ``templates``): ``roles/app/tasks/main.yml`` -> ``roles/app``; None outside any."""
    segs = path.split("/")[:-1]
    for i in range(len(segs) - 1, -1, -1):
        if segs[i] in markers:
            return "/".join(segs[:i])
    return None


class _Flat(Locator):
    """Spans in the resolver's joined offset space (mapped back to files afterwards)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("")

    def span(self, start: int, end: int) -> Span:
        return Span(start, end, 0, 0)


class Resolver:
    """The variables visible from one file (a task list, a playbook, a role template)."""

    def __init__(
        self, path: str, text: str, repo: Repo, *, role: str | None, docs: Sequence[Doc] = ()
    ) -> None:
        self.path, self.repo, self.role = path, repo, role
        self.files: list[_File] = [_File(None, text, Locator(text))]
        self._line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
        self._scopes: list[_Scope] = []
        self._vars_files: list[tuple[int, int, str]] = []  # (play range, path) of vars_files
        for doc in docs:
            self._scopes += _scopes(doc)
            self._add_vars_files(doc)
        self._external: list[_Def] | None = None
        self._parsed: dict[str, tuple[int, list[Doc]] | None] = {}
        self._broken: list[str] = []

    # --- the reference ------------------------------------------------------------------

    def resolve(self, ref: ImageRef) -> ImageRef:
        """``ref`` (a templated reference of this file) with its variables expanded and its
        parts moved to the definitions; unchanged when it holds no ``{{``."""
        if "{{" not in ref.text or not ref.parts or any(p.path for p in ref.parts):
            return ref
        at = self._offset(ref.parts[0].span)
        trace = _Trace()
        try:
            expanded = [self._expand(self._piece(p), at, trace, 0) for p in ref.parts]
        except Unresolved as exc:
            skip = (
                Skip.NON_STRING
                if isinstance(exc, _NotString)
                else Skip.VARIABLE
                if exc.missing
                else Skip.TEMPLATED
            )
            detail = f"{exc.name}: {exc.why}" if exc.name else exc.why
            ctx = _noted(ref.context, trace.notes)
            return dataclasses.replace(ref, skip=skip, detail=detail, reference=None, context=ctx)
        if len(ref.parts) == 1:
            text = joined(expanded[0])
            parts = self._parts(expanded[0], None)
            fallback = [dataclasses.replace(ref.parts[0], text=text, raw=False)]
        else:  # docker_image name + tag: each field keeps its role, and is edited whole
            name, tag = joined(expanded[0]), joined(expanded[1])
            keep_tag = ":" not in name.rpartition("/")[2] and "@" not in name
            text = f"{name}:{tag}" if keep_tag and tag else name
            used = list(zip(ref.parts, expanded, strict=True))[: 2 if keep_tag and tag else 1]
            parts = []
            for p, pieces in used:
                traced = self._parts(pieces, p.role)
                parts = None if parts is None or traced is None else [*parts, *traced]
            fallback = [dataclasses.replace(p, text=joined(x), raw=False) for p, x in used]
        notes = [f"expanded from {ref.text}", *trace.notes]
        out = make_ref(ref.path, ref.source, text, parts or fallback, _noted(ref.context, notes))
        return dataclasses.replace(out, line=ref.line, column=ref.column)

    def _offset(self, span: Span) -> int:
        return self._line_starts[span.line - 1] + span.column - 1

    def _piece(self, part: Part) -> Piece:
        return Piece(part.text, self._offset(part.span) if part.raw else -1, part.quote)

    def _parts(self, pieces: list[Piece], role: Role | None) -> list[Part] | None:
        """Parts in their own files; with ``role``, the value must be written whole in one place."""
        traced = traced_parts(pieces, _Flat())
        if traced is None or (role is not None and len(traced) != 1):
            return None
        out = []
        for p in traced:
            f = self.files[p.span.start // _STRIDE]
            base = (p.span.start // _STRIDE) * _STRIDE
            span = f.loc.span(p.span.start - base, p.span.end - base)
            out.append(Part(role or p.role, p.text, span, p.quote, True, f.path))
        return out

    # --- Jinja --------------------------------------------------------------------------

    def _expand(self, piece: Piece, at: int, trace: _Trace, depth: int) -> list[Piece]:
        """``piece`` with its ``{{ ... }}`` expressions replaced by the pieces of their values."""
        if depth > MAX_DEPTH:
            raise Unresolved("", "variables nested too deeply")
        text = piece.text
        if "{%" in text or "{#" in text:
            raise Unresolved("", f"Jinja statement in {text[:80]!r}")
        out: list[Piece] = []
        pos = 0
        for m in _EXPR.finditer(text):
            out.append(sub(piece, pos, m.start()))
            simple = _SIMPLE.match(m.group(1))
            if simple is None:
                raise Unresolved("", f"{m.group()[:80]} is not a plain variable or default(): not resolved")
            name = simple.group("name")
            value = self._value(name, at, trace, depth)
            empty_too = (simple.group("empty") or "").lower() == "true"
            if value is None or (empty_too and not joined(value)):
                if simple.group("q") is None:
                    raise Unresolved(name, self._undefined(name), missing=True)
                s = m.start(1) + simple.start("lit")
                lit = sub(piece, s, s + len(simple.group("lit")))
                out.append(Piece(lit.text, lit.start, simple.group("q")))
                trace.notes.append(f"{name} is not defined: default {simple.group('lit')!r} used")
            else:
                out.extend(value)
            pos = m.end()
        out.append(sub(piece, pos, len(text)))
        if "{{" in joined(out[-1:]) or "}}" in joined(out[-1:]):
            raise Unresolved("", f"unterminated Jinja expression in {text[:80]!r}")
        return [p for p in out if p.text]

    def _undefined(self, name: str) -> str:
        where = (
            "the play or task vars, role defaults/vars" if self.role is not None else "the play or task vars"
        )
        broken = f"; unreadable: {', '.join(self._broken)}" if self._broken else ""
        return (
            f"not defined in {where} or any inventory group_vars/host_vars in the repository "
            f"(extra vars or another inventory may set it){broken}"
        )

    def _value(self, dotted: str, at: int, trace: _Trace, depth: int) -> list[Piece] | None:
        """The expanded value of ``dotted`` (``app.image``) as seen at character ``at`` of this
        file, None when nothing defines it."""
        name, *keys = dotted.split(".")
        found = self._definitions(name, at)
        if not found:
            return None
        winner = _decide(name, found)
        node: Node | None = winner.node
        for key in keys:
            node = get(node, key)
            if node is None:
                raise Unresolved(dotted, f"{winner.where} defines {name} without a {key!r} key", missing=True)
        others = [d.where for d in found if d is not winner]
        trace.notes.append(
            f"{dotted} from {winner.where} ({_LEVEL_NAMES[winner.level]})"
            + (f"; also set, with lower precedence, in {', '.join(others)}" if others else "")
        )
        piece = self._scalar(dotted, winner, node)
        if "{{" in piece.text and winner.node.tag != "!unsafe":
            return self._expand(piece, at, trace, depth + 1)
        return [piece] if piece.text else []

    def _scalar(self, name: str, d: _Def, node: Node | None) -> Piece:
        """The value written at ``node`` as a piece in the joined offset space."""
        if not isinstance(node, ScalarNode):
            raise _NotString(
                name, f"{d.where}: a {'list' if isinstance(node, SequenceNode) else 'mapping'}, not a string"
            )
        if node.tag == "!vault":
            raise Unresolved(name, f"{d.where}: vault-encrypted", missing=True)
        text = text_of(node, numeric=True)
        if text is None and node.tag != "!unsafe":
            raise _NotString(name, f"{d.where}: {node.value!r} is not a string")
        part = d.doc.part(node, Role.IMAGE)
        start = d.doc.bounds(node)[0] + (1 if part.quote else 0)
        if node.tag in (INT, FLOAT):
            try:
                shown = str(yaml.safe_load(node.value))
            except yaml.YAMLError:
                shown = node.value
            if shown != node.value:  # 1.10 is the float 1.1 once Jinja renders it
                raise _NotString(
                    name, f"{d.where}: unquoted {node.value} is read as the number {shown}: quote it"
                )
        offset = d.file * _STRIDE + start if part.raw else -1
        return Piece(node.value, offset, part.quote, scalar=True)

    # --- where variables are defined ------------------------------------------------------

    def _definitions(self, name: str, at: int) -> list[_Def]:
        out = [d for d in self._external_defs() if d.name == name]
        for s in self._scopes:
            if not s.start <= at < s.end:
                continue
            for k, v in s.vars.value:
                if isinstance(k, ScalarNode) and k.value == name:
                    where = f"{self.path}:{s.doc.loc.line_col(s.doc.start(k))[0]}"
                    out.append(_Def(name, s.level, s.depth, where, "", s.doc, v, 0))
        for play_start, play_end, vpath in self._vars_files:
            if play_start <= at < play_end:
                out += [d for d in self._file_defs(vpath, PLAY_VARS_FILES, "") if d.name == name]
        return out

    def _external_defs(self) -> list[_Def]:
        if self._external is None:
            defs: list[_Def] = []
            if self.role is not None:
                for sub_dir, level in (("defaults", ROLE_DEFAULTS), ("vars", ROLE_VARS)):
                    for vpath in self._role_files(
                        posixpath.join(self.role, sub_dir) if self.role else sub_dir
                    ):
                        defs += self._file_defs(vpath, level, "")
            for inv in self._inventories():
                for kind in ("group_vars", "host_vars"):
                    d = f"{inv}/{kind}" if inv else kind
                    for entry in self.repo.listdir(d):
                        stem = _stem(entry)
                        level = HOST if kind == "host_vars" else GROUP_ALL if stem == "all" else GROUP
                        scope = f"{inv or '.'}:{kind}/{stem}"
                        for vpath in self._entry_files(f"{d}/{entry}"):
                            defs += self._file_defs(vpath, level, scope)
            self._external = defs
        return self._external

    def _role_files(self, d: str) -> Iterator[str]:
        names = self.repo.listdir(d)
        for n in ("main.yml", "main.yaml", "main.json"):
            if n in names:
                yield f"{d}/{n}"
        if "main" in names:
            yield from self._entry_files(f"{d}/main")

    def _entry_files(self, p: str) -> Iterator[str]:
        """A vars file, or the files of a vars folder (one level, sorted)."""
        inside = self.repo.listdir(p)
        if not inside:
            if "." not in p.rpartition("/")[2] or p.endswith(_VAR_SUFFIXES):
                yield p
            return
        for n in inside:
            if n.endswith(_VAR_SUFFIXES) or "." not in n:
                yield f"{p}/{n}"

    def _inventories(self) -> list[str]:
        """Folders holding ``group_vars``/``host_vars`` in the file's ancestors, nearest first."""
        out: list[str] = []
        d = posixpath.dirname(self.path)
        while True:
            names = self.repo.listdir(d)
            if "group_vars" in names or "host_vars" in names:
                out.append(d)
            for n in names:
                if not n.startswith("inventor"):
                    continue
                inv = f"{d}/{n}" if d else n
                inner = self.repo.listdir(inv)
                if "group_vars" in inner or "host_vars" in inner:
                    out.append(inv)
                for child in inner[:MAX_INVENTORIES]:
                    deeper = self.repo.listdir(f"{inv}/{child}")
                    if "group_vars" in deeper or "host_vars" in deeper:
                        out.append(f"{inv}/{child}")
            if not d or len(out) > MAX_INVENTORIES:
                break
            d = posixpath.dirname(d)
        return list(dict.fromkeys(out))[:MAX_INVENTORIES]

    def _file_defs(self, vpath: str, level: int, scope: str) -> list[_Def]:
        loaded = self._load(vpath)
        if loaded is None:
            return []
        index, docs = loaded
        out = []
        for doc in docs[:1]:
            if not isinstance(doc.root, MappingNode):
                continue
            for k, v in doc.root.value:
                if isinstance(k, ScalarNode):
                    where = f"{vpath}:{k.start_mark.line + 1}"
                    out.append(_Def(k.value, level, 0, where, scope, doc, v, index))
        return out

    def _load(self, vpath: str) -> tuple[int, list[Doc]] | None:
        """Parse a vars file once; its BOM is counted so that spans stay byte-exact."""
        if vpath not in self._parsed:
            self._parsed[vpath] = None
            data = _read_bytes(self.repo, vpath)
            try:
                if data is None:
                    return None
                text, bom = decode(data)
                docs = documents(text)
            except (ValueError, YamlRejected) as exc:
                self._broken.append(f"{vpath} ({exc})")
                return None
            self.files.append(_File(vpath, text, Locator(text, bom)))
            self._parsed[vpath] = (len(self.files) - 1, docs)
        return self._parsed[vpath]

    def _add_vars_files(self, doc: Doc) -> None:
        """Record the literal ``vars_files`` of the plays in ``doc`` (relative to the playbook)."""
        if not isinstance(doc.root, SequenceNode):
            return
        for play in doc.root.value:
            files = get(play, "vars_files")
            if not isinstance(files, SequenceNode):
                continue
            for f in files.value:
                name = text_of(f)
                if name and "{{" not in name and not name.startswith("/"):
                    vpath = posixpath.normpath(posixpath.join(posixpath.dirname(self.path), name))
                    if not vpath.startswith("../"):
                        self._vars_files.append((doc.start(play), doc.base + play.end_mark.index, vpath))


def _read_bytes(repo: Repo, path: str) -> bytes | None:
    read = getattr(repo, "read_bytes", None)
    if read is not None:
        data = read(path)
        return data if isinstance(data, bytes) else None
    text = repo.read_text(path)
    return None if text is None else text.encode("utf-8", "surrogatepass")


def _stem(name: str) -> str:
    for s in _VAR_SUFFIXES:
        if name.endswith(s):
            return name[: -len(s)]
    return name


def _decide(name: str, found: list[_Def]) -> _Def:
    """The definition Ansible uses, or :class:`Unresolved` when the repository cannot say."""
    top = max((d.level, d.depth) for d in found)
    best = [d for d in found if (d.level, d.depth) == top]
    places = ", ".join(d.where for d in found)
    if len(best) > 1:
        scopes = {d.scope for d in best}
        why = "the inventory or host in use" if len(scopes) > 1 else "file order"
        raise Unresolved(
            name,
            f"defined at the same level ({_LEVEL_NAMES[top[0]]}) in {places}: depends on {why}",
            missing=True,
        )
    if best[0].level in _PER_HOST and len(found) > 1:
        raise Unresolved(
            name, f"defined in {places}: which applies depends on the host's groups", missing=True
        )
    return best[0]


def _noted(ctx: Context, notes: Sequence[str]) -> Context:
    return dataclasses.replace(ctx, notes=(*ctx.notes, *dict.fromkeys(notes)))


def _scopes(doc: Doc) -> list[_Scope]:
    """The ``vars:`` of plays, blocks and tasks in a playbook or task list."""
    out: list[_Scope] = []
    root = doc.root
    if not isinstance(root, SequenceNode):
        return out

    def rng(node: Node) -> tuple[int, int]:
        return doc.start(node), doc.base + node.end_mark.index

    def tasks(seq: Node | None, depth: int) -> None:
        if not isinstance(seq, SequenceNode) or depth > MAX_DEPTH:
            return
        for task in seq.value:
            if not isinstance(task, MappingNode):
                continue
            is_block = any(get(task, k) is not None for k in ("block", "rescue", "always"))
            v = get(task, "vars")
            if isinstance(v, MappingNode):
                out.append(_Scope(*rng(task), BLOCK_VARS if is_block else TASK_VARS, depth, v, doc))
            for k in ("block", "rescue", "always"):
                tasks(get(task, k), depth + 1)

    for item in root.value:
        if not isinstance(item, MappingNode):
            continue
        if get(item, "hosts") is not None:
            v = get(item, "vars")
            if isinstance(v, MappingNode):
                out.append(_Scope(*rng(item), PLAY_VARS, 0, v, doc))
            for k in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                tasks(get(item, k), 1)
        else:
            tasks(SequenceNode("tag:yaml.org,2002:seq", [item]), 0)
    return out
