"""What a Pullable PR's hidden marker remembers: a frozen PrState that round-trips through its
JSON, reads markers written before it existed, and survives people editing the body."""

from __future__ import annotations

import dataclasses

import pytest

from bot.github.markdown import marker
from bot.github.pulls import Pull
from bot.jobs.pr_state import MARKER, Item, PrState, blocked, held_back, state_of, with_state

ITEM = Item("k8s/a.yaml", "docker.io/bitnami/kubectl:1.31", "docker.io/alpine/kubectl:1.33.4",
            "docker.io/bitnami/kubectl")  # fmt: skip


def pull(body: str, *, merged: bool = False) -> Pull:
    return Pull(number=1, state="closed", title="t", body=body, head="pullable/x", base="main",
                head_sha="h", base_sha="b", merged=merged, same_repo=True, labels=())  # fmt: skip


def test_round_trip_and_frozen() -> None:
    st = PrState("rule-x", "f" * 32, "a" * 40, (ITEM,), head="c" * 40, noted=True, released=frozenset({"x"}))
    assert PrState.from_json(st.to_json()) == st
    assert state_of(pull(with_state("text", st))) == st
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.head = "other"  # type: ignore[misc]


def test_reads_markers_written_as_plain_dicts_and_drops_what_people_broke() -> None:
    old = {"v": 1, "group": "g", "fingerprint": "f", "base": "b", "head": "h", "retired": True,
           "items": [ITEM.to_json(), ["too", "short"], 7], "released": ["docker.io/x", 3]}  # fmt: skip
    st = state_of(pull("body\n\n" + marker(MARKER, old)))
    assert st == PrState("g", "f", "b", (ITEM,), head="h", retired=True, released=frozenset({"docker.io/x"}))
    assert state_of(pull("no marker")) is None
    assert PrState.from_json(["not", "a", "dict"]) is None
    assert state_of(pull(marker(MARKER, {"head": 5, "human": "yes"}))) == PrState()


def test_blocked_and_held_back_read_the_state() -> None:
    no = pull(with_state("", PrState(items=(ITEM,))))
    assert blocked([no]) == {ITEM.key}
    assert blocked([pull(with_state("", PrState(items=(ITEM,), retired=True)))]) == set()
    assert blocked([pull(with_state("", PrState(items=(ITEM,), released=frozenset({ITEM.image}))))]) == set()
    assert blocked([pull(with_state("", PrState(items=(ITEM,))), merged=True)]) == set()
    assert held_back(no, ["k8s/a.yaml", "other.yaml"]) == ["k8s/a.yaml"]
    assert held_back(pull("not ours"), ["k8s/a.yaml"]) == []
