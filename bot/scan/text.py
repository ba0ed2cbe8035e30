"""Character offsets -> byte spans, lines and columns.

Finders work on ``str``; edits work on bytes. Every position a finder reports goes through a
:class:`Locator`, so multi-byte characters before a reference never shift its byte span.
"""

from __future__ import annotations

import bisect
from itertools import accumulate

from bot.model import Span


class Locator:
    """Maps character offsets in ``text`` to :class:`Span`. ``base`` bytes are added to every
    byte offset (a UTF-8 BOM the caller stripped before handing the text over)."""

    __slots__ = ("_ascii", "_at", "_base", "_line", "_line_bytes", "_line_chars", "_walked", "text")

    def __init__(self, text: str, base: int = 0) -> None:
        self.text = text
        self._base = base
        self._ascii = text.isascii()
        # Lines are counted from a cursor that walks to each asked offset (str.count, C speed):
        # finders ask in nearly ascending order, and most files are asked little or nothing, so
        # a full index of line starts is built only once the walking has covered the text twice.
        self._at, self._line, self._walked = 0, 1, 0
        self._line_chars: list[int] | None = None
        self._line_bytes: list[int] | None = None

    def _index(self) -> list[int]:
        if self._line_chars is None:
            # lengths of the lines, accumulated (C-level iteration: 2-MB files are common)
            starts = list(accumulate(map((1).__add__, map(len, self.text.split("\n"))), initial=0))
            starts.pop()  # the end of the text is not a line start
            self._line_chars = starts
        return self._line_chars

    def line_col(self, index: int) -> tuple[int, int]:
        """1-based line and column of character ``index``."""
        if self._line_chars is None and self._walked <= 2 * len(self.text):
            text, at = self.text, self._at
            if index >= at:
                self._line += text.count("\n", at, index)
            else:
                self._line -= text.count("\n", index, at)
            self._at = index
            column = index - text.rfind("\n", 0, index)  # a long line is walked too
            self._walked += abs(index - at) + column
            return self._line, column
        starts = self._index()
        line = bisect.bisect_right(starts, index) - 1
        return line + 1, index - starts[line] + 1

    def byte(self, index: int) -> int:
        """Byte offset (including ``base``) of character ``index``."""
        if self._ascii:
            return self._base + index
        starts = self._index()
        if self._line_bytes is None:
            acc, out, prev = 0, [], 0
            for start in starts:
                acc += len(self.text[prev:start].encode("utf-8", "surrogatepass"))
                out.append(acc)
                prev = start
            self._line_bytes = out
        line = bisect.bisect_right(starts, index) - 1
        start = starts[line]
        return (
            self._base + self._line_bytes[line] + len(self.text[start:index].encode("utf-8", "surrogatepass"))
        )

    def span(self, start: int, end: int) -> Span:
        """Span of characters ``start:end``."""
        line, col = self.line_col(start)
        return Span(self.byte(start), self.byte(end), line, col)
