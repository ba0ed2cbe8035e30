"""Kubernetes manifests, and the catch-all for every other YAML file (it is last in FINDERS).

A document with ``apiVersion`` and ``kind`` is a Kubernetes object: its containers,
initContainers and ephemeralContainers (Pod, the workload kinds, CronJob's ``jobTemplate``,
PodTemplate, ``List`` items), image volumes, and any other ``image:`` key (CRDs: Argo Workflows,
Tekton, operators) are reported with the object's kind and name. Any other document is reported as
plain YAML. Both also read Helm-style image maps, since charts' custom resources and values-like
blocks turn up everywhere. Only parsed keys count: text inside a string value never does, except a
fully qualified reference in container arguments and env values.

Kustomize patches often leave out ``apiVersion`` (and a patch with a ``target`` even ``kind``).
Every YAML file reaches this finder whatever its content, so a patch is recognised here: a
document listed in the ``patches``/``patchesStrategicMerge`` of a kustomization beside it (or one
directory up, for a ``patches/`` folder), or one with a ``kind`` and a ``spec``, is read as a
Kubernetes object with the kind the patch or its ``target`` names. A JSON 6902 patch (a list of
``op``/``path``/``value``) whose path ends in ``/image`` gives its ``value``.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Iterator

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.model import ImageRef, Skip, Source
from bot.scan import Repo
from bot.scan.manifests import objects
from bot.scan.yamlimages import Where, images, is_object, json_patch, want_with_values
from bot.scan.yamlsrc import YamlRejected, documents, filtered, get, text_of

SOURCE = Source.KUBERNETES

_KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def claims(path: str, head: bytes) -> bool:
    """Any YAML file: most hold no image, and the pre-filter drops those before parsing."""
    return path.endswith((".yaml", ".yml"))


def find(text: str, path: str, repo: Repo) -> Iterator[ImageRef]:
    from bot.scan import charts

    yield from charts.uses(text, path, repo)  # Argo CD / Flux chart deployments (own pre-filter)
    listed: list[tuple[str, str | None] | None] = []  # looked up once, when a document needs it
    for doc in filtered(text, want_with_values):
        root = doc.root
        if is_object(root):
            found = list(objects(doc, root, Where(path, Source.KUBERNETES)))
            if (text_of(get(root, "apiVersion")) or "").startswith("skaffold/"):
                found = [_built_by_skaffold(r) for r in found]
        else:
            if not listed:
                listed.append(patch_of(path, repo))
            where = _patch_where(path, root, listed[0])
            found = list(json_patch(doc, root, where)) + list(images(doc, root, where))
        found.sort(key=lambda r: (r.line, r.column))
        yield from found


_ARTIFACT = re.compile(r"(?:^|\.)build\.artifacts\[\d+\]\.image$")


def _built_by_skaffold(ref: ImageRef) -> ImageRef:
    """Skaffold's ``build.artifacts[].image`` names an image it builds, never a pull."""
    if not _ARTIFACT.search(ref.context.field or ""):
        return ref
    detail = f"{ref.text}: an image Skaffold builds (build.artifacts), not pulled"
    return dataclasses.replace(ref, reference=None, skip=Skip.BUILT_LOCALLY, detail=detail)


def _patch_where(path: str, root: Node, listed: tuple[str, str | None] | None) -> Where:
    kind = text_of(get(root, "kind"))
    name = text_of(get(get(root, "metadata"), "name"))
    if listed is not None:
        return Where(
            path, Source.KUBERNETES, kind or listed[1], name, notes=(f"kustomize patch in {listed[0]}",)
        )
    if kind and isinstance(get(root, "spec"), MappingNode):
        return Where(path, Source.KUBERNETES, kind, name, notes=("no apiVersion",))
    if _is_json_patch(root):
        return Where(path, Source.KUBERNETES, notes=("JSON 6902 patch",))
    return Where(path, Source.YAML)


def _is_json_patch(root: Node) -> bool:
    return isinstance(root, SequenceNode) and any(
        isinstance(get(x, "op"), ScalarNode) and isinstance(get(x, "path"), ScalarNode) for x in root.value
    )


def patch_of(path: str, repo: Repo) -> tuple[str, str | None] | None:
    """(kustomization path, target kind or None) when a kustomization in the file's directory or
    the one above lists ``path`` as a patch; None otherwise (or when it cannot be read)."""
    here = posixpath.dirname(path)
    dirs = dict.fromkeys([here, posixpath.dirname(here)] if here else [here])
    for d in dirs:
        names = set(repo.listdir(d))
        for base in _KUSTOMIZATIONS:
            if base not in names:
                continue
            kpath = posixpath.join(d, base) if d else base
            text = repo.read_text(kpath)
            if text is None:
                continue
            try:
                docs = documents(text, want=lambda c: "atch" in c)
            except YamlRejected:
                continue
            for kdoc in docs[:1]:
                for rel, kind in _patches(kdoc.root):
                    if posixpath.normpath(posixpath.join(d, rel)) == path:
                        return kpath, kind
    return None


def _patches(root: Node) -> Iterator[tuple[str, str | None]]:
    """(relative path, target kind) of each patch file a kustomization lists."""
    for key in ("patchesStrategicMerge", "patches", "patchesJson6902"):
        seq = get(root, key)
        if not isinstance(seq, SequenceNode):
            continue
        for entry in seq.value:
            if isinstance(entry, ScalarNode) and "\n" not in entry.value:
                yield entry.value, None
            elif isinstance(entry, MappingNode):
                rel = text_of(get(entry, "path"))
                if rel:
                    yield rel, text_of(get(get(entry, "target"), "kind"))
