"""Ansible playbooks and roles, wherever they are.

Renovate reads only ``tasks/*.yml``, line by line; Ansible keeps images in handlers, playbooks and
``k8s`` definitions too. We read, at any depth of a play or task list (``block``, ``rescue``,
``always``, ``tasks``, ``handlers`` all nest):

- ``docker_container`` / ``podman_container`` (short or collection names) ``image:``, with the
  module's ``name`` as container and its ``command``/``entrypoint`` for the shell question;
- ``docker_image`` / ``podman_image`` ``name:`` (with ``tag:``) when it pulls: ``source: pull``
  for docker, the default for podman;
- ``k8s`` / ``kubernetes.core.k8s`` ``definition:`` as Kubernetes objects (a mapping, a list, or a
  literal ``|`` YAML string mapped back into the file);
- any other ``image:`` key (``docker_swarm_service``, inline compose definitions);
- Molecule scenarios (``molecule/<scenario>/molecule.yml``): ``platforms[].image``, with
  Molecule's ``${VAR:-default}`` interpolation (the default is the reference), whether Molecule
  builds on it (``pre_build_image: false``, its default) or runs it as is.

Jinja variables (``"{{ app_image }}:{{ app_version }}"``) are resolved from the role's
``defaults``/``vars``, the play's ``vars``/``vars_files``, block and task ``vars`` and the
inventory ``group_vars``/``host_vars`` (:mod:`bot.scan.ansible_vars`, which documents the
precedence): the parts point at the definitions, so a fix edits ``defaults/main.yml``. Filters and
expressions other than ``default('literal')`` stay skipped as templated. Variable files themselves
(role ``defaults``/``vars``, ``group_vars``, ``host_vars``) are claimed and yield nothing: read as
plain YAML they would report the same bytes a second time, with a meaning (``tracer.image``
without its ``tracer.tag``) that can disagree with the use, and the re-scan of a fix would then
see a reference change that no edit meant.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.model import Context, ImageRef, Part, Role, Skip, Source
from bot.scan import Repo
from bot.scan.ansible_vars import Resolver, role_dir
from bot.scan.common import make_ref
from bot.scan.interpolate import Unresolved, expand, joined, scalar_piece, traced_parts
from bot.scan.manifests import objects
from bot.scan.yamlimages import (
    Link,
    Path,
    Where,
    approximate,
    embedded,
    images,
    mappings,
    needs_shell,
    string_ref,
    unlink,
    want,
)
from bot.scan.yamlsrc import Doc, documents, dotted, filtered, get, text_of

SOURCE = Source.ANSIBLE

_COLLECTIONS = ("", "community.docker.", "containers.podman.", "kubernetes.core.", "community.kubernetes.")
CONTAINER_MODULES = frozenset(c + m for c in _COLLECTIONS for m in ("docker_container", "podman_container"))
PULL_MODULES = frozenset(c + m for c in _COLLECTIONS for m in ("docker_image", "podman_image"))
K8S_MODULES = frozenset(c + "k8s" for c in _COLLECTIONS)
_MODULES = CONTAINER_MODULES | PULL_MODULES | K8S_MODULES

_PATH = re.compile(
    r"(?:^|/)(?:roles/[^/]+/(?:tasks|handlers)/|tasks/|handlers/|playbooks?/)[^/]+\.ya?ml$"
    r"|(?:^|/)(?:site|playbook[^/]*)\.ya?ml$"
    r"|(?:^|/)molecule/[^/]+/molecule\.ya?ml$"
)
# Variable files: data that tasks and templates use; each value is reported where it is used.
_VARS = re.compile(
    r"(?:^|/)(?:group_vars|host_vars)/(?:[^/]+/)?[^/]+\.ya?ml$"
    r"|(?:^|/)roles/[^/]+/(?:defaults|vars)/(?:main/)?[^/]+\.ya?ml$"
)
_MOLECULE = re.compile(r"(?:^|/)molecule/[^/]+/molecule\.ya?ml$")
_ROLE_MARKERS = ("tasks", "handlers")
_LIST = re.compile(rb"(?m)^-[ \t]")
_PLAY = re.compile(
    rb"(?m)^[ \t]*(?:-[ \t]+)?(?:hosts|import_playbook|ansible\.builtin\.import_playbook)[ \t]*:"
)
_MODULE = re.compile(
    rb"(?m)^[ \t]+(?:-[ \t]+)?(?:ansible\.builtin\.[a-z_]+|community\.docker\.[a-z_]+|"
    rb"containers\.podman\.[a-z_]+|kubernetes\.core\.[a-z_]+|docker_container|docker_image|"
    rb"podman_container|k8s)[ \t]*:"
)


def claims(path: str, head: bytes) -> bool:
    """Ansible's own folder names, or the shape of its content: a list of plays (``hosts:``) or
    of tasks that call modules by their collection names or container modules."""
    if not path.endswith((".yaml", ".yml")):
        return False
    if _PATH.search(path) or _VARS.search(path):
        return True
    return _LIST.search(head) is not None and (
        _PLAY.search(head) is not None or _MODULE.search(head) is not None
    )


def find(text: str, path: str, repo: Repo) -> Iterator[ImageRef]:
    if _VARS.search(path):
        documents(text)  # only to report a broken file; its values are reported where used
        return
    docs = filtered(text, want)
    if not docs:
        return
    resolver: Resolver | None = None
    molecule = _MOLECULE.search(path) is not None
    for doc in docs:
        where = Where(path, SOURCE)
        found: list[ImageRef] = []
        if molecule:
            found += _platforms(doc, where)
        for link, node in mappings(doc.root, doc=doc):
            found += _task(doc, node, link, where)
        found += images(doc, doc.root, where)
        found.sort(key=lambda r: (r.line, r.column))
        for ref in found:
            if ref.skip is Skip.TEMPLATED and "{{" in ref.text and not molecule:
                if resolver is None:
                    resolver = Resolver(path, text, repo, role=role_dir(path, _ROLE_MARKERS), docs=docs)
                yield resolver.resolve(ref)
            else:
                yield ref


def _platforms(doc: Doc, where: Where) -> Iterator[ImageRef]:
    """Molecule's test instances: each platform's image is pulled (and, unless
    ``pre_build_image: true``, used as the base of the image Molecule builds)."""
    platforms = get(doc.root, "platforms")
    if not isinstance(platforms, SequenceNode):
        return
    for i, platform in enumerate(platforms.value):
        image = get(platform, "image")
        if not isinstance(image, ScalarNode):
            continue
        where.seen.add(id(image))
        fpath = ("platforms", i, "image")
        pre = get(platform, "pre_build_image")
        prebuilt = isinstance(pre, ScalarNode) and pre.value.lower() in ("true", "yes", "on")
        note = "pre_build_image: run as is" if prebuilt else "base of the image Molecule builds"
        ctx = Context("molecule platform", text_of(get(platform, "name")), None, None, dotted(fpath), (note,))
        written = doc.part(image, Role.IMAGE)
        if text_of(image) is None:
            yield _with_context(string_ref(doc, image, fpath, where, None), ctx)
        elif "$" not in written.text:
            yield make_ref(where.path, SOURCE, written.text, [written], ctx)
        else:
            yield _interpolated(doc, image, written, ctx, where.path)


def _interpolated(doc: Doc, node: ScalarNode, written: Part, ctx: Context, path: str) -> ImageRef:
    """Molecule interpolates ``${VAR}``, ``${VAR:-default}`` and ``$$`` as compose does; the
    environment is not in the repository, so a default is the reference."""
    piece = scalar_piece(doc, node, written)
    try:
        pieces = expand(piece, lambda _name: None, dollar_escape=True)
    except Unresolved as exc:
        skip = Skip.VARIABLE if exc.missing else Skip.TEMPLATED
        return make_ref(path, SOURCE, written.text, [written], ctx, skip=skip, detail=str(exc))
    text = joined(pieces)
    parts = traced_parts(pieces, doc.loc) or (replace(written, text=text, raw=False),)
    ctx = replace(ctx, notes=(*ctx.notes, f"default of {written.text}"))
    ref = make_ref(path, SOURCE, text, parts, ctx)
    return replace(ref, line=written.span.line, column=written.span.column)


def _task(doc: Doc, task: MappingNode, link: Link, where: Where) -> Iterator[ImageRef]:
    for k, args in task.value:
        module = k.value if isinstance(k, ScalarNode) else None
        if module not in _MODULES or not isinstance(args, MappingNode):
            continue
        here = Where(where.path, SOURCE, module, text_of(get(task, "name")), seen=where.seen)
        apath = (*unlink(link), module)
        if module in CONTAINER_MODULES:
            image = get(args, "image")
            if isinstance(image, ScalarNode) and id(image) not in where.seen:
                where.seen.add(id(image))
                ref = string_ref(doc, image, (*apath, "image"), here, None)
                container = text_of(get(args, "name"))
                ctx = Context(module, here.name, container, needs_shell(args), ref.context.field)
                yield _with_context(ref, ctx)
        elif module in PULL_MODULES:
            where.seen.add(id(args))  # module arguments, not a Helm image map
            yield from _pull(doc, args, apath, here)
        elif module in K8S_MODULES:
            yield from _definition(doc, get(args, "definition"), (*apath, "definition"), here)


def _with_context(ref: ImageRef, ctx: Context) -> ImageRef:
    return replace(ref, context=ctx)


def _pull(doc: Doc, args: MappingNode, apath: Path, where: Where) -> Iterator[ImageRef]:
    source = text_of(get(args, "source"))
    podman = "podman" in str(where.kind)
    if not (source == "pull" or (podman and text_of(get(args, "pull")) not in ("false", "no"))):
        return
    name, tag = get(args, "name"), get(args, "tag")
    if not isinstance(name, ScalarNode) or id(name) in where.seen:
        return
    where.seen.add(id(name))
    parts = [doc.part(name, Role.IMAGE)]
    text = parts[0].text
    tag_text = text_of(tag, numeric=True) if isinstance(tag, ScalarNode) else None
    if isinstance(tag, ScalarNode) and tag_text and ":" not in text.rpartition("/")[2] and "@" not in text:
        parts.append(doc.part(tag, Role.TAG))
        text = f"{text}:{tag_text}"
    ctx = Context(where.kind, where.name, None, None, dotted((*apath, "name")))
    skip = Skip.NON_STRING if text_of(name) is None else None
    yield make_ref(where.path, SOURCE, text, parts, ctx, skip=skip, detail="not a string" if skip else None)


def _definition(doc: Doc, node: Node | None, dpath: Path, where: Where) -> Iterator[ImageRef]:
    kwhere = Where(where.path, SOURCE, seen=where.seen, notes=(f"in {where.kind} definition",))
    if isinstance(node, MappingNode):
        yield from objects(doc, node, kwhere, dpath)
    elif isinstance(node, SequenceNode):
        for i, obj in enumerate(node.value):
            yield from objects(doc, obj, kwhere, (*dpath, i))
    elif isinstance(node, ScalarNode) and text_of(node):
        docs, exact = embedded(doc, node)
        where.seen.add(id(node))
        for inner in docs:
            for ref in objects(inner, inner.root, kwhere, dpath):
                yield ref if exact else approximate(ref, doc, node)
