"""The comment-command grammar: ``/pullable <verb> [image]`` alone on its own line.

Parsing is strict because a comment is untrusted text that reaches a bot with write access:
only a line that *renders* as the command counts. Quoted lines (``> ...``), fenced and indented
code, HTML comments and mid-sentence mentions are not commands; a line with trailing junk
(``/pullable rescan; rm -rf /``) is not one either; two command lines in one comment are
ambiguous, so neither runs. A well-formed line with a verb we do not know (or a known verb
missing its image) is a command we answer with the help text, without echoing it.

Pure functions only: the handler decides who may run what (:mod:`bot.jobs.handlers.comments`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
_FENCE = re.compile(r"[ ]{0,3}(`{3,}|~{3,})")


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
    """The lines of ``body`` that render as plain paragraphs: no fenced or indented code, no
    quotes, no HTML comments. CRLF and lone CR line endings count as LF."""
    out: list[str] = []
    fence: str | None = None
    in_comment = False
    for line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if in_comment:
            in_comment = "-->" not in line
            continue
        if fence is not None:
            m = _FENCE.match(line)
            if (
                m
                and m.group(1)[0] == fence[0]
                and len(m.group(1)) >= len(fence)
                and not line[m.end() :].strip()
            ):
                fence = None
            continue
        m = _FENCE.match(line)
        if m:
            fence = m.group(1)
            continue
        start = line.find("<!--")
        if start >= 0 and "-->" not in line[start:]:
            in_comment = True
            continue
        if line.lstrip(" ").startswith(">") or line.startswith(("    ", "\t")):
            continue
        out.append(line)
    return out


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
