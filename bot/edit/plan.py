"""Turn "make this reference read as that one" into byte edits of the scalars that change.

A reference is written in one scalar (``image: nginx:1.27``) or spread over several (Helm's
``registry``/``repository``/``tag``/``digest``, kustomize's ``newName``/``newTag``/``digest``,
Ansible variables in ``defaults/main.yml``). :func:`plan` works out which written part holds
which piece (domain, path, tag, digest), renders each piece of the target in the style the
author used, and emits an :class:`~bot.model.Edit` only for parts whose text changes: the diff a
reviewer sees is the change and nothing else, and planning an already-edited file gives nothing.

Decisions, so that reviewers and the rules engineer can predict the output:

- Name style: a name written without a registry stays short (``bitnami/kubectl`` ->
  ``alpine/kubectl``, ``nginx`` stays ``nginx``, ``library/nginx`` keeps ``library/``); a name
  written with its registry keeps it, in the author's spelling when the registry does not change
  (``index.docker.io/...``). Moving off Docker Hub writes the new registry.
- Digests go where the file keeps them: an existing digest field, else after the tag in the tag
  field (``tag: 1.2.3@sha256:...``, what Renovate writes and what charts that build
  ``repo:tag`` accept), else in the reference string. Not in the tag field of Ansible's
  ``docker_image`` or Flux's ``OCIRepository``, whose tags are only tags. A ``sha`` field
  (prometheus-community charts, which render ``repo:tag@sha256:<sha>``) holds the hex alone: the
  digest is written there without ``sha256:``, and the tag field is updated beside it. A pinned
  reference is never silently unpinned: without a digest, :func:`plan` refuses unless
  ``unpin=True``.
- A tag no part writes (a Helm block taking the chart's ``appVersion``) stays implied when the
  target keeps it, and cannot be changed otherwise: there is no field to write it into.
- Helm-style blocks without a ``registry`` field: a registry change is folded into
  ``repository`` when the written repository already names its registry (the chart evidently
  takes one there); otherwise it is refused, because charts that keep a default registry (Bitnami's
  ``image.registry``) would prepend it to whatever ``repository`` says. A registry that comes
  from ``global.imageRegistry`` is shared by every image of the chart and is never edited.
- Kustomize ``images[].name`` is what resources are matched against, never the image written;
  a new name needs ``newName``, which the entry must already have.
- Quotes are kept; a plain YAML scalar whose new value would read as another type (``1.30``,
  ``8``, ``true``, ``2024-01-01``) is quoted. Parts in Dockerfiles, templates, compose
  interpolations and CI variables are never quoted: the part may be a piece of a larger string,
  where quotes would become part of the value (a GitLab variable written ``TAG: 1.22.1`` and
  bumped to ``1.23`` therefore stays plain; the re-scan check is the safety net there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.edit.errors import EditError
from bot.edit.quoting import fits, needs_quotes
from bot.model import Edit, ImageRef, Part, Role, Source
from bot.reference import DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN, Reference, ReferenceError, parse

_SCHEMES = ("docker://", "oci://")
_NAME_ROLES = (Role.IMAGE, Role.NAME, Role.REPOSITORY)
# Sources whose parts may be pieces of a larger string (FROM lines, templates, ${VAR:-default},
# GitLab `$REG/app:1.0`): values there are joined as text, never typed as YAML scalars.
_TEXT_SOURCES = frozenset(
    {
        Source.DOCKERFILE,
        Source.HELM_TEMPLATE,
        Source.JINJA,
        Source.COMPOSE,
        Source.GITLAB_CI,
        Source.GITHUB_ACTIONS,
        Source.SHELL,
        Source.JSONNET,
    }
)
_TEMPLATE_MARKS = ("{{", "{%", "${", "$(", "<%")
_YAML_SUFFIXES = (".yaml", ".yml")
_GLOBAL = "global.imageRegistry"  # the helm_values finder's note when that value is used
_HEX = "sha is the digest's hex without sha256:"  # the finders' note (bot.scan.yamlimages.HEX_DIGEST)
_TAG_PREFIX = "fixed tag prefix written apart: "  # the finders' note (bot.scan.common.TAG_PREFIX)


@dataclass(frozen=True, slots=True)
class _Written:
    """A name-bearing scalar taken apart: everything as the author spelled it."""

    scheme: str
    domain: str | None  # None when no registry is written (Docker Hub implied)
    path: str
    tag: str | None
    digest: str | None


@dataclass(frozen=True, slots=True)
class _Layout:
    """Which part holds which piece of the reference."""

    name: Part
    frozen: bool  # kustomize `name`: read, never written
    registry: Part | None
    tag: Part | None
    digest: Part | None


def expected(target: str, digest: str | None = None) -> str:
    """The normalised reference a planned edit makes the file read as (what a re-scan of the
    edited file must report), so the caller compares like with like."""
    return str(_target(target, digest))


def plan(ref: ImageRef, target: str, *, digest: str | None = None, unpin: bool = False) -> tuple[Edit, ...]:
    """Edits that make ``ref`` read as ``target`` (a normalised reference), pinned to ``digest``.

    Raises :class:`EditError` when the written parts cannot express the target, with a message a
    reviewer can act on. Returns no edits when ``ref`` already reads as the target.
    """
    if ref.reference is None:
        why = f"{ref.skip}: {ref.detail}" if ref.detail else str(ref.skip)
        raise EditError(f"{ref.path}:{ref.line}: {ref.text!r} cannot be edited ({why})")
    want = _target(target, digest)
    lay = _layout(ref)
    name = _split_name(lay.name)
    tag_digest = _split_tag(lay.tag)[1]
    has_digest = any(d is not None for d in (name.digest, tag_digest, _digest_text(lay.digest)))
    if has_digest and want.digest is None and not unpin:
        raise EditError(
            f"{ref.path}:{ref.line}: {ref.text!r} is pinned to a digest; give the target's digest "
            "to keep it pinned (or unpin explicitly)"
        )
    if lay.tag is not None and name.tag is not None:
        raise EditError(f"{ref.path}:{ref.line}: the tag is written twice ({ref.text!r})")
    # A tag the reference has without any part writing it: Helm's appVersion default.
    implied = parse(ref.reference).tag if lay.tag is None and name.tag is None else None

    new: dict[int, str] = {}  # index into ref.parts -> new text
    reg_text, name_text = _render_name(ref, lay, name, want)
    if lay.registry is not None and reg_text is not None:
        if reg_text != lay.registry.text and any(n.startswith(_GLOBAL) for n in ref.context.notes):
            raise EditError(
                f"{ref.path}:{ref.line}: the registry comes from global.imageRegistry, which every "
                f"image of the chart uses; set `registry: {reg_text}` in this image block by hand"
            )
        new[_index(ref, lay.registry)] = reg_text

    # Tag and digest: each goes where the file keeps it.
    inline_tag: str | None = None
    if lay.tag is not None:
        if want.tag is None:
            raise EditError(
                f"{ref.path}:{lay.tag.span.line}: the tag has a field of its own; a target without "
                "a tag cannot be written there"
            )
        prefix = _tag_prefix(ref)
        if not want.tag.startswith(prefix):
            raise EditError(
                f"{ref.path}:{ref.line}: the tag is written as {prefix!r} + a value kept apart; "
                f"{want.tag!r} does not start with {prefix!r}"
            )
        tag_new = want.tag[len(prefix) :]
    else:
        tag_new = None
        if implied is not None and want.tag == implied:
            pass  # the tag is not written here (a chart's appVersion) and stays what it is
        elif want.tag != name.tag and not _can_inline(ref, lay, name):
            raise EditError(_no_place(ref, lay, "tag"))
        else:
            inline_tag = want.tag
    inline_digest: str | None = None
    if lay.digest is not None:
        at = "@" if lay.digest.text.startswith("@") else ""
        value = want.digest or ""
        if _hex_digest(ref):  # `sha: <hex>`: the chart writes the `sha256:` itself
            value = value.removeprefix("sha256:")
        new[_index(ref, lay.digest)] = at + value if value else ""
    elif lay.tag is not None:
        if want.digest and not _digest_in_tag(ref, lay):
            raise EditError(_no_place(ref, lay, "digest"))
        tag_new = f"{tag_new}@{want.digest}" if want.digest else tag_new
    else:
        if want.digest != name.digest and not _can_inline(ref, lay, name):
            raise EditError(_no_place(ref, lay, "digest"))
        inline_digest = want.digest
    if lay.tag is not None and tag_new is not None:
        new[_index(ref, lay.tag)] = tag_new

    if not lay.frozen:
        suffix = (f":{inline_tag}" if inline_tag else "") + (f"@{inline_digest}" if inline_digest else "")
        new[_index(ref, lay.name)] = name.scheme + name_text + suffix
    elif parse(name_text).name != parse(_join(name.domain, name.path)).name:
        raise EditError(
            f"{ref.path}:{lay.name.span.line}: kustomize matches resources on `name: {lay.name.text}`; "
            f"add `newName: {name_text}` to this images entry to change the image"
        )

    _check_reads_as(ref, lay, new, want, implied)
    edits = []
    for i, text in sorted(new.items()):
        part = ref.parts[i]
        if text == part.text:
            continue
        edits.append(_edit(ref, part, text))
    return tuple(edits)


def _target(target: str, digest: str | None) -> Reference:
    try:
        want = parse(target)
        if digest is not None:
            if want.digest is not None and want.digest != digest:
                raise EditError(f"target {target!r} carries another digest than {digest!r}")
            want = want.with_digest(digest)
    except ReferenceError as exc:
        raise EditError(f"invalid target {target!r}: {exc}") from None
    return want


def _layout(ref: ImageRef) -> _Layout:
    by_role: dict[Role, list[Part]] = {}
    for p in ref.parts:
        by_role.setdefault(p.role, []).append(p)
    for role, parts in by_role.items():
        if len(parts) > 1:
            raise EditError(f"{ref.path}:{ref.line}: {len(parts)} {role} parts in {ref.text!r}")
    one = {role: parts[0] for role, parts in by_role.items()}
    names = [one[r] for r in _NAME_ROLES if r in one]
    frozen = False
    if ref.source is Source.KUSTOMIZE and Role.NAME in one:
        # `name` selects the image in resources; `newName` (if any) is what gets written.
        names = [p for p in names if p.role is not Role.NAME] or [one[Role.NAME]]
        frozen = names[0].role is Role.NAME
    if len(names) != 1:
        raise EditError(f"{ref.path}:{ref.line}: cannot tell which part of {ref.text!r} names the image")
    return _Layout(names[0], frozen, one.get(Role.REGISTRY), one.get(Role.TAG), one.get(Role.DIGEST))


def _split_name(part: Part) -> _Written:
    """Scheme, registry (when written), path, and any tag or digest written inline."""
    text = part.text
    scheme = next((s for s in _SCHEMES if text.startswith(s)), "")
    rest, at, d = text[len(scheme) :].partition("@")
    digest = d if at else None
    tag = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1 :]
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        return _Written(scheme, first, remainder, tag, digest)
    return _Written(scheme, None, rest, tag, digest)


def _split_tag(part: Part | None) -> tuple[str | None, str | None]:
    if part is None:
        return None, None
    tag, at, digest = part.text.partition("@")
    return tag, (digest if at else None)


def _hex_digest(ref: ImageRef) -> bool:
    """Whether the digest part holds the hex alone (a chart's ``sha:``, rendered ``@sha256:<sha>``)."""
    return _HEX in ref.context.notes


def _tag_prefix(ref: ImageRef) -> str:
    """A fixed prefix the tag has before its TAG part (Jsonnet ``'repo:v' + versions.x``)."""
    return next((n[len(_TAG_PREFIX) :] for n in ref.context.notes if n.startswith(_TAG_PREFIX)), "")


def _digest_text(part: Part | None) -> str | None:
    if part is None:
        return None
    return part.text.removeprefix("@") or None


def _norm_domain(domain: str) -> str:
    return DEFAULT_DOMAIN if domain in ("", LEGACY_DEFAULT_DOMAIN) else domain


def _join(domain: str | None, path: str) -> str:
    return f"{domain}/{path}" if domain else path


def _hub_path(path: str, old_path: str | None, explicit: bool) -> str:
    """A Docker Hub path in the author's style: ``library/`` written only when they wrote it
    (or, with a registry written and no hint either way, as Docker's qualified form has it)."""
    if not path.startswith("library/"):
        return path
    if old_path is not None and old_path.startswith("library/"):
        return path
    if old_path is not None and "/" not in old_path:
        return path.removeprefix("library/")
    return path if explicit else path.removeprefix("library/")


def _render_name(ref: ImageRef, lay: _Layout, old: _Written, want: Reference) -> tuple[str | None, str]:
    """(new registry-part text or None, new name text without tag/digest)."""
    hub = want.domain == DEFAULT_DOMAIN
    if lay.registry is not None:
        reg = lay.registry.text
        dom, _, prefix = reg.partition("/")
        if _norm_domain(dom) == want.domain and (not prefix or want.path.startswith(prefix + "/")):
            path = want.path[len(prefix) + 1 :] if prefix else want.path
            keep_reg = reg
        else:
            path, keep_reg = want.path, want.domain
        if hub and not prefix:
            path = _hub_path(path, old.path, explicit=bool(keep_reg))
        return keep_reg, path
    if old.domain is None:
        if hub:
            return None, _hub_path(want.path, old.path, explicit=False)
        if _map_field(ref, lay.name):
            raise EditError(
                f"{ref.path}:{lay.name.span.line}: this image block has no `registry:` field and "
                f"its repository names none; write the registry {want.domain!r} by hand (charts with a "
                "default registry would prepend theirs to `repository`)"
            )
        return None, want.name
    dom = old.domain if _norm_domain(old.domain) == want.domain else want.domain
    path = _hub_path(want.path, old.path, explicit=True) if hub else want.path
    return None, f"{dom}/{path}"


def _map_field(ref: ImageRef, part: Part) -> bool:
    """Whether ``part`` is the repository field of an image map (Helm values, a CR's image
    block), which a chart or operator joins with fields and defaults we cannot see; as opposed
    to text that is concatenated as written (a Dockerfile ARG, an Ansible variable)."""
    return part.role in (Role.REPOSITORY, Role.NAME) and part.path is None and ref.source not in _TEXT_SOURCES


def _can_inline(ref: ImageRef, lay: _Layout, name: _Written) -> bool:
    """Whether a tag or digest may be written into the name part itself: a whole reference
    string can take one; a map's `repository` only when it already carries one (the chart takes
    full references there); kustomize's `name` never."""
    if lay.frozen:
        return False
    if _map_field(ref, lay.name) or lay.name.role is Role.REPOSITORY:
        return name.tag is not None or name.digest is not None
    return True


def _digest_in_tag(ref: ImageRef, lay: _Layout) -> bool:
    """Whether ``tag@digest`` may go into the tag field. Charts, kustomize and every textual
    join build ``repo:tag``, which makes ``repo:tag@digest``; Ansible's ``docker_image`` (a
    ``name`` with a ``tag`` field) treats its tag as a plain tag, and Flux's ``OCIRepository``
    wants ``ref.digest``, so it is refused there."""
    if ref.artifact != "image":
        return False
    return not (ref.source is Source.ANSIBLE and lay.name.role is Role.IMAGE and lay.name.path is None)


def _no_place(ref: ImageRef, lay: _Layout, what: str) -> str:
    where = "kustomize images entry" if lay.frozen else "image block"
    field = {"tag": "newTag" if lay.frozen else "tag", "digest": "digest"}[what]
    return (
        f"{ref.path}:{ref.line}: the {where} for {ref.text!r} has no `{field}` field to write the "
        f"{what} into; add one by hand"
    )


def _index(ref: ImageRef, part: Part) -> int:
    return next(i for i, p in enumerate(ref.parts) if p is part)


def _join_parts(ref: ImageRef, lay: _Layout, new: dict[int, str]) -> str:
    """The reference the parts spell, with ``new`` texts in place, joined as the finders join
    split fields (``registry/repository:tag@digest``), without any scheme prefix."""

    def text(part: Part | None) -> str:
        if part is None:
            return ""
        return new.get(_index(ref, part), part.text)

    if lay.frozen:
        name = _split_name(lay.name)
        joined = _join(name.domain, name.path)
    else:
        joined = text(lay.name)
        joined = joined.removeprefix(next((s for s in _SCHEMES if joined.startswith(s)), ""))
    if lay.registry is not None and text(lay.registry):
        joined = f"{text(lay.registry).rstrip('/')}/{joined}"
    if lay.tag is not None:
        joined += f":{_tag_prefix(ref)}{text(lay.tag)}"
    if lay.digest is not None and text(lay.digest):
        joined += ("@sha256:" if _hex_digest(ref) else "@") + text(lay.digest).removeprefix("@")
    return joined


def written(ref: ImageRef, edits: Sequence[Edit]) -> str:
    """How ``ref`` reads in its file once ``edits`` (from :func:`plan`) are applied, in the
    author's style (``alpine/kubectl:1.33.4``): the "after" a reviewer sees in the PR table."""
    lay = _layout(ref)
    new: dict[int, str] = {}
    for e in edits:
        for i, p in enumerate(ref.parts):
            if (p.path or ref.path) == e.path and p.span == e.span:
                unquoted = e.new[1:-1] if not p.quote and e.new[:1] in "'\"" and len(e.new) > 1 else e.new
                new[i] = unquoted
    return _join_parts(ref, lay, new)


def _check_reads_as(
    ref: ImageRef, lay: _Layout, new: dict[int, str], want: Reference, implied: str | None
) -> None:
    """The parts' new texts, joined the way the finder joins them, must parse to the target:
    a guard against a rendering mistake ever reaching a pull request."""
    joined = _join_parts(ref, lay, new)
    try:
        got = parse(joined)
    except ReferenceError as exc:
        raise EditError(f"{ref.path}:{ref.line}: the edit would write {joined!r}: {exc}") from None
    if got.tag is None and implied is not None:
        got = got.with_tag(implied)
    if got != want:
        raise EditError(f"{ref.path}:{ref.line}: the edit would read as {got}, not {want}")


def _yaml_scalar(ref: ImageRef, part: Part) -> bool:
    """Whether the part is a whole YAML scalar (so its type depends on its text)."""
    if part.scalar:
        return True
    if part.path is not None:  # a variable definition: Ansible vars files, with or without suffix
        segments = part.path.split("/")
        bare = "." not in segments[-1] and ("group_vars" in segments or "host_vars" in segments)
        return part.path.endswith(_YAML_SUFFIXES) or bare
    return ref.source not in _TEXT_SOURCES and ref.path.endswith(_YAML_SUFFIXES)


def _edit(ref: ImageRef, part: Part, text: str) -> Edit:
    where = f"{part.path or ref.path}:{part.span.line}"
    if not part.raw:
        raise EditError(f"{where}: {part.text!r} is written with escapes or folded lines; edit it by hand")
    if any(m in part.text for m in _TEMPLATE_MARKS):
        raise EditError(f"{where}: {part.text!r} is templated; edit the value it comes from")
    if not fits(text, part.quote):
        raise EditError(f"{where}: {text!r} cannot be written inside {part.quote} quotes as is")
    if not part.quote and _yaml_scalar(ref, part) and needs_quotes(text):
        quote = next((p.quote for p in ref.parts if p.quote), '"')
        text = f"{quote}{text}{quote}"
    return Edit(part.path or ref.path, part.span, part.text, text)
