"""The dispatcher for Kubernetes-style objects: each object goes to the reader of its kind.

Argo CD ``Application``/``ApplicationSet`` go to :mod:`bot.scan.argocd`, the Flux kinds
:func:`bot.scan.flux.handles` to :mod:`bot.scan.flux`, ``*List`` objects are unpacked, and
everything else goes to the generic walker (:func:`bot.scan.yamlimages.images`). The finders that
read whole Kubernetes objects (Kubernetes manifests, Helm values holding objects, Ansible ``k8s``
definitions) call :func:`objects`; the walker itself never looks up, which is why this lives here
and not in :mod:`bot.scan.yamlimages`.
"""

from __future__ import annotations

from collections.abc import Iterator

from yaml.nodes import MappingNode, Node, SequenceNode

from bot.model import ImageRef, Source
from bot.scan import argocd, flux
from bot.scan.yamlimages import Path, Where, images
from bot.scan.yamlsrc import Doc, get, get_path, text_of


def objects(doc: Doc, obj: Node, where: Where, prefix: Path = ()) -> Iterator[ImageRef]:
    """References in a Kubernetes object (or ``List``), with its kind and name as context."""
    api = text_of(get(obj, "apiVersion"))
    kind = text_of(get(obj, "kind"))
    name = text_of(get_path(obj, "metadata", "name")) or text_of(get_path(obj, "metadata", "generateName"))
    listed = get(obj, "items")
    if kind and kind.endswith("List") and isinstance(listed, SequenceNode):
        for i, item in enumerate(listed.value):
            if isinstance(item, MappingNode):
                yield from objects(doc, item, where, (*prefix, "items", i))
        return
    if api and kind and api.startswith("argoproj.io/") and kind in ("Application", "ApplicationSet"):
        yield from argocd.application(
            doc, obj, Where(where.path, Source.ARGOCD, kind, name, seen=where.seen), prefix
        )
        return
    if api and kind and api.endswith(".fluxcd.io/" + api.rpartition("/")[2]) and flux.handles(api, kind):
        yield from flux.document(
            doc, obj, Where(where.path, Source.FLUX, kind, name, seen=where.seen), prefix
        )
        return
    inner = Where(
        where.path, where.source, kind or where.kind, name or where.name, seen=where.seen, notes=where.notes
    )
    yield from images(doc, obj, inner, prefix)
