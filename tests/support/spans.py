"""Span checks shared by the finder tests: a part's bytes are its text, and its line and column
agree with its byte offset, whatever the line endings or multi-byte characters before it."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from bot.model import ImageRef
from bot.scan import LocalRepo, ScanResult, scan_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scan"


def check_spans(
    data: bytes,
    refs: list[ImageRef],
    *,
    at_first_part: bool = False,
    all_raw: bool = False,
    exact: bool = False,
) -> None:
    """Raw parts: ``data[span] == text``; every part: line/column match the byte offset. For
    parts that are not raw (escapes, text pieced from several places) only the position.
    ``at_first_part``: a reference is reported where its first part is written; ``all_raw``:
    every part must be editable as is; ``exact``: every part's bytes are its text, raw or not
    (located exactly, yet not editable, e.g. inside an escaped string)."""
    for ref in refs:
        if ref.chart is not None:  # a chart use names no image itself: nothing written to locate
            continue
        assert ref.parts, ref
        if at_first_part:
            assert (ref.line, ref.column) == (ref.parts[0].span.line, ref.parts[0].span.column), ref
        for p in ref.parts:
            assert p.raw or not all_raw, p
            if p.raw or exact:
                assert data[p.span.start : p.span.end] == p.text.encode(), p
            bol = data.rfind(b"\n", 0, p.span.start) + 1
            line = data.count(b"\n", 0, p.span.start) + 1
            column = len(data[bol : p.span.start].decode("utf-8").lstrip("\ufeff")) + 1
            assert (p.span.line, p.span.column) == (line, column), p


def parts(ref: ImageRef) -> list[tuple[str, str, int, int]]:
    """(role, text, line, column) of each part, for exact comparisons."""
    return [(str(p.role), p.text, p.span.line, p.span.column) for p in ref.parts]


def scan_data(
    path: str,
    data: bytes,
    finder: ModuleType | None,
    root: Path = FIXTURES,
    *,
    at_first_part: bool = False,
    all_raw: bool = False,
    exact: bool = False,
) -> ScanResult:
    """Through the scan driver (BOM, decoding, errors), spans checked."""
    res = scan_file(path, data, LocalRepo(root), finder)
    check_spans(data, res.refs, at_first_part=at_first_part, all_raw=all_raw, exact=exact)
    return res


def scan_fixture(rel: str, finder: ModuleType | None = None) -> tuple[bytes, ScanResult]:
    """A fixture under ``tests/fixtures/scan``, found by ``claims`` unless ``finder`` is given."""
    data = (FIXTURES / rel).read_bytes()
    res = scan_data(rel, data, finder)
    assert res.errors == [], res.errors
    return data, res
