"""Text from repositories and registries, made safe to put in a comment, a PR body or a title.

Everything Pullable writes on GitHub quotes strings it did not choose: references as written in
files, registry error details, rule text. Rendered as-is they could @-mention people (a
notification storm from a bot account), link issues (``#1`` cross-references), inject HTML,
hide text behind bidi overrides or break a table. So, as Renovate's ``sanitizeMarkdown`` does:
strip control and bidi characters, escape HTML, put a zero-width space after ``@`` and before
the digits of ``#1``, cap the length. Hidden state for the bot itself goes in HTML comments whose
JSON can never close the comment early (see :func:`marker`).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["cell", "code", "line", "marker", "markers", "sanitize", "strip"]

ZWSP = "\u200b"
# C0/C1 controls (tab and newline kept by sanitize, not by cell), bidi overrides and isolates,
# zero-width characters that can hide text, the byte order mark.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
_ISSUE = re.compile(r"#(?=\d)")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
MARKER = re.compile(r"<!--\s*pullable:(?P<name>[a-z-]+)\s+(?P<data>\{.*?\})\s*-->", re.DOTALL)


def strip(text: str) -> str:
    """Without control, bidi and zero-width characters (newlines and tabs kept)."""
    return _CONTROL.sub("", text)


def sanitize(text: str, limit: int = 2000) -> str:
    """Plain markdown text that mentions nobody, links nothing and renders no HTML."""
    text = strip(str(text))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = "".join(_HTML.get(c, c) for c in text)
    text = _MENTION.sub("@" + ZWSP, text)
    return _ISSUE.sub("#" + ZWSP, text)


def line(text: str, limit: int = 300) -> str:
    """Sanitized text on one line (a list item, a commit message line)."""
    return sanitize(" ".join(strip(str(text)).split()), limit)


def cell(text: str, limit: int = 300) -> str:
    """One table cell: sanitized, on one line, pipes escaped."""
    return line(text, limit).replace("|", "\\|")


def code(text: str, limit: int = 300, in_table: bool = False) -> str:
    """Inline code: nothing inside renders, so only length, characters and the fence need care
    (a run of backticks inside gets a longer fence; in a table ``|`` still splits cells)."""
    flat = " ".join(strip(str(text)).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    if not flat:
        return "(empty)"
    longest = max((len(m) for m in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    out = f"{fence}{pad}{flat}{pad}{fence}"
    return out.replace("|", "\\|") if in_table else out


def marker(name: str, data: dict[str, Any]) -> str:
    """A hidden ``<!-- pullable:name {...} -->`` carrying ``data`` as JSON. ``--`` and ``>`` are
    written as JSON escapes, so no value (an image name may hold ``--``) can end the comment."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    text = text.replace(">", "\\u003e").replace("--", "-\\u002d").replace("--", "-\\u002d")
    return f"<!-- pullable:{name} {text} -->"


def markers(body: str | None, name: str) -> list[dict[str, Any]]:
    """Every ``name`` marker's data in ``body`` (unreadable ones skipped: people edit bodies)."""
    out: list[dict[str, Any]] = []
    for m in MARKER.finditer(body or ""):
        if m.group("name") != name:
            continue
        try:
            data = json.loads(m.group("data"))
        except ValueError:
            continue
        if isinstance(data, dict):
            out.append(data)
    return out
