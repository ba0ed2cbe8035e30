"""What every finder does once it has the written parts of a reference: decide whether it is a
reference at all (templated? empty?), normalise it with Docker's grammar, and build the
:class:`~bot.model.ImageRef`. Keeping this in one place keeps the finders' verdicts identical."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.model import Context, ImageRef, Part, Skip, Source

# The note on a reference whose tag is ``prefix + value`` with the prefix written apart from the
# TAG part (Jsonnet's ``'repo:v' + versions.x``): bot.edit.plan writes only what follows it.
TAG_PREFIX = "fixed tag prefix written apart: "

# Go/Helm/Jinja templates, shell and compose variables, GitHub expressions, ERB.
TEMPLATE = re.compile(r"\{\{|\{%|\$\{|\$\(|\$[A-Za-z_]|<%|\[\[")


def verdict(text: str) -> tuple[str | None, Skip | None, str | None]:
    """(normalised reference, skip, detail) for a reference string as written."""
    from bot.reference import ReferenceError, parse

    if not text.strip():
        return None, Skip.EMPTY, "empty value"
    if TEMPLATE.search(text):
        return None, Skip.TEMPLATED, f"templated value {text[:80]!r}"
    try:
        return str(parse(text)), None, None
    except ReferenceError as exc:
        return None, Skip.INVALID, str(exc)


def make_ref(
    path: str,
    source: Source,
    text: str,
    parts: Sequence[Part],
    context: Context | None = None,
    *,
    skip: Skip | None = None,
    detail: str | None = None,
    artifact: str = "image",
    effective: str | None = None,
) -> ImageRef:
    """An :class:`ImageRef` for ``text`` (the reference as written, parts joined). A given
    ``skip`` wins over the verdict; the position is the first part's. ``effective`` is judged
    instead of ``text`` when what is pulled differs from what is written (a Helm map whose tag
    comes from the chart, a global registry, a kustomize override)."""
    judged = text if effective is None else effective
    reference, why, info = (None, skip, detail) if skip is not None else verdict(judged)
    first = parts[0].span if parts else None
    return ImageRef(
        path=path,
        line=first.line if first else 1,
        column=first.column if first else 1,
        source=source,
        text=text,
        parts=tuple(parts),
        reference=reference,
        skip=why,
        detail=info if detail is None else detail,
        context=context or Context(),
        artifact=artifact,
    )
