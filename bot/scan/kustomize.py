"""Kustomizations: the ``images:`` overrides, Helm values inlined in ``helmCharts``, and patches
written inline (``patches[].patch`` strings, strategic-merge or JSON 6902), reported as Kubernetes.
Patch *files* are read by the Kubernetes finder, which looks up the kustomization that lists them.

An ``images`` entry rewrites every manifest image named ``name``. What is pulled is ``newName``
(else ``name``) with ``":" + newTag`` and/or ``"@" + digest`` (kustomize >= 5 keeps both when both
are set). An entry with only ``name`` changes nothing and is not a reference; one with only
``newName`` keeps the tag of the image it renames, read from the bases the kustomization lists
(``resources:``, files and directories, recursively, within this repository): one tag there makes
the reference ``newName:<tag>`` (the tag is not a part: it is the base's, never edited here);
none or several found, the entry is reported as skipped (``tag-from-base``) saying so. Each written field is
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
from bot.scan.yamlsrc import (
    NULL,
    Doc,
    YamlRejected,
    documents,
    dotted,
    filtered,
    get,
    get_path,
    items,
    text_of,
)

SOURCE = Source.KUSTOMIZE

NAMES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
_FIELDS = {"name": Role.NAME, "newName": Role.REPOSITORY, "newTag": Role.TAG, "digest": Role.DIGEST}


def claims(path: str, head: bytes) -> bool:
    if posixpath.basename(path) in NAMES:
        return True
    return path.endswith((".yaml", ".yml")) and b"kustomize.config.k8s.io/" in head


def find(text: str, path: str, repo: Repo) -> Iterator[ImageRef]:
    for doc in filtered(text, want_with_values):
        where = Where(path, SOURCE, kind=text_of(get(doc.root, "kind")))
        bases = _Bases(path, repo)
        found = list(entries(doc, get(doc.root, "images"), where, ("images",), bases))
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


def entries(
    doc: Doc, seq: Node | None, where: Where, prefix: Path, bases: _Bases | None = None
) -> Iterator[ImageRef]:
    """References in a kustomize ``images:`` list (also Flux ``Kustomization.spec.images``)."""
    if not isinstance(seq, SequenceNode):
        return
    for i, entry in enumerate(seq.value):
        if isinstance(entry, MappingNode):
            ref = _entry(doc, entry, where, (*prefix, i), bases)
            if ref is not None:
                yield ref


def _entry(doc: Doc, entry: MappingNode, where: Where, fpath: Path, bases: _Bases | None) -> ImageRef | None:
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
        name = value.get("name") or ""
        found = bases.tags().get(name, {}) if bases is not None and name else {}
        if len(found) == 1:
            ((base_tag, source),) = found.items()
            ctx = where.context(
                fpath, None, (*notes, f"tag {base_tag} from {source}, the image this entry renames")
            )
            return make_ref(where.path, where.source, ref, parts, ctx, effective=f"{ref}:{base_tag}")
        why = (
            f"the bases tag {name} in several ways ({', '.join(sorted(found))})"
            if found
            else f"no base this scan can read names {name or 'the image'}"
        )
        return make_ref(
            where.path,
            where.source,
            ref,
            parts,
            ctx,
            skip=Skip.TAG_FROM_BASE,
            detail=f"{ref}: the tag is kept from the manifests' {name or 'image'}; {why}",
        )
    return make_ref(where.path, where.source, ref, parts, ctx)


class _Bases:
    """The tags the kustomization's bases give each image name, read on first use: manifests
    listed under ``resources:`` (directories through their kustomization, recursively, bounded),
    and ``images:`` entries with ``newTag`` in those kustomizations."""

    MAX_DEPTH = 6
    MAX_FILES = 300

    def __init__(self, path: str, repo: Repo) -> None:
        self.path = path
        self.repo = repo
        self._tags: dict[str, dict[str, str]] | None = None

    def tags(self) -> dict[str, dict[str, str]]:
        """Image name as written -> {tag: where it is written}, as the bases render them (a
        kustomization's own ``images:`` entries apply over its resources)."""
        if self._tags is None:
            self._files = 0
            self._seen: set[str] = set()
            self._tags = self._kustomization(self.path, 0, top=True)
        return self._tags

    def _read(self, path: str) -> str | None:
        if self._files >= self.MAX_FILES or path in self._seen:
            return None
        self._seen.add(path)
        self._files += 1
        read = getattr(self.repo, "read_text", None)
        return read(path) if read is not None else None

    def _kustomization(self, kpath: str, depth: int, top: bool = False) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        text = self._read(kpath)
        if text is None or depth > self.MAX_DEPTH:
            return out
        try:
            docs = documents(text)
        except YamlRejected:
            return out
        here = posixpath.dirname(kpath)
        for doc in docs[:1]:
            for key in ("resources", "bases", "components"):
                seq = get(doc.root, key)
                if not isinstance(seq, SequenceNode):
                    continue
                for item in seq.value:
                    rel = text_of(item)
                    if not rel or "://" in rel or rel.startswith(("github.com/", "git@")) or "?" in rel:
                        continue
                    target = posixpath.normpath(posixpath.join(here, rel))
                    if target.startswith(".."):
                        continue
                    if target.endswith((".yaml", ".yml", ".json")):
                        _merge(out, self._manifest(target))
                        continue
                    listdir = getattr(self.repo, "listdir", None)
                    names = listdir(target) if listdir is not None else []
                    name = next((n for n in sorted(NAMES) if n in names), None)
                    if name is not None:
                        _merge(out, self._kustomization(posixpath.join(target, name), depth + 1))
            if not top:
                self._entries(get(doc.root, "images"), kpath, out)
        return out

    def _entries(self, seq: Node | None, kpath: str, out: dict[str, dict[str, str]]) -> None:
        """Apply a base's own ``images:`` entries (renames and new tags) over its resources."""
        if not isinstance(seq, SequenceNode):
            return
        for entry in seq.value:
            name = text_of(get(entry, "name"))
            if not name:
                continue
            tag, new_name = text_of(get(entry, "newTag"), numeric=True), text_of(get(entry, "newName"))
            tags = {tag: kpath} if tag else out.get(name, {})
            if new_name:
                out.pop(name, None)
            if tags:
                out[new_name or name] = dict(tags)

    def _manifest(self, path: str) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        text = self._read(path)
        if text is None:
            return out
        try:
            docs = documents(text, want=want_with_values)
        except YamlRejected:
            return out
        for doc in docs:
            for r in images(doc, doc.root, Where(path, Source.KUBERNETES)):
                if r.reference is None or len(r.parts) != 1:
                    continue
                written = r.text.split("@", 1)[0]
                slash = written.rfind("/")
                colon = written.rfind(":")
                if colon > slash:
                    out.setdefault(written[:colon], {}).setdefault(written[colon + 1 :], path)
        return out


def _merge(into: dict[str, dict[str, str]], more: dict[str, dict[str, str]]) -> None:
    for name, tags in more.items():
        for tag, where in tags.items():
            into.setdefault(name, {}).setdefault(tag, where)
