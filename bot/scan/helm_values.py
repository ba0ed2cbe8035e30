"""Helm values files: image maps (``registry``/``repository``/``tag``/``digest``), inline
``*image: repo:tag`` strings, the chart's ``appVersion`` for an empty tag, ``global.imageRegistry``.

How the effective reference is composed is documented on :func:`bot.scan.yamlimages.helm_map` (the
bitnami ``common.images`` convention, and kube-prometheus-stack's ``sha``). A map under a key
that does not name an image counts when it plainly is one (``redis: {repository:, tag:}``, see
:func:`bot.scan.yamlimages._bare_image_map`). Claimed by name (``values*.yaml``, ``*-values.yaml``, files
under a ``values/`` folder) and by content (a top-level ``image:`` map, or ``global:
imageRegistry``, in a file without ``apiVersion``). A document that is a Kubernetes object after
all is read as one.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from bot.model import ImageRef, Source
from bot.scan import Repo
from bot.scan.manifests import objects
from bot.scan.yamlimages import (
    Where,
    any_image_key,
    chart_lookup,
    global_registry,
    images,
    is_object,
    want_values,
)
from bot.scan.yamlsrc import filtered

SOURCE = Source.HELM_VALUES

_NAME = re.compile(r"(?i)(?:^|[-_.])values(?:[-_.][^/]*)?\.ya?ml$")
_HEAD = re.compile(
    rb"(?m)^(?:image:[ \t]*(?:#[^\n]*)?\r?\n[ \t]+(?:registry|repository):|[ \t]+imageRegistry:)"
)


def claims(path: str, head: bytes) -> bool:
    if not path.endswith((".yaml", ".yml")):
        return False
    base = posixpath.basename(path)
    if _NAME.search(base) or posixpath.basename(posixpath.dirname(path)) == "values":
        return True
    return _HEAD.search(head) is not None and b"apiVersion:" not in head


def find(text: str, path: str, repo: Repo) -> Iterator[ImageRef]:
    docs = filtered(text, want_values)
    if not docs:
        return
    chart = chart_lookup(path, repo)
    seen: set[int] = set()
    for doc in docs:
        if is_object(doc.root):
            yield from objects(doc, doc.root, Where(path, Source.KUBERNETES, seen=seen))
            continue
        where = Where(
            path,
            SOURCE,
            strings=any_image_key,
            registry=global_registry(doc, doc.root),
            chart=chart,
            seen=seen,
        )
        yield from sorted(images(doc, doc.root, where), key=lambda r: (r.line, r.column))
