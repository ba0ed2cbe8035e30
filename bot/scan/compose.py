"""docker-compose / Compose Specification finder.

Reads ``services.*.image`` (and the version-1 layout, services at the top level), images in
``x-`` extension blocks that services merge in (``<<: *common``), and ``docker-image://``
additional build contexts. An image written once under an anchor is reported once, at the anchor.

Interpolation follows compose: ``${VAR:-default}`` and ``${VAR-default}`` pull the default unless
the environment says otherwise, so the default is the reference and its part spans the default's
text; ``${VAR}`` alone is ``Skip.VARIABLE``; ``$$`` is a literal dollar.

A service with both ``build:`` and ``image:`` names the image compose *builds* (and tags, and may
push), not one it pulls: it is reported as skipped (``built-locally``, with the note ``built
locally``), so it is never checked, called rotten or changed. A build-only service has no
reference.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.model import Context, ImageRef, Part, Role, Skip, Source
from bot.scan.common import make_ref
from bot.scan.interpolate import (
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
from bot.scan.yamlsrc import Doc, documents, get, is_map, is_seq, items, text_of, walk

SOURCE = Source.COMPOSE

BUILT_LOCALLY = "built locally"
_NAMED = re.compile(r"^(?:docker-)?compose[^/]*\.ya?ml$")
_SERVICES = re.compile(rb"(?m)^services[ \t]*:[ \t]*(?:#[^\n]*)?\r?$")
_K8S = re.compile(rb"(?m)^(?:apiVersion|kind)[ \t]*:")
_V1_SKIP = frozenset({"version", "name", "services", "networks", "volumes", "configs", "secrets", "include"})
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh"})
_CONTEXT_PREFIX = "docker-image://"


def claims(path: str, head: bytes) -> bool:
    """``docker-compose*.y?ml`` / ``compose*.y?ml``, or YAML whose top level has ``services:``
    with ``image:``/``build:`` keys and is not a Kubernetes document or Helm values."""
    if not path.endswith((".yml", ".yaml", ".YML", ".YAML")):
        return False
    base = path.rpartition("/")[2].lower()
    if _NAMED.match(base):
        return True
    if base.startswith("values") or b"services" not in head:
        return False
    return (
        (b"image:" in head or b"build:" in head)
        and _SERVICES.search(head) is not None
        and _K8S.search(head) is None
    )


def find(text: str, path: str, repo: object = None) -> Iterator[ImageRef]:
    """The references in a compose file, in file order."""
    found: list[ImageRef] = []
    for doc in documents(text, lambda chunk: "image" in chunk):
        found.extend(_Compose(doc, path).refs())
    return iter(found)


@dataclasses.dataclass(slots=True)
class _Use:
    node: Node
    owner: str  # the service or extension block where the value is written
    field: str
    extension: bool
    users: list[str]
    built: bool
    shell: bool | None


class _Compose:
    def __init__(self, doc: Doc, path: str) -> None:
        self.doc = doc
        self.path = path
        self.uses: dict[int, _Use] = {}

    def refs(self) -> list[ImageRef]:
        root = self.doc.root
        if not is_map(root):
            return []
        services = get(root, "services")
        for key, _k, value in items(root, self.doc):  # type: ignore[arg-type]
            if key and key.startswith("x-"):
                self._extension(key, value)
        if is_map(services):
            for name, _k, svc in items(services, self.doc):  # type: ignore[arg-type]
                self._service(name or "?", svc, f"services.{name}")
        elif services is None:  # version 1: services at the top level
            for name, _k, svc in items(root, self.doc):  # type: ignore[arg-type]
                if name and name not in _V1_SKIP and not name.startswith("x-") and is_map(svc):
                    self._service(name, svc, name)
        uses = sorted(self.uses.values(), key=lambda u: u.node.start_mark.index)
        return [self._ref(u) for u in uses]

    def _extension(self, key: str, block: Node) -> None:
        """``image:`` values anywhere in an ``x-`` block: fragments that services merge in."""
        for p, node in walk(block):
            if p and p[-1] == "image" and not is_map(node) and not is_seq(node):
                field = ".".join([key, *(str(x) for x in p)])
                self.uses.setdefault(id(node), _Use(node, key, field, True, [], False, None))

    def _service(self, name: str, svc: Node, field: str) -> None:
        if not is_map(svc):
            return
        check_keys(svc)
        image = _merged(svc, "image")
        build = _merged(svc, "build")
        if image is not None:
            use = self.uses.get(id(image))
            if use is None:
                use = _Use(image, name, f"{field}.image", False, [], build is not None, _shell(svc))
                self.uses[id(image)] = use
            use.users.append(name)
            use.built = use.built or build is not None
        if is_map(build):
            contexts = get(build, "additional_contexts")
            values = contexts.value if isinstance(contexts, SequenceNode) else []
            if isinstance(contexts, MappingNode):
                values = [v for _k, v in contexts.value]
            for v in values:
                if isinstance(v, ScalarNode) and _CONTEXT_PREFIX in v.value:
                    self.uses.setdefault(
                        id(v),
                        _Use(v, name, f"{field}.build.additional_contexts", False, [name], False, None),
                    )

    def _ref(self, use: _Use) -> ImageRef:
        doc, node = self.doc, use.node
        notes: list[str] = []
        if use.built:
            notes.append(BUILT_LOCALLY)
        if use.users and (use.extension or len(use.users) > 1):
            notes.append("used by " + ", ".join(use.users))
        ctx = Context(
            kind="extension" if use.extension else "service",
            name=use.owner,
            needs_shell=use.shell,
            field=use.field,
            notes=tuple(notes),
        )
        if not isinstance(node, ScalarNode) or text_of(node) is None:
            return non_string(doc, node, self.path, SOURCE, ctx)
        written = doc.part(node, Role.IMAGE)
        piece = scalar_piece(doc, node, written)
        if use.field.endswith("additional_contexts"):
            piece = sub(piece, piece.text.find(_CONTEXT_PREFIX) + len(_CONTEXT_PREFIX), len(piece.text))
            written = dataclasses.replace(written, text=piece.text)
            if piece.start >= 0:
                written = dataclasses.replace(
                    written, span=doc.loc.span(piece.start, piece.start + len(piece.text))
                )
        ref = _expanded(self.path, doc, piece, written, ctx)
        if use.built:
            detail = f"{ref.text}: the image this service builds (build: and image:), not pulled"
            ref = dataclasses.replace(ref, reference=None, skip=Skip.BUILT_LOCALLY, detail=detail)
        return ref


def _expanded(path: str, doc: Doc, piece: Piece, written: Part, ctx: Context) -> ImageRef:
    """The reference for a value that may hold compose variables (defaults traced)."""
    if "$" not in piece.text:
        return make_ref(path, SOURCE, piece.text, [written], ctx)
    try:
        pieces = expand(piece, lambda _name: None, dollar_escape=True)
    except Unresolved as exc:
        skip = Skip.VARIABLE if exc.missing else Skip.TEMPLATED
        return make_ref(path, SOURCE, piece.text, [written], ctx, skip=skip, detail=str(exc))
    text = joined(pieces)
    parts = traced_parts(pieces, doc.loc) or (dataclasses.replace(written, text=text, raw=False),)
    ctx = dataclasses.replace(ctx, notes=(*ctx.notes, f"default of {piece.text}"))
    literal_dollar = "$" in text  # from "$$": not a variable, and not valid in a reference
    why = "a literal '$' is not allowed in a reference" if literal_dollar else None
    ref = make_ref(path, SOURCE, text, parts, ctx, skip=Skip.INVALID if why else None, detail=why)
    return dataclasses.replace(ref, line=written.span.line, column=written.span.column)


def _merged(node: Node, key: str, depth: int = 0) -> Node | None:
    """``node[key]``, looking through ``<<`` merge keys as compose does (own keys win)."""
    own = get(node, key)
    if own is not None or depth > 8 or not isinstance(node, MappingNode):
        return own
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == "<<":
            for src in v.value if isinstance(v, SequenceNode) else [v]:
                found = _merged(src, key, depth + 1)
                if found is not None:
                    return found
    return None


def _shell(svc: Node) -> bool | None:
    """Whether the service's command runs a shell: True for ``sh -c ...`` or a ``*.sh`` script;
    False for another command, None when the image's own entrypoint decides."""
    for key in ("entrypoint", "command"):
        node = _merged(svc, key)
        if node is None:
            continue
        first = node.value[0] if isinstance(node, SequenceNode) and node.value else node
        word = text_of(first) or ""
        word = word.split(maxsplit=1)[0] if word.strip() else ""
        return os.path.basename(word) in _SHELLS or word.endswith(".sh")
    return None
