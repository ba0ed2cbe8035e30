"""Argo CD Applications and ApplicationSets: the images a Helm or kustomize source overrides.

Renovate reads only the chart of an Application; the images hide in its sources:

- ``helm.valuesObject``: read as Helm values (``global.imageRegistry`` included);
- ``helm.values``: a YAML *string*, parsed (bounded, like any file) and mapped back into the
  file. In a literal block (``|``) each content line sits at a fixed indentation, so positions are
  exact; in any other style (quoted with escapes, folded) parts are located by search and marked
  not raw, so they are reported but never edited;
- ``helm.parameters``: ``name``/``value`` pairs such as ``image.repository`` + ``image.tag``,
  grouped by the prefix before the last dot (a group needs a repository or a whole image);
- ``kustomize.images``: ``kustomize edit set image`` strings, ``name=image:tag`` or ``name:tag``;
  the part is the image after ``=`` (the whole string without one).

An ApplicationSet has the same under ``spec.template.spec``. Any other ``image:`` key in the
document is read as in every YAML file. This module is a document handler: the Kubernetes finder
(and Ansible's ``k8s`` definitions) hand it every ``argoproj.io`` Application they meet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.model import ImageRef, Part, Role
from bot.scan.common import make_ref
from bot.scan.yamlimages import (
    Path,
    Where,
    any_image_key,
    approximate,
    embedded,
    global_registry,
    images,
    want_values,
)
from bot.scan.yamlsrc import Doc, dotted, get, get_path, text_of

_LEAVES = {
    "registry": Role.REGISTRY,
    "repository": Role.REPOSITORY,
    "name": Role.NAME,
    "tag": Role.TAG,
    "version": Role.TAG,
    "digest": Role.DIGEST,
}


def application(doc: Doc, obj: Node, where: Where, prefix: Path = ()) -> Iterator[ImageRef]:
    """References in one Application or ApplicationSet, in document order."""
    spec_path: Path = ("spec",) if where.kind == "Application" else ("spec", "template", "spec")
    spec = get_path(obj, *(str(p) for p in spec_path))
    found: list[ImageRef] = []
    single = get(spec, "source")
    sources: list[tuple[Path, Node]] = []
    if isinstance(single, MappingNode):
        sources.append(((*prefix, *spec_path, "source"), single))
    many = get(spec, "sources")
    if isinstance(many, SequenceNode):
        sources += [((*prefix, *spec_path, "sources", i), s) for i, s in enumerate(many.value)]
    for spath, src in sources:
        helm = get(src, "helm")
        vobj = get(helm, "valuesObject")
        if isinstance(vobj, MappingNode):
            found += images(doc, vobj, _values_where(doc, vobj, where), (*spath, "helm", "valuesObject"))
        vstr = get(helm, "values")
        if isinstance(vstr, ScalarNode) and text_of(vstr):
            found += _values_string(doc, vstr, where, (*spath, "helm", "values"))
        params = get(helm, "parameters")
        if isinstance(params, SequenceNode):
            found += _parameters(doc, params, where, (*spath, "helm", "parameters"))
        kimages = get_path(src, "kustomize", "images")
        if isinstance(kimages, SequenceNode):
            found += _kustomize_images(doc, kimages, where, (*spath, "kustomize", "images"))
    found += images(doc, obj, where, prefix)
    found.sort(key=lambda r: (r.line, r.column))
    yield from found


def _values_where(doc: Doc, root: Node, where: Where) -> Where:
    return dataclasses.replace(where, strings=any_image_key, registry=global_registry(doc, root))


def _values_string(doc: Doc, node: ScalarNode, where: Where, vpath: Path) -> Iterator[ImageRef]:
    docs, exact = embedded(doc, node, want_values)
    where.seen.add(id(node))
    for inner in docs:
        iwhere = _values_where(inner, inner.root, where)
        iwhere.notes = (*where.notes, f"in the {dotted(vpath)} string")
        for ref in images(inner, inner.root, iwhere, vpath):
            yield ref if exact else approximate(ref, doc, node)


def _parameters(doc: Doc, params: SequenceNode, where: Where, ppath: Path) -> Iterator[ImageRef]:
    groups: dict[str, dict[str, tuple[int, ScalarNode]]] = {}
    for i, p in enumerate(params.value):
        name, value = text_of(get(p, "name")), get(p, "value")
        if not name or not isinstance(value, ScalarNode):
            continue
        where.seen.add(id(value))  # a parameter, not an env value: never read again as one
        head, _, leaf = name.rpartition(".")
        if leaf.lower().endswith("image"):
            groups.setdefault(name, {})["image"] = (i, value)
        elif head.rpartition(".")[2].lower().endswith("image") and leaf in _LEAVES:
            groups.setdefault(head, {}).setdefault(leaf, (i, value))
    for prefix, got in groups.items():
        if "image" in got:
            i, node = got["image"]
            yield _param_ref([doc.part(node, Role.IMAGE)], where, (*ppath, i, "value"), prefix)
            continue
        repo = got.get("repository") or got.get("name")
        if repo is None:
            continue  # only a tag: it completes an image written elsewhere, not one of its own
        parts = sorted(
            (doc.part(n, _LEAVES[leaf]) for leaf, (_i, n) in got.items()), key=lambda p: p.span.start
        )
        text = {leaf: n.value for leaf, (_i, n) in got.items()}
        ref = repo[1].value
        if text.get("registry"):
            ref = f"{text['registry']}/{ref}"
        tag, digest = text.get("tag") or text.get("version"), text.get("digest")
        ref += (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
        yield _param_ref(parts, where, (*ppath, repo[0], "value"), prefix, text=ref)


def _param_ref(
    parts: list[Part], where: Where, fpath: Path, prefix: str, text: str | None = None
) -> ImageRef:
    ctx = where.context(fpath, None, (f"helm parameter {prefix}",))
    return make_ref(where.path, where.source, text or parts[0].text, parts, ctx)


def _kustomize_images(doc: Doc, seq: SequenceNode, where: Where, kpath: Path) -> Iterator[ImageRef]:
    for i, node in enumerate(seq.value):
        value = text_of(node)
        if value is None:
            continue
        where.seen.add(id(node))
        cut = value.find("=") + 1
        yield make_ref(
            where.path,
            where.source,
            value[cut:],
            [sub_part(doc, node, cut, len(value))],
            where.context((*kpath, i), None),
        )


def sub_part(doc: Doc, node: ScalarNode, start: int, end: int, role: Role = Role.IMAGE) -> Part:
    """A part for ``node.value[start:end]``: exact when the scalar's bytes are its value."""
    whole = doc.part(node, role)
    text = node.value[start:end]
    if not whole.raw:
        return dataclasses.replace(whole, text=text)
    s = doc.start(node) + (1 if whole.quote else 0)
    return Part(role, text, doc.loc.span(s + start, s + end), whole.quote, True)
