"""Locator: the walking line counter answers exactly as the full index of line starts."""

from __future__ import annotations

import random

from bot.scan.text import Locator


def _indexed(text: str) -> Locator:
    loc = Locator(text)
    loc._walked = 1 << 62  # past the walking budget: the full index answers
    return loc


def test_walking_and_index_agree_in_any_order_of_questions():
    rnd = random.Random(7)
    for _ in range(200):
        text = "".join(rnd.choice("ab\n\n é\r") for _ in range(rnd.randint(0, 200)))
        walking = Locator(text)
        for _ in range(40):
            i = rnd.randint(0, len(text))
            j = min(len(text), i + rnd.randint(0, 5))
            assert walking.line_col(i) == _indexed(text).line_col(i), (text, i)
            assert walking.span(i, j) == _indexed(text).span(i, j)


def test_a_long_walk_switches_to_the_index():
    text = "x" * 10_000 + "\nimage: a\n"
    loc = Locator(text)
    for _ in range(3):  # back and forth over a long line: the budget runs out
        assert loc.line_col(10_000) == (1, 10_001)
        assert loc.line_col(5) == (1, 6)
    assert loc._line_chars is not None
    assert loc.line_col(10_008) == (2, 8)


def test_a_few_questions_in_order_never_build_the_index():
    text = "".join(f"- image: app-{i}:1.0\n" for i in range(1000))
    loc = Locator(text)
    for i in range(0, 1000, 100):
        assert loc.line_col(text.index(f"app-{i}:")) == (i + 1, 10)
    assert loc._line_chars is None
