"""The pipeline's types cross process boundaries (contained scans, the job queue) by pickle."""

from __future__ import annotations

import pickle
from pathlib import Path

from bot.model import ImageRef, ScanError, Span
from bot.scan import scan_tree

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_scan_results_survive_pickle_unchanged() -> None:
    res = scan_tree(FIXTURES, contain=False)
    assert res.refs and res.facts
    for item in [*res.refs, *res.facts, ScanError("a.yaml", "invalid YAML at line 3", "warning")]:
        again = pickle.loads(pickle.dumps(item))
        assert again == item and repr(again) == repr(item)


def test_frozen_types_pickle_as_constructor_calls() -> None:
    """Not dataclasses' per-object fields() lookup: the reduce value is (class, fields)."""
    span = Span(1, 5, 1, 2)
    assert span.__reduce__() == (Span, (1, 5, 1, 2))
    assert ImageRef.__reduce__ is not object.__reduce__
