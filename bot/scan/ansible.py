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
- any other ``image:`` key (``docker_swarm_service``, inline compose definitions).

Jinja (``{{ app_image }}``) is reported as templated; resolving role variables is the next step
(issue 7), which will fill :class:`~bot.model.Part` ``path`` with ``defaults/main.yml``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.model import Context, ImageRef, Role, Skip, Source
from bot.scan import Repo
from bot.scan._k8s import (
    Link,
    Path,
    Where,
    approximate,
    embedded,
    images,
    mappings,
    needs_shell,
    objects,
    string_ref,
    unlink,
    want,
)
from bot.scan.common import make_ref
from bot.scan.yamlsrc import Doc, documents, dotted, get, text_of

SOURCE = Source.ANSIBLE

_COLLECTIONS = ("", "community.docker.", "containers.podman.", "kubernetes.core.", "community.kubernetes.")
CONTAINER_MODULES = frozenset(c + m for c in _COLLECTIONS for m in ("docker_container", "podman_container"))
PULL_MODULES = frozenset(c + m for c in _COLLECTIONS for m in ("docker_image", "podman_image"))
K8S_MODULES = frozenset(c + "k8s" for c in _COLLECTIONS)
_MODULES = CONTAINER_MODULES | PULL_MODULES | K8S_MODULES

_PATH = re.compile(
    r"(?:^|/)(?:roles/[^/]+/(?:tasks|handlers)/|tasks/|handlers/|playbooks?/)[^/]+\.ya?ml$"
    r"|(?:^|/)(?:site|playbook[^/]*)\.ya?ml$"
)
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
    if _PATH.search(path):
        return True
    return _LIST.search(head) is not None and (
        _PLAY.search(head) is not None or _MODULE.search(head) is not None
    )


def find(text: str, path: str, repo: Repo) -> Iterator[ImageRef]:
    if not want(text):
        return
    for doc in documents(text, want=want):
        where = Where(path, SOURCE)
        found: list[ImageRef] = []
        for link, node in mappings(doc.root):
            found += _task(doc, node, link, where)
        found += images(doc, doc.root, where)
        found.sort(key=lambda r: (r.line, r.column))
        yield from found


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
    from dataclasses import replace

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
