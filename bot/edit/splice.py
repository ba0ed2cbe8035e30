"""Write edits into bytes by splicing at recorded spans.

Nothing here parses or re-serialises a file: every byte outside an edit's span is copied as it
was, which is what keeps comments, quoting, CRLF, a BOM, indentation and the trailing newline
exactly as the author wrote them, and a pull request's diff as small as the change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

from bot.edit.errors import EditError
from bot.model import Edit


def apply(data: bytes, edits: Sequence[Edit], *, path: str | None = None) -> bytes:
    """``data`` with ``edits`` spliced in, back to front so earlier offsets stay valid.

    With ``path``, only the edits for that path are applied; without it, all edits must name the
    same file. Identical edits are applied once (two references sharing a YAML anchor or a
    Dockerfile ARG plan the same edit). Raises :class:`EditError` when a span does not hold its
    ``old`` text any more (the file changed since the scan) or two different edits overlap.
    """
    mine = [e for e in edits if path is None or e.path == path]
    if path is None and len({e.path for e in mine}) > 1:
        raise EditError("edits for several files given to apply(); use apply_all()")
    ordered = _checked(data, mine)
    out = data
    for e in reversed(ordered):
        out = out[: e.span.start] + e.new.encode("utf-8") + out[e.span.end :]
    return out


def apply_all(files: Mapping[str, bytes], edits: Sequence[Edit]) -> dict[str, bytes]:
    """The files ``edits`` change, by path, with the edits applied; unchanged files are left out
    so the caller commits exactly what differs."""
    out: dict[str, bytes] = {}
    for p in dict.fromkeys(e.path for e in edits):
        if p not in files:
            raise EditError(f"{p}: the file to edit was not given")
        new = apply(files[p], edits, path=p)
        if new != files[p]:
            out[p] = new
    return out


def _checked(data: bytes, edits: Sequence[Edit]) -> list[Edit]:
    """Unique edits sorted by position, each verified against ``data``; overlaps refused."""
    unique = sorted(dict.fromkeys(edits), key=lambda e: (e.span.start, e.span.end))
    for e in unique:
        s, t = e.span.start, e.span.end
        if not 0 <= s <= t <= len(data):
            raise EditError(f"{e.path}:{e.span.line}: span {s}-{t} is outside the file")
        if data[s:t] != e.old.encode("utf-8"):
            found = data[s:t].decode("utf-8", "replace")
            raise EditError(
                f"{e.path}:{e.span.line}: expected {e.old!r} at column {e.span.column}, "
                f"found {found!r}; the file changed since it was scanned"
            )
    reach = 0  # the furthest end of any edit so far: an overlap need not be with the neighbour
    for a, b in pairwise(unique):
        if b.span.start < max(a.span.end, reach) or a.span.start == b.span.start:
            raise EditError(
                f"{a.path}:{a.span.line}: two different edits touch the same bytes "
                f"({a.old!r} -> {a.new!r} and {b.old!r} -> {b.new!r})"
            )
        reach = max(reach, a.span.end)
    return unique
