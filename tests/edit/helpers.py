"""Building ImageRefs by hand with exact spans, for file kinds or constructs the finders do not
report (yet), and a small in-memory repository for the finders that read sibling files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bot.model import Context, ImageRef, Part, Role, Source, Span
from bot.reference import parse


@dataclass(frozen=True)
class Spec:
    """One part to locate: ``needle`` is searched in the part's file from ``after`` on (the
    first occurrence of that anchor string, so a spec can point past a key: ``after="tag: "``)."""

    role: Role
    needle: str
    after: str = ""
    quote: str = ""
    raw: bool = True
    path: str | None = None


def span_of(data: bytes, needle: str, after: str = "") -> Span:
    """The byte span of ``needle`` in ``data`` (first match at or after ``after``)."""
    base = data.index(after.encode()) + len(after.encode()) if after else 0
    start = data.index(needle.encode(), base)
    end = start + len(needle.encode())
    line = data.count(b"\n", 0, start) + 1
    col = len(data[data.rfind(b"\n", 0, start) + 1 : start].decode()) + 1
    return Span(start, end, line, col)


def make(
    files: Mapping[str, bytes],
    path: str,
    source: Source,
    specs: Sequence[Spec],
    *,
    text: str | None = None,
    notes: tuple[str, ...] = (),
) -> ImageRef:
    """An ImageRef whose parts sit exactly where ``specs`` say; ``text`` defaults to the parts
    joined as registry/repository:tag@digest, and ``reference`` to its normalised form."""
    parts = []
    for s in specs:
        where = s.path or path
        parts.append(Part(s.role, s.needle, span_of(files[where], s.needle, s.after), s.quote, s.raw, s.path))
    text = text if text is not None else joined(parts)
    first = parts[0].span
    return ImageRef(
        path=path,
        line=first.line,
        column=first.column,
        source=source,
        text=text,
        parts=tuple(parts),
        reference=str(parse(text)),
        context=Context(notes=notes),
    )


def joined(parts: Sequence[Part]) -> str:
    by = {p.role: p.text for p in parts}
    name = by.get(Role.REPOSITORY) or by.get(Role.IMAGE) or by.get(Role.NAME) or ""
    if by.get(Role.REGISTRY):
        name = f"{by[Role.REGISTRY]}/{name}"
    if by.get(Role.TAG):
        name += f":{by[Role.TAG]}"
    if by.get(Role.DIGEST):
        name += "@" + by[Role.DIGEST].removeprefix("@")
    return name


@dataclass
class DictRepo:
    """The finders' Repo protocol over a dict of files."""

    files: dict[str, bytes] = field(default_factory=dict)

    def read_text(self, path: str) -> str | None:
        data = self.files.get(path)
        return None if data is None else data.decode("utf-8").removeprefix("\ufeff")

    def listdir(self, path: str) -> list[str]:
        prefix = f"{path}/" if path else ""
        return sorted({p[len(prefix) :].split("/")[0] for p in self.files if p.startswith(prefix)})
