"""GitLab CI finder: ``.gitlab-ci.yml`` and the files it includes.

Reads ``image`` and ``services`` (a string, or a map with ``name``) at the top level, under
``default:`` and in every job, hidden ``.template`` jobs included (they are merged into others
with ``extends``). Included files are scanned on their own: they are claimed by the usual names
(``*.gitlab-ci.yml``, ``.gitlab/ci/*.yml``) or by content.

``$VAR`` / ``${VAR}`` resolve from the job's ``variables:`` and then the file's top-level ones
when those are literals (variables may use other variables); the parts then point at the
variable's value, which is what a fix edits. Predefined or project variables (``$CI_REGISTRY``)
are ``Skip.VARIABLE``, except the dependency-proxy prefix, which GitLab documents as a way to
pull Docker Hub images: ``$CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX/alpine:3.20`` is reported as
``alpine:3.20`` with a note (Renovate does the same).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator

from yaml.nodes import Node, ScalarNode

from bot.model import Context, ImageRef, Role, Skip, Source
from bot.scan import shell
from bot.scan.common import make_ref
from bot.scan.interpolate import (
    MAX_DEPTH,
    Piece,
    Unresolved,
    check_keys,
    expand,
    joined,
    non_string,
    scalar_piece,
    sub,
    traced_parts,
)
from bot.scan.yamlsrc import Doc, documents, get, is_map, is_seq, items, text_of

SOURCE = Source.GITLAB_CI

RESERVED = frozenset(
    {"default", "include", "stages", "variables", "workflow", "image", "services", "cache",
     "before_script", "after_script", "types", "spec"}
)  # fmt: skip
PROXY_NOTE = "pulled through the GitLab dependency proxy"
_PROXY = re.compile(
    r"\$(?:\{CI_DEPENDENCY_PROXY_(?:DIRECT_)?GROUP_IMAGE_PREFIX\}|CI_DEPENDENCY_PROXY_(?:DIRECT_)?GROUP_IMAGE_PREFIX)/"
)
_GITLAB_DIR = re.compile(r"(?:^|/)\.gitlab/ci/.*\.ya?ml$")
_TOP = re.compile(rb"(?m)^(?:stages|image|default|include|workflow|before_script|services)[ \t]*:")


def claims(path: str, head: bytes) -> bool:
    """``.gitlab-ci.yml``, ``*.gitlab-ci.yml``, ``.gitlab/ci/**.yml``; elsewhere, YAML with jobs'
    ``script:`` and a GitLab top-level keyword."""
    if not path.endswith((".yml", ".yaml", ".YML", ".YAML")):
        return False
    low = path.lower()
    if low.rpartition("/")[2].endswith((".gitlab-ci.yml", ".gitlab-ci.yaml")) or _GITLAB_DIR.search(low):
        return True
    return b"script:" in head and _TOP.search(head) is not None


def find(text: str, path: str, repo: object = None) -> Iterator[ImageRef]:
    """The references in a GitLab CI file, in file order."""
    out: list[ImageRef] = []
    for doc in documents(text, lambda c: "image" in c or "services" in c or shell.mentions(c)):
        if is_map(doc.root):
            out.extend(_Reader(doc, path).refs())
    return iter(sorted(out, key=lambda r: (r.line, r.column)))


def _variables(node: Node | None) -> dict[str, ScalarNode | None]:
    """``variables:`` as name -> the scalar holding the value (``{value: x}`` form too); None
    for a value that is not a literal."""
    out: dict[str, ScalarNode | None] = {}
    if not is_map(node):
        return out
    for name, _k, v in items(node):  # type: ignore[arg-type]
        if name is None:
            continue
        if is_map(v):
            flag = get(v, "expand")
            if isinstance(flag, ScalarNode) and flag.value.lower() == "false":
                out[name] = None  # the value is used as written, "$" and all
                continue
        value = get(v, "value") if is_map(v) else v
        literal = isinstance(value, ScalarNode) and text_of(value, numeric=True) is not None
        out[name] = value if literal else None  # type: ignore[assignment]
    return out


class _Reader:
    def __init__(self, doc: Doc, path: str) -> None:
        self.doc = doc
        self.path = path
        self.seen: set[int] = set()
        self.out: list[ImageRef] = []
        self.globals = _variables(get(doc.root, "variables"))

    def refs(self) -> list[ImageRef]:
        root = self.doc.root
        top = Context(kind="default")
        self._holder(root, top, "", self.globals)
        self._holder(get(root, "default"), top, "default.", self.globals)
        for name, _k, job in items(root):  # type: ignore[arg-type]
            if name is None or name in RESERVED or not is_map(job):
                continue
            local = {**self.globals, **_variables(get(job, "variables"))}
            runs_shell = True if get(job, "script") is not None or get(job, "before_script") else None
            self._holder(job, Context(kind="job", name=name, needs_shell=runs_shell), f"{name}.", local)
        for name, _k, job in items(root):  # type: ignore[arg-type]
            if name is not None and (
                name in ("before_script", "after_script") or (name not in RESERVED and is_map(job))
            ):
                self._scripts(job, name)
        self._scripts(get(root, "default"), "default")
        return self.out

    def _scripts(self, node: Node | None, name: str) -> None:
        """``script``/``before_script``/``after_script`` lines: ``docker run|pull`` and the like
        (:mod:`bot.scan.shell`); a top-level ``before_script:`` list is ``node`` itself."""
        blocks = (
            [(name, node)]
            if name in ("before_script", "after_script")
            else [(f"{name}.{key}", get(node, key)) for key in ("before_script", "script", "after_script")]
        )
        for field, block in blocks:
            lines = block.value if is_seq(block) else [block]  # type: ignore[union-attr]
            for i, line in enumerate(lines):
                if not isinstance(line, ScalarNode) or text_of(line) is None or id(line) in self.seen:
                    continue
                self.seen.add(id(line))
                at = Context(kind="job", name=name, field=f"{field}[{i}]" if is_seq(block) else field)
                self.out += shell.commands(line.value, self.path, SOURCE, shell.in_scalar(self.doc, line), at)

    def _holder(self, node: Node | None, ctx: Context, field: str, env: dict[str, ScalarNode | None]) -> None:
        """``image`` and ``services`` of the top level, ``default:`` or a job."""
        if not is_map(node):
            return
        check_keys(node)
        image = get(node, "image")
        if image is not None:
            if is_map(image):
                check_keys(image)
                self._image(get(image, "name"), dataclasses.replace(ctx, field=f"{field}image.name"), env)
            else:
                self._image(image, dataclasses.replace(ctx, field=f"{field}image"), env)
        services = get(node, "services")
        if is_seq(services):
            for i, svc in enumerate(services.value):  # type: ignore[union-attr]
                where = f"{field}services[{i}]"
                if is_map(svc):
                    alias = text_of(get(svc, "alias"))
                    sctx = dataclasses.replace(ctx, container=alias, needs_shell=None, field=f"{where}.name")
                    self._image(get(svc, "name"), sctx, env)
                else:
                    self._image(svc, dataclasses.replace(ctx, needs_shell=None, field=where), env)

    def _image(self, node: Node | None, ctx: Context, env: dict[str, ScalarNode | None]) -> None:
        if node is None or id(node) in self.seen:
            return
        self.seen.add(id(node))
        doc = self.doc
        if not isinstance(node, ScalarNode) or text_of(node) is None:
            self.out.append(non_string(doc, node, self.path, SOURCE, ctx))
            return
        written = doc.part(node, Role.IMAGE)
        piece = scalar_piece(doc, node, written)
        proxy = _PROXY.match(piece.text)
        if proxy:
            piece = sub(piece, proxy.end(), len(piece.text))
            ctx = dataclasses.replace(ctx, notes=(*ctx.notes, PROXY_NOTE))
            if piece.start >= 0:
                span = doc.loc.span(piece.start, piece.start + len(piece.text))
                written = dataclasses.replace(written, text=piece.text, span=span)
        if "$" not in piece.text:
            self.out.append(make_ref(self.path, SOURCE, piece.text, [written], ctx))
            return
        try:
            pieces = expand(piece, self._lookup(env, 0), dollar_escape=True)
        except Unresolved as exc:
            skip = Skip.VARIABLE if exc.missing else Skip.TEMPLATED
            self.out.append(
                make_ref(self.path, SOURCE, piece.text, [written], ctx, skip=skip, detail=str(exc))
            )
            return
        text = joined(pieces)
        parts = traced_parts(pieces, doc.loc) or (dataclasses.replace(written, text=text, raw=False),)
        ctx = dataclasses.replace(ctx, notes=(*ctx.notes, f"expanded from {piece.text}"))
        why = "a literal '$' is not allowed in a reference" if "$" in text else None  # from "$$"
        ref = make_ref(self.path, SOURCE, text, parts, ctx, skip=Skip.INVALID if why else None, detail=why)
        self.out.append(dataclasses.replace(ref, line=written.span.line, column=written.span.column))

    def _lookup(self, env: dict[str, ScalarNode | None], depth: int) -> Callable[[str], list[Piece] | None]:
        def lookup(name: str) -> list[Piece] | None:
            node = env.get(name)
            if node is None:
                return None
            if depth > MAX_DEPTH:
                raise Unresolved(name, "variables nested too deeply")
            piece = scalar_piece(self.doc, node, self.doc.part(node, Role.IMAGE))
            if "$" not in piece.text:
                return [piece]
            return expand(piece, self._lookup(env, depth + 1), dollar_escape=True)

        return lookup
