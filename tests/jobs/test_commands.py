"""The command grammar (security.md §4.3's first table, §7.1 W17-W19): what counts as a command."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.jobs.commands import Command, is_bot, is_fresh, parse_comment


def verb(body: str) -> str | None:
    cmd = parse_comment(body)
    return None if cmd is None else cmd.verb


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/pullable rescan", "rescan"),  # alone on a line
        ("/pullable rescan\r\n", "rescan"),  # CRLF
        ("Thanks!\r\n\r\n/pullable rescan\r\n", "rescan"),  # CRLF, after other text
        ("The tag moved upstream.\n\n/pullable rescan", "rescan"),  # after text, own line
        ("/pullable rescan   ", "rescan"),  # trailing blanks are not junk
        ("   /pullable help", "help"),  # three spaces still render as a paragraph
        ("/pullable explain", "explain"),
        ("/pullable help", "help"),
        ("> /pullable rescan", None),  # quoted
        ("  > /pullable rescan", None),
        ("```\n/pullable rescan\n```", None),  # fenced
        ("~~~sh\n/pullable rescan\n~~~", None),
        ("```\n/pullable rescan", None),  # an unclosed fence runs to the end
        ("````\n```\n/pullable rescan\n````", None),  # an inner shorter fence does not close it
        ("    /pullable rescan", None),  # indented code
        ("\t/pullable rescan", None),
        ("`/pullable rescan`", None),  # inline code
        ("<!--\n/pullable rescan\n-->", None),  # hidden in an HTML comment
        ("please /pullable rescan", None),  # mid-sentence
        ("- /pullable rescan", None),
        ("/pullable rescan; rm -rf /", None),  # trailing junk
        ("/pullable rescan now", None),
        ("/pullable rescan `id`", None),
        ("/pullable rescan\n/pullable rescan", None),  # two commands
        ("/pullable rescan\n/pullable help", None),
        ("/pullable rescan\n/pullable rescan; rm -rf /", None),
        ("/pullablerescan", None),
        ("/Pullable rescan", None),
        ("/pullable\u200brescan", None),  # zero-width space is not a separator
        ("/pullable rescan\u202e", None),  # bidi control after the verb
        ("", None),
        ("/pullable frobnicate", "unknown"),  # unknown: answered with the help text
        ("/pullable", "unknown"),
        ("/pullable ignore", "unknown"),  # known verb without its image: usage
        ("/pullable ignore Not_An/Image!", None),
        ("/pullable ignore a_b.c/x", "unknown"),  # image-like but Docker refuses it
        ("/pullable frobnicate a b", None),
        # issue 11 item 10: what renders invisibly (or not as a paragraph) is not a command
        ("<!-- a --><!--\n/pullable rescan\n-->", None),  # a comment opened after another closed
        ("Note <!-- hidden\n/pullable rescan\n--> done", None),  # a comment inside a paragraph
        ("<pre>\n/pullable rescan\n</pre>", None),
        ("<pre>\n\n/pullable rescan\n\n</pre>", None),  # blank lines do not end a <pre> block
        ("- ```\n  /pullable rescan\n  ```", None),  # a fence opened in a list item
        ("1. step\n\n   ~~~\n   /pullable rescan\n   ~~~", None),
        ("> quoted\n/pullable rescan", None),  # lazy continuation: still inside the quote
        ("> quoted\n> more\n/pullable rescan", None),
        ("- > quoted\n  /pullable rescan", None),
        ("*/pullable rescan*", None),  # marked-up lines are not commands
        ("> quoted\n\n/pullable rescan", "rescan"),  # a blank line ends the quote
        ("<!-- note -->\n\n/pullable rescan", "rescan"),
        ("```\ncode\n```\n/pullable rescan", "rescan"),
    ],
)
def test_what_counts_as_a_command(body: str, expected: str | None) -> None:
    assert verb(body) == expected


def test_ignore_normalises_the_image_and_keys_on_its_name() -> None:
    cmd = parse_comment("/pullable ignore bitnami/kubectl:1.31")
    assert cmd is not None and cmd.verb == "ignore"
    assert str(cmd.image) == "docker.io/bitnami/kubectl:1.31"
    assert cmd.name == "docker.io/bitnami/kubectl"  # every tag: the name is what is stored
    un = parse_comment("/pullable unignore nginx")
    assert un is not None and un.name == "docker.io/library/nginx"
    digest = "sha256:" + "a" * 64
    pinned = parse_comment(f"/pullable ignore ghcr.io/org/app@{digest}")
    assert pinned is not None and pinned.name == "ghcr.io/org/app"
    assert Command("help").name is None


def test_oversized_bodies_are_not_parsed() -> None:
    assert parse_comment("/pullable rescan\n" + "x" * 70000) is None


@pytest.mark.parametrize(
    ("user", "bot"),
    [
        ({"login": "octocat", "type": "User"}, False),
        ({"login": "pullable[bot]", "type": "Bot"}, True),  # Pullable itself
        ({"login": "dependabot[bot]", "type": "Bot"}, True),  # another App
        ({"login": "renovate[bot]", "type": "User"}, True),  # [bot] login, whatever the type
        ({"login": "ci-robot", "type": "Bot"}, True),  # type Bot, whatever the login
        ({"login": "", "type": "User"}, True),
        (None, True),
    ],
)
def test_bots_are_never_obeyed(user: dict[str, str] | None, bot: bool) -> None:
    assert is_bot(user) is bot


def test_comments_older_than_an_hour_are_replays() -> None:
    now = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
    assert is_fresh("2025-06-01T11:30:00Z", now)
    assert is_fresh("2025-06-01T11:00:00Z", now)  # exactly an hour: still fresh
    assert not is_fresh("2025-06-01T10:59:59Z", now)
    assert not is_fresh("2025-05-30T12:00:00Z", now)  # two days old (W19)
    assert not is_fresh("2025-06-01T13:00:00Z", now)  # from the future: clock games
    assert not is_fresh("not a date", now)
    assert not is_fresh("2025-06-01T11:30:00", now)  # no zone: cannot be trusted
    assert not is_fresh(None, now)
