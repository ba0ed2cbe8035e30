"""Kustomizations: the ``images:`` overrides, Helm values inlined in ``helmCharts``, and patches
written inline (``patches[].patch`` strings, strategic-merge or JSON 6902), reported as Kubernetes.
Patch *files* are read by the Kubernetes finder, which looks up the kustomization that lists them.

An ``images`` entry rewrites every manifest image named ``name``. What is pulled is ``newName``
(else ``name``) with ``":" + newTag`` and/or ``"@" + digest`` (kustomize >= 5 keeps both when both
are set). An entry with only ``name`` changes nothing and is not a reference; one with only
``newName`` keeps the manifests' tag, which this file does not say, so it is reported as skipped
(``tag-from-chart-default``: the tag is left to what the entry overrides). Each written field is
its own :class:`~bot.model.Part`: ``name`` (``NAME``, never edited to move an image: it is the
match key), ``newName`` (``REPOSITORY``), ``newTag`` (``TAG``), ``digest`` (``DIGEST``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.model import ImageRef, Part, Role, Skip, Source
from bot.scan import Repo
from bot.scan.common import make_ref
from bot.scan.yamlimages import (
    Path,
    Where,
    any_image_key,
    approximate,
    embedded,
    images,
    json_patch,
    want_with_values,
)
from bot.scan.yamlsrc import NULL, Doc, documents, dotted, get, get_path, items, text_of

SOURCE = Source.KUSTOMIZE

NAMES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
_FIELDS = {"name": Role.NAME, "newName": Role.REPOSITORY, "newTag": Role.TAG, "digest": Role.DIGEST}


def claims(path: str, head: bytes) -> bool:
    if posixpath.basename(path) in NAMES:
        return True
    return path.endswith((".yaml", ".yml")) and b"kustomize.config.k8s.io/" in head


def find(text: str, path: str, repo: Repo) -> Iterator[ImageRef]:
    if not want_with_values(text):
        return
    for doc in documents(text, want=want_with_values):
        where = Where(path, SOURCE, kind=text_of(get(doc.root, "kind")))
        found = list(entries(doc, get(doc.root, "images"), where, ("images",)))
        # helmCharts[].valuesInline are Helm values; anything else with an image key too.
        charts = get(doc.root, "helmCharts")
        if isinstance(charts, SequenceNode):
            for i, chart in enumerate(charts.value):
                inline = get(chart, "valuesInline")
                if isinstance(inline, MappingNode):
                    vwhere = Where(path, SOURCE, where.kind, text_of(get(chart, "name")), any_image_key)
                    vwhere.seen = where.seen
                    found += images(doc, inline, vwhere, ("helmCharts", i, "valuesInline"))
        found += _inline_patches(doc, where)
        found += images(doc, doc.root, where)
        found.sort(key=lambda r: (r.line, r.column))
        yield from found


def _inline_patches(doc: Doc, where: Where) -> Iterator[ImageRef]:
    """Patches written inline as YAML strings (``patches[].patch``, ``patchesStrategicMerge``
    entries with a newline): parsed and mapped back into the file as Argo CD's ``helm.values``
    are, and read as Kubernetes objects or JSON 6902 operations."""
    for key in ("patches", "patchesStrategicMerge", "patchesJson6902"):
        seq = get(doc.root, key)
        if not isinstance(seq, SequenceNode):
            continue
        for i, entry in enumerate(seq.value):
            node = get(entry, "patch") if isinstance(entry, MappingNode) else entry
            if not isinstance(node, ScalarNode) or "\n" not in node.value or text_of(node) is None:
                continue
            where.seen.add(id(node))
            kind = text_of(get(get(entry, "target"), "kind"))
            at: Path = (key, i, "patch") if node is not entry else (key, i)
            pwhere = Where(where.path, Source.KUBERNETES, notes=(f"inline patch {dotted(at)}",))
            docs, exact = embedded(doc, node)
            for inner in docs:
                pwhere.kind = text_of(get(inner.root, "kind")) or kind
                pwhere.name = text_of(get_path(inner.root, "metadata", "name"))
                for ref in (
                    *json_patch(inner, inner.root, pwhere, at),
                    *images(inner, inner.root, pwhere, at),
                ):
                    yield ref if exact else approximate(ref, doc, node)


def entries(doc: Doc, seq: Node | None, where: Where, prefix: Path) -> Iterator[ImageRef]:
    """References in a kustomize ``images:`` list (also Flux ``Kustomization.spec.images``)."""
    if not isinstance(seq, SequenceNode):
        return
    for i, entry in enumerate(seq.value):
        if isinstance(entry, MappingNode):
            ref = _entry(doc, entry, where, (*prefix, i))
            if ref is not None:
                yield ref


def _entry(doc: Doc, entry: MappingNode, where: Where, fpath: Path) -> ImageRef | None:
    nodes: dict[str, ScalarNode] = {}
    bad: list[str] = []
    for key, _k, v in items(entry):
        if key not in _FIELDS or (isinstance(v, ScalarNode) and v.tag == NULL):
            continue
        if isinstance(v, ScalarNode) and text_of(v, numeric=key == "newTag") is not None:
            nodes[key] = v
        else:
            bad.append(key)
    if not (nodes.keys() - {"name"}) and not bad:
        return None  # only a name: it overrides nothing
    parts: list[Part] = [doc.part(n, _FIELDS[k]) for k, n in nodes.items()]
    parts.sort(key=lambda p: p.span.start)
    value = {k: text_of(n, numeric=True) or "" for k, n in nodes.items()}
    ref = value.get("newName") or value.get("name", "")
    tag, digest = value.get("newTag", ""), value.get("digest", "")
    ref += (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    notes = (f"overrides image {value['name']}",) if value.get("name") else ()
    ctx = where.context(fpath, None, notes)
    for n in nodes.values():
        where.seen.add(id(n))
    if bad:
        return make_ref(
            where.path,
            where.source,
            ref,
            parts,
            ctx,
            skip=Skip.NON_STRING,
            detail="not a string: " + ", ".join(bad),
        )
    if not tag and not digest:
        return make_ref(
            where.path,
            where.source,
            ref,
            parts,
            ctx,
            skip=Skip.CHART_DEFAULT,
            detail=f"{ref}: the tag is kept from the manifests' {value.get('name') or 'image'}",
        )
    return make_ref(where.path, where.source, ref, parts, ctx)
