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

    __slots__ = ("_ascii", "_base", "_line_bytes", "_line_chars", "text")

    def __init__(self, text: str, base: int = 0) -> None:
        self.text = text
        self._base = base
        self._ascii = text.isascii()
        # Line starts: lengths of the lines, accumulated (C-level iteration: 2-MB files are common).
        starts = list(accumulate(map((1).__add__, map(len, text.split("\n"))), initial=0))
        starts.pop()  # the end of the text is not a line start
        self._line_chars = starts
        self._line_bytes: list[int] | None = None

    def line_col(self, index: int) -> tuple[int, int]:
        """1-based line and column of character ``index``."""
        line = bisect.bisect_right(self._line_chars, index) - 1
        return line + 1, index - self._line_chars[line] + 1

    def byte(self, index: int) -> int:
        """Byte offset (including ``base``) of character ``index``."""
        if self._ascii:
            return self._base + index
        if self._line_bytes is None:
            acc, out, prev = 0, [], 0
            for start in self._line_chars:
                acc += len(self.text[prev:start].encode("utf-8", "surrogatepass"))
                out.append(acc)
                prev = start
            self._line_bytes = out
        line = bisect.bisect_right(self._line_chars, index) - 1
        start = self._line_chars[line]
        return (
            self._base + self._line_bytes[line] + len(self.text[start:index].encode("utf-8", "surrogatepass"))
        )

    def span(self, start: int, end: int) -> Span:
        """Span of characters ``start:end``."""
        line, col = self.line_col(start)
        return Span(self.byte(start), self.byte(end), line, col)
