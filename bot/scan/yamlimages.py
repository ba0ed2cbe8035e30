"""The generic YAML image walker that the Kubernetes, Helm values, kustomize, Ansible, GitHub
Actions, Argo CD and Flux readers share, so that an ``image:`` key means the same thing in every
file kind. It imports nothing above it: which reader a whole Kubernetes object goes to (Argo CD,
Flux, or this walker) is decided one level up, by :mod:`bot.scan.manifests`.

One pass over a composed document (:func:`images`) looks at every mapping key that ends in
``image`` (any case) and reads its value as

- a string: the whole reference (``image: nginx:1.27``), for keys ``image`` everywhere and for
  any ``*image`` key where :attr:`Where.strings` says so (Helm values);
- a mapping with ``reference``: a Kubernetes image volume (``volumes[].image.reference``);
- a mapping with ``repository``/``name``/``image``: a Helm-style image map (:func:`helm_map`);
- anything else under ``image``: a non-string value, reported as skipped.

In Helm values (:attr:`Where.values`) a mapping under any other key is an image map too when it
plainly is one (:func:`_bare_image_map`: ``redis: {repository: bitnami/redis, tag: 7.2.4}``).

Every value node is reported once (``seen``), at its first occurrence in document order, which is
the anchor when aliases share it. Container context (name, whether the command runs a shell) comes
from the mapping that holds the key.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.model import Context, ImageRef, Part, Role, Skip, Source, Span
from bot.reference import is_tag, qualified
from bot.scan.common import TEMPLATE, make_ref
from bot.scan.text import Locator
from bot.scan.yamlsrc import (
    FLOAT,
    INT,
    MAX_DEPTH,
    MAX_NODES,
    NULL,
    Doc,
    YamlRejected,
    dedupe,
    documents,
    dotted,
    get,
    get_path,
    has_key_with,
    items,
    text_of,
)

Path = tuple[str | int, ...]

# Helm image-map keys, in the order of preference when several name the same piece.
_REPO_KEYS = ("repository", "repo", "name", "image")
_TAG_KEYS = ("tag", "version")
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "fish", "pwsh", "powershell"})
_WRAPPERS = frozenset({"env", "tini", "dumb-init", "exec", "nice", "nohup", "su-exec", "gosu", "busybox"})
_HEREDOC = re.compile(r"<<-?\s*['\"]?[A-Za-z_]")


def want(chunk: str) -> bool:
    """Linear pre-filter: a document that never spells ``image`` (``images``, ``docker_image``,
    ``image.repository`` parameters included) nor ``oci://`` (a Flux OCIRepository) holds
    nothing for these finders. A large document (a CRD bundle whose every description says
    "image") must have a key spelling it (:func:`~bot.scan.yamlsrc.has_key_with`), unless it is
    an Argo CD object, whose Helm parameters name images in values (``name: sidecar.image``)."""
    if "mage" not in chunk and "MAGE" not in chunk:
        return "oci://" in chunk
    if len(chunk) < _LARGE_DOC or "argoproj.io/" in chunk:
        return True
    return has_key_with(chunk) or "oci://" in chunk


_LARGE_DOC = 32 << 10


def want_values(chunk: str) -> bool:
    """:func:`want` for a document of Helm values, which may also hold an image map under a key
    that never spells ``image`` (``redis: {repository:, tag:}``)."""
    return want(chunk) or ("repository" in chunk and "tag" in chunk)


def want_with_values(chunk: str) -> bool:
    """:func:`want` for a document that may embed Helm values (a Flux HelmRelease, an Argo CD
    Application, a kustomization's ``helmCharts``)."""
    return want(chunk) or ("alues" in chunk and "repository" in chunk and "tag" in chunk)


def image_key_only(key: str) -> bool:
    """Outside Helm values only ``image:`` itself holds a whole reference string."""
    return key.lower() == "image"


def any_image_key(key: str) -> bool:
    """In Helm values any ``*image`` key may hold one (``initImage: busybox:1.36``), as Renovate
    reads them."""
    return key.lower().endswith("image")


@dataclass(slots=True)
class Where:
    """What a reference found in a document is reported as, and the Helm values it may use."""

    path: str
    source: Source
    kind: str | None = None
    name: str | None = None
    strings: Callable[[str], bool] = image_key_only
    registry: Part | None = None  # global.imageRegistry in force, as written
    chart: Callable[[Path], tuple[str | None, str]] | None = None  # image map path -> (tag, note)
    notes: tuple[str, ...] = ()
    seen: set[int] = field(default_factory=set)  # value nodes already reported

    @property
    def values(self) -> bool:
        """Whether this is Helm values (a values file, HelmRelease or Argo CD values, kustomize
        ``valuesInline``): every such context reads ``*image`` strings as Renovate does."""
        return self.strings is any_image_key

    def context(self, fpath: Path, holder: MappingNode | None, notes: tuple[str, ...] = ()) -> Context:
        container = shell = None
        if holder is not None:
            if len(fpath) >= 2 and isinstance(fpath[-2], int):
                container = text_of(get(holder, "name"))
            shell = needs_shell(holder)
        return Context(self.kind, self.name, container, shell, dotted(fpath), (*self.notes, *notes))


# --- the walker ------------------------------------------------------------------------------


Link = tuple["Link", str | int] | None  # a path as a linked list: built only when reported


def unlink(link: Link) -> Path:
    """The path a :data:`Link` stands for."""
    out: list[str | int] = []
    while link is not None:
        link, key = link
        out.append(key)
    return tuple(reversed(out))


def mappings(
    root: Node, limit: int = MAX_NODES, doc: Doc | None = None
) -> Iterator[tuple[Link, MappingNode]]:
    """Pre-order (path, mapping) over the tree: :func:`~bot.scan.yamlsrc.walk`'s guarantees
    (each node once, iterative, node and depth limits, a duplicate key's last value only, whose
    warning names the file's line given ``doc``) without yielding
    scalars, which are most nodes and never interesting on their own, and with paths as links
    that cost nothing until a reference needs its field."""
    seen: set[int] = set()
    stack: list[tuple[Link, int, Node]] = [(None, 0, root)]
    count = 0
    while stack:
        link, depth, node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if depth > MAX_DEPTH:
            raise YamlRejected(f"nesting deeper than {MAX_DEPTH} levels")
        pairs = node.value
        count += len(pairs) + 1
        if count > limit:
            raise YamlRejected(f"more than {limit} YAML nodes")
        if isinstance(node, MappingNode):
            dedupe(node, doc)  # a duplicate key's last value only, with a warning
            pairs = node.value
            yield link, node
            for k, v in reversed(pairs):
                if not isinstance(v, ScalarNode):
                    stack.append(((link, k.value if isinstance(k, ScalarNode) else "?"), depth + 1, v))
        elif isinstance(node, SequenceNode):
            for i in range(len(pairs) - 1, -1, -1):
                if not isinstance(pairs[i], ScalarNode):
                    stack.append(((link, i), depth + 1, pairs[i]))


def images(doc: Doc, root: Node, where: Where, prefix: Path = ()) -> Iterator[ImageRef]:
    """Every reference under ``root``; ``prefix`` is the path of ``root`` in its document."""
    for link, node in mappings(root, doc=doc):
        path: Path | None = None
        found: list[tuple[int, ImageRef]] = []  # (value node id, reference) in key order
        split = False
        for k, v in node.value:
            if not isinstance(k, ScalarNode) or id(v) in where.seen:
                continue
            key = k.value
            low = key.lower()
            if not low.endswith("image"):
                if "image" in low:
                    if isinstance(v, MappingNode) and low.endswith("images"):
                        if path is None:
                            path = (*prefix, *unlink(link))
                        found += ((id(v), r) for r in _image_table(doc, v, (*path, key), where))
                    elif _SPLIT.match(low):
                        split = True
                elif low in _ARG_KEYS or (
                    low == "value" and isinstance(v, ScalarNode) and "name" in _keys(node)
                ):
                    if path is None:
                        path = (*prefix, *unlink(link))
                    found += ((0, r) for r in _in_strings(doc, node, v, (*path, key), where))
                elif isinstance(v, MappingNode) and where.values and _bare_image_map(low, v):
                    if path is None:
                        path = (*prefix, *unlink(link))
                    bare = helm_map(doc, v, (*path, key), where)
                    if bare is not None:
                        where.seen.add(id(v))
                        found.append((id(v), bare))
                continue
            if path is None:
                path = (*prefix, *unlink(link))
            fpath = (*path, key)
            ref: ImageRef | None = None
            if isinstance(v, MappingNode):
                ref = _image_mapping(doc, v, fpath, where, node)
                if ref is None:  # `image: {busybox: {repository:, tag:}, ...}`: a table of maps
                    found += ((id(v), r) for r in _image_table(doc, v, fpath, where))
            elif isinstance(v, ScalarNode):
                text = text_of(v)
                if low == "image":
                    if v.tag != NULL:
                        ref = string_ref(doc, v, fpath, where, node)
                elif text and text.strip() and (where.strings(key) or strict_reference(text)):
                    ref = string_ref(doc, v, fpath, where, node)
            elif low == "image":
                ref = _non_string(doc, v, fpath, where, node)
            if ref is not None:
                where.seen.add(id(v))
                found.append((id(v), ref))
        if split:
            if path is None:
                path = (*prefix, *unlink(link))
            found = _split_fields(doc, node, path, where, found)
        if len(found) > 1:
            found.sort(key=lambda f: f[1].parts[0].span.start)
        for _id, ref in found:
            yield ref


def strict_reference(text: str) -> bool:
    """Whether a string under a ``*Image`` key outside Helm values (``configReloaderImage``,
    ``containerImage``) is taken as a reference: only when Docker's grammar reads it with a tag or
    digest, so ``pullImage: "true"``, ``logoImage: img/logo.png`` or a bare name never are."""
    from bot.reference import ReferenceError, parse

    if TEMPLATE.search(text):
        return False
    try:
        ref = parse(text)
    except ReferenceError:
        return False
    return ref.tag is not None or ref.digest is not None


# Keys that make a `repository` + `tag` map something else: a chart or git source, a download.
_NOT_IMAGE = frozenset({"url", "version", "chart", "branch", "ref", "revision", "commit", "path", "repourl"})


def _bare_image_map(key: str, node: MappingNode) -> bool:
    """Whether a Helm values map under a key that does not name an image (``redis:``,
    ``busybox:``) is an image map anyway: ``repository`` and a non-empty ``tag`` Docker accepts,
    the repository a plain image name (no URL, no template, no tag of its own), and no key that
    makes it a chart, git or download source. ``key`` is the lower-cased key holding it."""
    if "git" in key or "chart" in key:
        return False
    fields = {k.value: v for k, v in node.value if isinstance(k, ScalarNode)}
    if "repository" not in fields or "tag" not in fields or not _NOT_IMAGE.isdisjoint(fields):
        return False
    repo, tag = text_of(fields["repository"]), text_of(fields["tag"], numeric=True)
    if not repo or not tag or not is_tag(tag) or "://" in repo or TEMPLATE.search(repo):
        return False
    from bot.reference import ReferenceError, parse

    try:
        ref = parse(repo)
    except ReferenceError:
        return False
    return ref.tag is None and ref.digest is None


def _keys(node: MappingNode) -> set[str]:
    return {k.value for k, _v in node.value if isinstance(k, ScalarNode)}


def string_ref(doc: Doc, node: ScalarNode, fpath: Path, where: Where, holder: MappingNode | None) -> ImageRef:
    """A whole reference written as one scalar; non-strings (``123``, ``!Ref x``) are skipped."""
    part = doc.part(node, Role.IMAGE)
    ctx = where.context(fpath, holder)
    if text_of(node) is None:
        return make_ref(
            where.path,
            where.source,
            part.text,
            [part],
            ctx,
            skip=Skip.NON_STRING,
            detail=f"not a string: {_describe_tag(node)}",
        )
    return make_ref(where.path, where.source, part.text, [part], ctx)


def _written(doc: Doc, node: Node, role: Role) -> Part:
    """A part for a collection where a scalar belongs: its text as written, for the report."""
    s, e = doc.start(node), doc.base + node.end_mark.index
    written = doc.loc.text[s:e].rstrip()
    return Part(role, written, doc.loc.span(s, s + len(written)))


def _non_string(doc: Doc, node: Node, fpath: Path, where: Where, holder: MappingNode) -> ImageRef:
    part = _written(doc, node, Role.IMAGE)
    written = part.text
    return make_ref(
        where.path,
        where.source,
        written,
        [part],
        where.context(fpath, holder),
        skip=Skip.NON_STRING,
        detail=f"not a string: {_describe_tag(node)}",
    )


def _describe_tag(node: Node) -> str:
    tag = node.tag or ""
    short = tag.removeprefix("tag:yaml.org,2002:")
    kind = {ScalarNode: "scalar", SequenceNode: "list", MappingNode: "mapping"}[type(node)]
    return f"{kind} ({short})" if short != tag else f"{kind} tagged {tag}"


def _image_mapping(
    doc: Doc, node: MappingNode, fpath: Path, where: Where, holder: MappingNode
) -> ImageRef | None:
    ref_node = get(node, "reference")
    if isinstance(ref_node, ScalarNode) and get(node, "repository") is None:
        # Kubernetes image volume: volumes[].image.reference (KEP-4639).
        return string_ref(doc, ref_node, (*fpath, "reference"), where, None)
    return helm_map(doc, node, fpath, where)


# --- fields split by name prefix, image tables, references inside strings --------------------

# `imageRepository` + `imageTag`, `initImageName` + `initImageTag`, `image_repository`: one image
# whose pieces are sibling keys sharing a prefix that ends in "image".
_SPLIT = re.compile(r"(.*image)[-_]?(repository|repo|name|registry|tag|version|digest)")
_SPLIT_SLOTS = {
    "repository": ("repository", Role.REPOSITORY),
    "repo": ("repository", Role.REPOSITORY),
    "name": ("repository", Role.NAME),
    "registry": ("registry", Role.REGISTRY),
    "tag": ("tag", Role.TAG),
    "version": ("tag", Role.TAG),
    "digest": ("digest", Role.DIGEST),
}
# Keys whose strings are a command line or a value handed to a program, where a fully qualified
# reference may sit inside the text (`--prometheus-config-reloader=quay.io/...:v0.79.2`).
_ARG_KEYS = frozenset({"args", "command", "extraargs", "extra_args"})
_TOKEN = re.compile(r"[^\s=,;'\"()<>|`]+")


def _split_fields(
    doc: Doc, node: MappingNode, path: Path, where: Where, found: list[tuple[int, ImageRef]]
) -> list[tuple[int, ImageRef]]:
    """Add the references of ``<prefix>Repository``/``Name`` + ``Tag`` (+ ``Registry``,
    ``Digest``) groups in ``node``. A group's repository may also be the bare ``<prefix>`` key
    (``image: org/app`` + ``imageTag: 1.2``), whose string reference it then replaces. A
    repository without tag counts only when it is a whole reference (CloudNativePG's
    ``imageName: ghcr.io/cloudnative-pg/postgresql:17.2``): alone, ``imageRepository`` is as
    often a registry prefix (kubeadm). A tag alone completes an image written elsewhere."""
    groups: dict[str, dict[str, tuple[str, Role, Node]]] = {}
    bare: dict[str, tuple[str, Node]] = {}
    for k, v in node.value:
        if not isinstance(k, ScalarNode) or (isinstance(v, ScalarNode) and v.tag == NULL):
            continue
        low = k.value.lower()
        m = _SPLIT.fullmatch(low)
        if m is not None:
            slot, role = _SPLIT_SLOTS[m.group(2)]
            groups.setdefault(m.group(1), {}).setdefault(slot, (k.value, role, v))
        elif low.endswith("image"):
            bare[low] = (k.value, v)
    out = list(found)
    for prefix, chosen in groups.items():
        if "repository" not in chosen and prefix in bare and "tag" in chosen:
            key, v = bare[prefix]
            if isinstance(v, ScalarNode) and text_of(v):
                chosen["repository"] = (key, Role.NAME, v)
                out = [f for f in out if f[0] != id(v)]
                where.seen.discard(id(v))
        if "repository" not in chosen or any(id(v) in where.seen for _k, _r, v in chosen.values()):
            continue
        key, _role, repo = chosen["repository"]
        fpath = (*path, key)
        if "tag" not in chosen and "digest" not in chosen:
            _sibling_tag(node, chosen)
        if "tag" in chosen or "digest" in chosen:
            ref = compose(doc, chosen, fpath, where)
        elif len(chosen) == 1 and isinstance(repo, ScalarNode) and strict_reference(text_of(repo) or ""):
            ref = string_ref(doc, repo, fpath, where, node)
        elif len(chosen) == 1 and isinstance(repo, ScalarNode) and _repository_path(repo):
            part = doc.part(repo, Role.REPOSITORY)  # a repository, and no tag anywhere: skipped
            detail = f"{part.text}: no tag is written in this block"
            ref = make_ref(where.path, where.source, part.text, [part], where.context(fpath, node),
                           skip=Skip.NO_TAG, detail=detail)  # fmt: skip
        else:
            continue  # `imageRepository: registry.k8s.io` alone (kubeadm) is a registry prefix
        for _k, _r, v in chosen.values():
            where.seen.add(id(v))
        out.append((id(repo), ref))
    return out


def _sibling_tag(node: MappingNode, chosen: dict[str, tuple[str, Role, Node]]) -> None:
    """``imageRepository: x`` with its tag under a plain ``tag:``/``version:`` in the same block
    (charts that name only the repository after the image)."""
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value.lower() in ("tag", "version", "imagetag"):
            text = text_of(v, numeric=True)
            if text and is_tag(text):
                chosen["tag"] = (k.value, Role.TAG, v)
                return


def _repository_path(node: Node) -> bool:
    """A repository with a path (``ghcr.io/org/app``, ``org/app``), not a registry prefix alone."""
    text = text_of(node) or ""
    return bool(text) and "/" in text.strip("/") and not TEMPLATE.search(text) and "://" not in text


def _image_table(doc: Doc, node: MappingNode, fpath: Path, where: Where) -> Iterator[ImageRef]:
    """``images: {controller: {registry:, repository:, tag:}, ...}``, a table of Helm image maps
    (New Relic, Grafana charts). An entry needs ``repository``, or ``name`` with a tag, digest or
    registry beside it, so that a table of other things called images (logos, VM images with a
    ``name``) is not read as one."""
    for ck, cv in node.value:
        if not isinstance(ck, ScalarNode) or not isinstance(cv, MappingNode) or id(cv) in where.seen:
            continue
        keys = _keys(cv)
        if "repository" in keys or ("name" in keys and keys & {"tag", "digest", "registry"}):
            ref = helm_map(doc, cv, (*fpath, ck.value), where)
            if ref is not None:
                where.seen.add(id(cv))
                yield ref


def _in_strings(doc: Doc, holder: MappingNode, value: Node, fpath: Path, where: Where) -> Iterator[ImageRef]:
    """Fully qualified references inside container arguments (``args``, ``command``,
    ``extraArgs`` lists, strings or maps) and env values (a ``value`` beside a ``name``). Only
    :func:`bot.reference.qualified` text counts: a registry host, a path and a tag or digest,
    so flags, URLs, paths and versions never do. Each part spans the reference's bytes inside the
    string, so an edit changes just those."""
    if isinstance(value, ScalarNode):
        scalars: list[tuple[Path, ScalarNode]] = [(fpath, value)]
    elif isinstance(value, SequenceNode):
        scalars = [((*fpath, i), x) for i, x in enumerate(value.value) if isinstance(x, ScalarNode)]
    elif isinstance(value, MappingNode):
        scalars = [((*fpath, str(k.value)), x) for k, x in value.value if isinstance(x, ScalarNode)]
    else:
        return
    key = str(fpath[-1])
    if key == "value":
        name = text_of(get(holder, "name"))
        notes: tuple[str, ...] = (f"in env value {name}",) if name else ("in a value",)
        container = None
    else:
        notes, container = (f"in {key}",), text_of(get(holder, "name"))
    for spath, node in scalars:
        text = text_of(node)
        if (
            text is None
            or id(node) in where.seen
            or "/" not in text
            or ("." not in text and "localhost" not in text)
        ):
            continue
        found = False
        for m in _TOKEN.finditer(text):
            if qualified(m.group()) is None:
                continue
            found = True
            part = piece(doc, node, m.start(), m.end())
            base = where.context(spath, None, notes)
            ctx = Context(base.kind, base.name, container, None, base.field, base.notes)
            yield make_ref(where.path, where.source, part.text, [part], ctx)
        if found:
            where.seen.add(id(node))


def piece(doc: Doc, node: ScalarNode, start: int, end: int, role: Role = Role.IMAGE) -> Part:
    """A part for ``node.value[start:end]``, exact wherever its bytes can be found: directly in
    a plain or quoted scalar whose bytes are its value, else (block scalars, escapes elsewhere in
    the string) by matching the piece's occurrence in the scalar's bytes. Only when the
    occurrences disagree is the part located at the whole scalar and marked not raw."""
    whole = doc.part(node, role)
    text = node.value[start:end]
    s, e = doc.bounds(node)
    if whole.quote:
        s, e = s + 1, e - 1
    if whole.raw:
        return Part(role, text, doc.loc.span(s + start, s + end), whole.quote, True)
    raw = doc.loc.text[s:e]
    nth = node.value.count(text, 0, start)
    if text and raw.count(text) == node.value.count(text):
        at = -1
        for _ in range(nth + 1):
            at = raw.find(text, at + 1)
        return Part(role, text, doc.loc.span(s + at, s + at + len(text)), whole.quote, True)
    return Part(role, text, whole.span, whole.quote, False)


# --- Helm image maps -------------------------------------------------------------------------


def helm_map(doc: Doc, node: MappingNode, fpath: Path, where: Where) -> ImageRef | None:
    """A Helm-style image map, or None when it names no repository.

    The effective reference follows the bitnami ``common.images.image`` helper, which most charts
    copy: the registry is ``global.imageRegistry`` when set, else ``registry``; the reference is
    ``registry + "/" + repository`` (just ``repository`` without a registry), then ``"@" +
    digest`` when a digest is set (the tag is then ignored), else ``":" + tag``, else ``":" +``
    the chart's ``appVersion``. ``name`` or ``image`` stand for ``repository`` and ``version``
    for ``tag``. One :class:`Part` per written scalar, so an edit touches only what changes;
    ``text`` joins the map's own scalars as written.

    ``sha`` (prometheus-community charts: kube-prometheus-stack, Grafana's) holds the digest's
    hex without ``sha256:``, and those charts render ``repository:tag@sha256:<sha>``: the tag is
    kept beside the digest. Its part is a :class:`Role.DIGEST` with the hex as written, and the
    reference carries :data:`HEX_DIGEST` as a note so the edit engine writes hex there too.
    """
    chosen: dict[str, tuple[str, Node]] = {}
    for key, _k, v in items(node):
        if key is None:
            continue
        low = key.lower()
        slot = (
            "repository"
            if low in _REPO_KEYS
            else "tag"
            if low in _TAG_KEYS
            else low
            if low in ("registry", "digest")
            else "digest"
            if low == "sha"
            else None
        )
        if slot is not None and slot not in chosen and not (isinstance(v, ScalarNode) and v.tag == NULL):
            chosen[slot] = (low, v)
    if "repository" not in chosen:
        return _tag_only(doc, node, chosen, fpath, where)
    if isinstance(chosen["repository"][1], MappingNode):
        return None
    return compose(doc, {slot: (key, _ROLES[key], v) for slot, (key, v) in chosen.items()}, fpath, where)


def _tag_only(
    doc: Doc, node: MappingNode, chosen: dict[str, tuple[str, Node]], fpath: Path, where: Where
) -> ImageRef | None:
    """Helm values that override only an image's tag (or digest): the chart's default repository
    completes it, so the image is reported as skipped, saying so, rather than dropped; once the
    chart is read (bot.pipeline.expand_charts) the effective image replaces it. Not a map that
    nests other maps (a table of images), and only in Helm values."""
    if not where.values or any(isinstance(v, MappingNode) for _key, _k, v in items(node)):
        return None
    written: list[tuple[str, ScalarNode, Role, str]] = []
    for slot, role in (("tag", Role.TAG), ("digest", Role.DIGEST)):
        key, v = chosen.get(slot, ("", None))
        text = text_of(v, numeric=True) if isinstance(v, ScalarNode) else None
        if isinstance(v, ScalarNode) and text is not None:
            written.append((key, v, role, text))
    if not written:
        return None
    where.seen.update(id(v) for _key, v, _role, _text in written)
    empty = '""'
    text = " ".join(f"{key}: {value or empty}" for key, _v, _role, value in written)
    parts = [doc.part(v, role) for _key, v, role, _text in written]
    if any(value for _key, _v, _role, value in written):
        why = f"{text} written; the repository is the chart's default"
    else:
        why = f"{text}: nothing pinned, the chart's default image is used"
    ctx = where.context(fpath, None)
    return make_ref(where.path, where.source, text, parts, ctx, skip=Skip.REPOSITORY_FROM_CHART, detail=why)


_ROLES = {
    "registry": Role.REGISTRY,
    "repository": Role.REPOSITORY,
    "repo": Role.REPOSITORY,
    "name": Role.NAME,
    "image": Role.NAME,
    "tag": Role.TAG,
    "version": Role.TAG,
    "digest": Role.DIGEST,
    "sha": Role.DIGEST,
}

# The note on a reference whose digest part is a bare hex (``sha: <hex>``); bot.edit.plan reads it.
HEX_DIGEST = "sha is the digest's hex without sha256:"


def compose(doc: Doc, chosen: dict[str, tuple[str, Role, Node]], fpath: Path, where: Where) -> ImageRef:
    """The reference split over ``chosen`` scalars (slot -> (key as written, role, value)), the
    slots being ``registry``, ``repository``, ``tag`` and ``digest``: joined and judged as
    :func:`helm_map` documents; a repository without tag or digest is ``CHART_DEFAULT``."""
    parts: list[Part] = []
    values: dict[str, str] = {}
    bad: list[str] = []
    notes: list[str] = []
    for slot, (key, role, v) in chosen.items():
        if not isinstance(v, ScalarNode):
            parts.append(_written(doc, v, role))
            bad.append(f"{key} is a {'list' if isinstance(v, SequenceNode) else 'mapping'}")
            continue
        parts.append(doc.part(v, role))
        text = text_of(v, numeric=slot == "tag")
        if text is None:
            bad.append(f"{key} is not a string: {_describe_tag(v)}")
            continue
        values[slot] = text
        if slot == "tag" and v.tag in (INT, FLOAT):
            as_number = repr(float(text)) if v.tag == FLOAT else text
            if v.tag == FLOAT and as_number != text:
                notes.append(f"unquoted tag {text} is read by Helm as the number {as_number}: quote it")
            else:
                notes.append(f"unquoted tag {text} is read by Helm as a number: quote it")
        where.seen.add(id(v))
    parts.sort(key=lambda p: p.span.start)
    registry, repository = values.get("registry", ""), values.get("repository", "")
    tag, digest = values.get("tag", ""), values.get("digest", "")
    hex_digest = "digest" in chosen and chosen["digest"][0].lower() == "sha"
    if hex_digest:
        notes.append(HEX_DIGEST)
        digest = f"sha256:{digest}" if digest else ""
    written = f"{registry}/{repository}" if registry else repository
    written += (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    ctx_notes = tuple(notes)
    ctx = where.context(fpath, None)
    if bad:
        return make_ref(
            where.path,
            where.source,
            written,
            parts,
            _with(ctx, ctx_notes),
            skip=Skip.NON_STRING,
            detail="; ".join(bad),
        )
    eff_registry = registry
    if where.registry is not None and where.registry.text:
        eff_registry = where.registry.text
        notes.append(
            f"global.imageRegistry {eff_registry} applied"
            + (f" (overrides registry {registry})" if registry else "")
        )
        parts = [p for p in parts if p.role is not Role.REGISTRY] + [where.registry]
    effective = f"{eff_registry}/{repository}" if eff_registry else repository
    skip: Skip | None = None  # a tag that cannot be known: reported as skipped, with why
    detail: str | None = None
    if hex_digest and digest:  # `repository:tag@sha256:<sha>`; no tag: the appVersion, if known
        chart = None if tag or where.chart is None else where.chart(fpath)
        if not tag and chart is not None and chart[0]:
            tag = chart[0]
            notes.append(chart[1])
        effective += (f":{tag}" if tag else "") + f"@{digest}"
    elif digest:
        effective += f"@{digest}"
        if tag:
            notes.append(f"tag {tag} is ignored: the digest wins (bitnami common.images)")
    elif tag:
        effective += f":{tag}"
    elif not where.values:  # not Helm values: no chart supplies a tag
        skip, detail = Skip.NO_TAG, f"{repository}: no tag is written"
    else:
        chart = where.chart(fpath) if where.chart is not None else None
        if chart is None or not chart[0]:
            why = chart[1] if chart is not None else "no tag written, the chart's appVersion is used"
            skip, detail = Skip.CHART_DEFAULT, f"{repository}: {why}"
        else:
            effective += f":{chart[0]}"
            notes.append(chart[1])
    context = _with(ctx, tuple(notes))
    return make_ref(
        where.path, where.source, written, parts, context, effective=effective, skip=skip, detail=detail
    )


def _with(ctx: Context, notes: tuple[str, ...]) -> Context:
    return (
        ctx
        if not notes
        else Context(ctx.kind, ctx.name, ctx.container, ctx.needs_shell, ctx.field, (*ctx.notes, *notes))
    )


def global_registry(doc: Doc, values_root: Node | None) -> Part | None:
    """``global.imageRegistry`` of a values tree, as written (None when unset or not a string)."""
    node = get_path(values_root, "global", "imageRegistry")
    if isinstance(node, ScalarNode) and text_of(node):
        return doc.part(node, Role.REGISTRY)
    return None


def chart_lookup(path: str, repo: object) -> Callable[[Path], tuple[str | None, str]]:
    """A memoised reader of the tag the chart owning values file ``path`` renders for the image
    map at a path when its tag is empty: ``(tag, note)``, or ``(None, reason)`` (see
    :mod:`bot.scan._chart`: appVersion, ``printf "v%s"``, the cluster version, a sub-chart)."""
    from bot.scan import _chart

    cache: dict[Path, tuple[str | None, str]] = {}
    read: Callable[[str], str | None] = getattr(repo, "read_text", None) or (lambda _p: None)
    listdir: Callable[[str], list[str]] = getattr(repo, "listdir", None) or (lambda _p: [])

    def lookup(fpath: Path) -> tuple[str | None, str]:
        if fpath not in cache:
            cache[fpath] = _chart.default_tag(path, fpath, read, listdir)
        return cache[fpath]

    return lookup


# --- containers ------------------------------------------------------------------------------


def _argv(node: Node | None) -> list[str] | None:
    """A command as a list of words, None when it cannot be known (templated, not strings)."""
    if isinstance(node, SequenceNode):
        words = [text_of(x, numeric=True) for x in node.value]
        return None if any(w is None for w in words) else [w for w in words if w is not None]
    text = text_of(node)
    if text is None:
        return None
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def needs_shell(holder: MappingNode) -> bool | None:
    """Whether the container's command runs a shell (``sh -c``, ``bash``, heredocs, a Tekton
    ``script``): True; known to exec a binary: False; no command or args written: None (the
    image's entrypoint decides)."""
    if text_of(get(holder, "script")) is not None:
        return True
    cmd_node = get(holder, "entrypoint")
    if cmd_node is None:
        cmd_node = get(holder, "command")
    if cmd_node is None:
        args = _argv(get(holder, "args"))
        if args and (_is_shell(args) or any(_HEREDOC.search(a) for a in args)):
            return True
        return None
    cmd = _argv(cmd_node)
    if not cmd or "{{" in cmd[0] or "$" in cmd[0]:
        return None
    return _is_shell(cmd)


def _is_shell(argv: list[str]) -> bool:
    i = 0
    while i < len(argv) - 1 and posixpath.basename(argv[i]) in _WRAPPERS:
        i += 1
        while i < len(argv) - 1 and (argv[i].startswith("-") or "=" in argv[i]):
            i += 1
    return posixpath.basename(argv[i]) in _SHELLS


# --- Kubernetes objects ----------------------------------------------------------------------


def is_object(node: Node | None) -> bool:
    return text_of(get(node, "apiVersion")) is not None and text_of(get(node, "kind")) is not None


# --- YAML inside a string (Argo CD helm.values, Ansible k8s definition) ----------------------


class _Shifted(Locator):
    """Positions in a literal block scalar's content, mapped to the file: line ``i`` of the
    content starts at ``starts[i] + indent`` in the outer text."""

    __slots__ = ("_indent", "_outer", "_starts")

    def __init__(self, inner: str, outer: Locator, starts: list[int], indent: int) -> None:
        super().__init__(inner)
        self._outer, self._starts, self._indent = outer, starts, indent

    def _map(self, index: int) -> int:
        line, col = self.line_col(index)
        return self._starts[line - 1] + self._indent + col - 1

    def span(self, start: int, end: int) -> Span:
        return self._outer.span(self._map(start), self._map(end))


def embedded(doc: Doc, node: ScalarNode, wanted: Callable[[str], bool] = want) -> tuple[list[Doc], bool]:
    """The YAML documents in a string value, with positions in the file, and whether those
    positions are exact (a literal ``|`` block whose lines map one to one). ``wanted`` is the
    pre-filter for each document (:func:`want_values` for Helm values)."""
    inner = node.value
    try:
        docs = documents(inner, want=wanted)
    except YamlRejected:
        return [], True  # a string that is not YAML (Jinja, prose) holds no keys
    if not docs:
        return docs, True
    layout = _block_layout(doc, node) if node.style == "|" else None
    if layout is None:
        return docs, False
    loc = _Shifted(inner, doc.loc, *layout)
    return [Doc(d.root, d.base, loc) for d in docs], True


def _block_layout(doc: Doc, node: ScalarNode) -> tuple[list[int], int] | None:
    text = doc.loc.text
    head_end = text.find("\n", doc.start(node))
    if head_end < 0:
        return None
    lines = node.value.rstrip("\n").split("\n")
    starts, pos = [], head_end + 1
    for _ in lines:
        starts.append(pos)
        nl = text.find("\n", pos)
        pos = len(text) if nl < 0 else nl + 1
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return None
    row = text[starts[first] : starts[first] + 4096]
    indent = len(row) - len(row.lstrip(" ")) - (len(lines[first]) - len(lines[first].lstrip(" ")))
    for start, line in zip(starts, lines, strict=True):
        got = text[start + indent : start + indent + len(line)]
        if line and got != line:
            return None
        if not line and text[start : start + indent].strip(" \r\n"):
            return None
    return starts, indent


def approximate(ref: ImageRef, doc: Doc, node: ScalarNode) -> ImageRef:
    """For YAML in a string we cannot map exactly (escapes, folding): each part is located by
    searching its text inside the string's bytes and marked not raw, so nobody edits it."""
    s0, e0 = doc.start(node), doc.base + node.end_mark.index
    text = doc.loc.text
    parts = []
    cursor = s0
    for p in ref.parts:
        i = text.find(p.text, cursor, e0) if p.text else -1
        span = doc.loc.span(i, i + len(p.text)) if i >= 0 else doc.loc.span(s0, e0)
        cursor = i + len(p.text) if i >= 0 else cursor
        parts.append(Part(p.role, p.text, span, "", False, p.path))
    first = parts[0].span if parts else doc.loc.span(s0, s0)
    from dataclasses import replace

    return replace(ref, parts=tuple(parts), line=first.line, column=first.column)


# --- JSON 6902 patches -----------------------------------------------------------------------


def json_patch(doc: Doc, root: Node, where: Where, prefix: Path = ()) -> Iterator[ImageRef]:
    """``- op: replace`` / ``path: /spec/template/spec/containers/0/image`` / ``value: nginx:1.27``:
    the value of an ``add``/``replace`` whose path ends in ``/image`` is a whole reference."""
    if not isinstance(root, SequenceNode):
        return
    for i, op in enumerate(root.value):
        target = text_of(get(op, "path"))
        value = get(op, "value")
        if (
            target
            and target.rstrip("/").endswith("/image")
            and text_of(get(op, "op")) in ("add", "replace")
            and isinstance(value, ScalarNode)
            and id(value) not in where.seen
        ):
            where.seen.add(id(value))
            yield string_ref(doc, value, (*prefix, i, "value"), where, None)
