"""Tiltfiles: the images Tilt builds (``docker_build('name', ...)``, ``custom_build``,
``docker_build_with_restart``). They are reported as skipped (``built-locally``): Tilt builds and
pushes them, nothing pulls them from a registry, and the scan marks manifests that deploy the
same name alike (:func:`bot.scan.local_builds`). A Tiltfile is Starlark, read line by line for
these calls, never run.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from bot.model import Context, ImageRef, Part, Role, Skip, Source
from bot.scan.common import make_ref
from bot.scan.text import Locator

SOURCE = Source.TILT

_CALL = re.compile(
    r"""\b(docker_build|custom_build|docker_build_with_restart)\(\s*(?:ref\s*=\s*)?(['"])([^'"\n]+)\2"""
)


def claims(path: str, head: bytes) -> bool:
    base = posixpath.basename(path)
    return base == "Tiltfile" or base.endswith(".tiltfile")


def find(text: str, path: str, repo: object = None) -> Iterator[ImageRef]:
    loc = Locator(text)
    for m in _CALL.finditer(text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        if text[line_start : m.start()].lstrip().startswith("#"):
            continue
        name = m.group(3)
        part = Part(Role.IMAGE, name, loc.span(m.start(3), m.end(3)), m.group(2))
        ctx = Context(kind="tilt", name=m.group(1), field=m.group(1))
        detail = f"{name}: an image Tilt builds ({m.group(1)}), not pulled"
        yield make_ref(path, SOURCE, name, [part], ctx, skip=Skip.BUILT_LOCALLY, detail=detail)
