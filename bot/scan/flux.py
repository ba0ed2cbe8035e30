"""Flux objects: the images a GitOps repository pins outside any pod spec.

Renovate reads Flux manifests only when configured (its default pattern is
``gotk-components.yaml``); here any YAML finder that meets a Flux object hands it to
:func:`document`, as it does Argo CD Applications:

- ``HelmRelease``: ``spec.values`` read as Helm values (``*Image`` strings, ``global.imageRegistry``,
  an image map without a tag reported as ``tag-from-chart-default``: the chart is remote, so its
  ``appVersion`` is not known here), and ``spec.postRenderers[].kustomize.images``;
- ``Kustomization`` (``kustomize.toolkit.fluxcd.io``): ``spec.images``, shaped as kustomize's;
- ``ImageRepository`` (``image.toolkit.fluxcd.io``): ``spec.image`` names a repository the
  image-reflector lists tags of, never something pulled, so it is reported as
  ``repository-only`` (pinning it to a tag would break image automation);
- ``OCIRepository``: ``url`` (``oci://...``) with ``ref.tag`` / ``ref.digest``, reported as an
  ``oci-artifact`` (manifests, not a container image), one :class:`~bot.model.Part` per written
  field. Flux prefers ``digest``, then ``semver``, then ``tag``; a ``semver`` range is resolved by
  the controller, so it is reported as templated, and no ``ref`` means the ``latest`` tag.

Every other ``image:`` key in the object is read as in any YAML file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.model import ImageRef, Part, Role, Skip, Source
from bot.scan.common import make_ref
from bot.scan.kustomize import entries
from bot.scan.yamlimages import Path, Where, any_image_key, global_registry, images
from bot.scan.yamlsrc import Doc, get, get_path, text_of

OCI = "oci://"
GROUPS = (
    "helm.toolkit.fluxcd.io/",
    "kustomize.toolkit.fluxcd.io/",
    "source.toolkit.fluxcd.io/",
    "image.toolkit.fluxcd.io/",
)


def handles(api: str, kind: str) -> bool:
    return api.startswith(GROUPS) and kind in (
        "HelmRelease",
        "Kustomization",
        "OCIRepository",
        "ImageRepository",
    )


def document(doc: Doc, obj: Node, where: Where, prefix: Path = ()) -> Iterator[ImageRef]:
    """References in one Flux object, in document order."""
    found: list[ImageRef] = []
    spec = get(obj, "spec")
    if where.kind == "HelmRelease":
        values = get(spec, "values")
        if isinstance(values, MappingNode):
            vwhere = dataclasses.replace(where, strings=any_image_key, registry=global_registry(doc, values))
            found += images(doc, values, vwhere, (*prefix, "spec", "values"))
        renderers = get(spec, "postRenderers")
        if isinstance(renderers, SequenceNode):
            for i, r in enumerate(renderers.value):
                at = (*prefix, "spec", "postRenderers", i, "kustomize", "images")
                found += entries(doc, get_path(r, "kustomize", "images"), where, at)
    elif where.kind == "Kustomization":
        found += entries(doc, get(spec, "images"), where, (*prefix, "spec", "images"))
    elif where.kind == "ImageRepository":
        image = get(spec, "image")
        if isinstance(image, ScalarNode) and text_of(image) is not None:
            where.seen.add(id(image))
            ctx = where.context((*prefix, "spec", "image"), None)
            part = doc.part(image, Role.REPOSITORY)
            why = "a repository Flux lists tags of; an ImagePolicy picks the tag"
            found.append(
                make_ref(
                    where.path, Source.FLUX, image.value, [part], ctx, skip=Skip.REPOSITORY_ONLY, detail=why
                )
            )
    elif where.kind == "OCIRepository":
        ref = _oci(doc, spec, where, (*prefix, "spec"))
        if ref is not None:
            found.append(ref)
    found += images(doc, obj, where, prefix)
    found.sort(key=lambda r: (r.line, r.column))
    yield from found


def _oci(doc: Doc, spec: Node | None, where: Where, spath: Path) -> ImageRef | None:
    url = get(spec, "url")
    if not isinstance(url, ScalarNode) or not url.value.startswith(OCI):
        return None
    where.seen.add(id(url))
    parts: list[Part] = [doc.part(url, Role.REPOSITORY)]
    name = url.value[len(OCI) :]
    ref = get(spec, "ref")
    fields = {k: get(ref, k) for k in ("tag", "digest", "semver")}
    written = {k: text_of(v, numeric=True) for k, v in fields.items() if isinstance(v, ScalarNode)}
    for key, role in (("tag", Role.TAG), ("digest", Role.DIGEST)):
        node = fields[key]
        if isinstance(node, ScalarNode) and written.get(key):
            parts.append(doc.part(node, role))
            where.seen.add(id(node))
    tag, digest, semver = written.get("tag"), written.get("digest"), written.get("semver")
    text = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    ctx = where.context((*spath, "url"), None, () if tag or digest or semver else ("no ref: the latest tag",))
    if semver and not digest:
        return make_ref(
            where.path,
            Source.FLUX,
            name,
            [p for p in parts if p.role is not Role.TAG],
            ctx,
            skip=Skip.TEMPLATED,
            detail=f"semver range {semver!r}: the controller picks the tag",
            artifact="oci-artifact",
        )
    return make_ref(where.path, Source.FLUX, text, parts, ctx, artifact="oci-artifact")
