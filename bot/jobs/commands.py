"""The comment-command grammar: ``/pullable <verb> [image]`` alone on its own line.

Parsing is strict because a comment is untrusted text that reaches a bot with write access:
only a line that *renders* as the command counts, decided by a CommonMark parser (markdown-it-py),
not by line patterns. Quoted lines (``> ...`` and their lazy continuations), fenced and indented
code (in list items too), HTML blocks and comments, and mid-sentence mentions are not commands;
a line with trailing junk (``/pullable rescan; rm -rf /``) is not one either; two command lines
in one comment are ambiguous, so neither runs. A well-formed line with a verb we do not know (or a known verb
missing its image) is a command we answer with the help text, without echoing it.

Pure functions only: the handler decides who may run what (:mod:`bot.jobs.handlers.comments`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.reference import Reference, ReferenceError, parse

PREFIX = "/pullable"
VERBS = ("rescan", "ignore", "unignore", "explain", "help")
TAKES_IMAGE = frozenset({"ignore", "unignore"})
MAX_BODY = 65536  # GitHub's own limit for a comment body
MAX_AGE = dt.timedelta(hours=1)  # older deliveries are replays, not requests

# Up to three spaces of indentation (four makes it code), the prefix, then at most a verb and one
# argument separated by blanks. Verbs are lower-case words; an argument is the character set of
# image references (Docker's grammar is checked later), so punctuation such as ';', '`' or '$'
# makes the whole line junk rather than a command.
_ARG = r"[A-Za-z0-9._:/@\[\]-]{1,512}"
_LINE = re.compile(
    rf"[ ]{{0,3}}/pullable(?:[ \t]+(?P<verb>[a-z][a-z-]{{0,31}})(?:[ \t]+(?P<arg>{_ARG}))?)?[ \t]*", re.ASCII
)
_ATTEMPT = re.compile(r"[ ]{0,3}/pullable(?:[ \t]|$)", re.ASCII)
_MARKDOWN = MarkdownIt("commonmark")  # raw HTML recognised (html_block / html_inline), as on GitHub


@dataclass(frozen=True)
class Command:
    """A parsed command. ``verb`` is one of :data:`VERBS`, or ``"unknown"`` for a well-formed
    line we cannot run (the reply is the help text). ``image`` is the normalised reference the
    user named (ignore/unignore only)."""

    verb: str
    image: Reference | None = None

    @property
    def name(self) -> str | None:
        """The repository name ignores are keyed on (tag and digest dropped)."""
        return self.image.name if self.image is not None else None


def visible_lines(body: str) -> list[str]:
    """The lines of ``body`` that render as plain paragraph text, as a CommonMark parser reads
    them (GitHub's Markdown is CommonMark plus extensions): not code (fenced, also inside list
    items, or indented), not in a list or a quote (lazy continuation lines included), not HTML
    blocks (``<pre>``), not inside an HTML comment (one left open by raw HTML hides everything
    after it in the browser, whatever Markdown made of it), and no line carrying markup."""
    out: list[str] = []
    hidden = _Comment()
    nested = 0
    previous = ""
    for tok in _MARKDOWN.parse(body.replace("\r\n", "\n").replace("\r", "\n")):
        if tok.type in ("blockquote_open", "bullet_list_open", "ordered_list_open"):
            nested += 1
        elif tok.type in ("blockquote_close", "bullet_list_close", "ordered_list_close"):
            nested -= 1
        elif tok.type == "html_block":
            hidden.feed(tok.content)
        elif tok.type == "inline":
            lines = _plain_lines(tok.children or [], hidden)
            if previous == "paragraph_open" and not nested:
                out.extend(lines)
        previous = tok.type
    return out


class _Comment:
    """Whether raw HTML seen so far leaves an HTML comment open (text cannot close one: Markdown
    escapes its ``-->``)."""

    def __init__(self) -> None:
        self.open = False

    def feed(self, html: str) -> None:
        pos = 0
        while True:
            if not self.open:
                pos = html.find("<!--", pos)
                if pos < 0:
                    return
                self.open, pos = True, pos + 4
            else:
                pos = html.find("-->", pos)
                if pos < 0:
                    return
                self.open, pos = False, pos + 3


def _plain_lines(children: list[Token], hidden: _Comment) -> list[str]:
    """A paragraph's lines made only of visible text (a line with any other inline token, or
    inside a comment, is dropped)."""
    lines: list[str] = []
    parts: list[str] = []
    plain = True
    for child in [*children, None]:
        if child is None or child.type in ("softbreak", "hardbreak"):
            if plain and not hidden.open:
                lines.append("".join(parts))
            parts, plain = [], True
        elif child.type == "text" and not hidden.open:
            parts.append(child.content)
        else:
            plain = False
            if child.type == "html_inline":
                hidden.feed(child.content)
    return lines


def parse_comment(body: str | None) -> Command | None:
    """The one command in ``body``, or None when there is none (or more than one, or junk)."""
    if not body or len(body) > MAX_BODY:
        return None
    lines = visible_lines(body)
    attempts = [line for line in lines if _ATTEMPT.match(line)]
    if len(attempts) != 1:
        return None
    m = _LINE.fullmatch(attempts[0])
    if m is None:
        return None  # trailing junk, odd characters, extra words
    verb, arg = m.group("verb"), m.group("arg")
    if verb not in VERBS:
        return Command("unknown") if arg is None else None
    if verb not in TAKES_IMAGE:
        return Command(verb) if arg is None else None
    if arg is None:
        return Command("unknown")  # "/pullable ignore" without an image: show the usage
    try:
        return Command(verb, parse(arg))
    except ReferenceError:
        return Command("unknown")


def is_bot(user: Mapping[str, Any] | None) -> bool:
    """Bots never command Pullable (no loops with itself or with other Apps)."""
    if not user:
        return True
    login = str(user.get("login") or "")
    return user.get("type") == "Bot" or login.lower().endswith("[bot]") or not login


def is_fresh(created_at: str | None, now: dt.datetime | None = None) -> bool:
    """Whether a comment is recent enough to act on (a replayed capture is not)."""
    if not created_at:
        return False
    try:
        when = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    if when.tzinfo is None:
        return False
    now = now or dt.datetime.now(dt.UTC)
    return now - MAX_AGE <= when <= now + dt.timedelta(minutes=5)


HELP = """\
Pullable answers these commands, each alone on its own line of a new comment, from people with
write access to this repository:

| Command | What it does |
| --- | --- |
| `/pullable rescan` | scan the default branch again now |
| `/pullable ignore <image>` | stop proposing changes for an image, every tag of it (`nginx`) |
| `/pullable unignore <image>` | undo an ignore, and propose changes you closed without merging again |
| `/pullable explain` | list what Pullable found and why (on a pull request: the lines it changes) |
| `/pullable help` | show this message |

What Pullable found is kept up to date in the issue titled "Pullable: image health".
"""

__all__ = ["HELP", "MAX_AGE", "PREFIX", "VERBS", "Command", "is_bot", "is_fresh", "parse_comment"]
