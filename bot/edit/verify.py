"""Compare a re-scan of edited files with the scan before the edit.

The edit engine cannot import the scanners (it sits below them), so the caller re-scans and hands
both lists here. Every reference must read as before except the ones meant to change, which must
read exactly as intended: that catches a wrong span, an anchor shared with a reference nobody
meant to change, and a quoting slip that changes how a value parses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.model import ImageRef
from bot.reference import ReferenceError, parse

Key = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One reference that does not read as it should after the edit (``key`` is its key in the
    scan before the edit; ``(path, 0, 0)`` when the file as a whole no longer lines up)."""

    key: Key
    why: str


def verify(
    before: Sequence[ImageRef], after: Sequence[ImageRef], intended: Mapping[Key, str]
) -> list[Mismatch]:
    """Problems found by pairing references file by file, in scan order.

    ``intended`` maps the key of each reference meant to change to the normalised reference it
    must now read as (:func:`bot.edit.expected`). Splicing never adds or removes lines, but it can
    move columns, so references are paired by position in the scan, not by key. Pass the scans of
    every file that uses an edited file (an Ansible task using ``defaults/main.yml``).
    """
    out: list[Mismatch] = []
    paths = dict.fromkeys([r.path for r in before] + [r.path for r in after])
    for path in paths:
        old = [r for r in before if r.path == path]
        new = [r for r in after if r.path == path]
        if len(old) != len(new):
            out.append(Mismatch((path, 0, 0), f"{len(old)} references before the edit, {len(new)} after"))
            continue
        for b, a in zip(old, new, strict=True):
            want = intended.get(b.key)
            if want is not None:
                if not _reads_as(a, want):
                    out.append(
                        Mismatch(b.key, f"{b.text!r} now reads as {a.reference or a.text!r}, not {want}")
                    )
            elif (a.reference, a.skip, a.text, a.source) != (b.reference, b.skip, b.text, b.source):
                out.append(
                    Mismatch(b.key, f"{b.text!r} changed to {a.text!r} though no edit was meant for it")
                )
    return out


def _reads_as(ref: ImageRef, want: str) -> bool:
    """Whether ``ref`` reads as ``want``. A Helm image map with a digest pulls by digest alone
    (the chart drops the tag), so its finder reports ``name@digest``; the tag we wrote must then
    still be the one in the written text."""
    if ref.reference == want:
        return True
    if ref.reference is None:
        return False
    try:
        w, got, written = parse(want), parse(ref.reference), parse(ref.text)
    except ReferenceError:
        return False
    return w.digest is not None and got == w.with_tag(None) and written.tag == w.tag
