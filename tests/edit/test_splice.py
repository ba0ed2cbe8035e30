"""apply()/apply_all(): splicing keeps every other byte, and refuses what it cannot do safely."""

from __future__ import annotations

import pytest

from bot.edit import EditError, apply, apply_all
from bot.model import Edit
from tests.edit.helpers import span_of


def edit(data: bytes, old: str, new: str, path: str = "f.yaml", after: str = "") -> Edit:
    return Edit(path, span_of(data, old, after), old, new)


def test_bom_crlf_comments_and_missing_final_newline_survive() -> None:
    data = "\ufeff# héllo\r\nimage: nginx:1.27 # keep\r\n  tag: '1.0'\r\nlast: x".encode()
    out = apply(data, [edit(data, "nginx:1.27", "nginx:1.28"), edit(data, "1.0", "1.0.1")])
    assert out == "\ufeff# héllo\r\nimage: nginx:1.28 # keep\r\n  tag: '1.0.1'\r\nlast: x".encode()


def test_edits_apply_back_to_front_whatever_their_order() -> None:
    data = b"a: one\nb: two\nc: three\n"
    edits = [edit(data, "three", "3"), edit(data, "one", "1111111"), edit(data, "two", "")]
    assert apply(data, edits) == b"a: 1111111\nb: \nc: 3\n"


def test_multibyte_text_before_the_span() -> None:
    data = "# ü → ö\nimage: nginx:1.27\n".encode()
    assert apply(data, [edit(data, "nginx:1.27", "nginx:1.28")]) == "# ü → ö\nimage: nginx:1.28\n".encode()


def test_stale_span_is_refused() -> None:
    data = b"image: nginx:1.27\n"
    e = edit(data, "nginx:1.27", "nginx:1.28")
    with pytest.raises(EditError, match="changed since it was scanned"):
        apply(b"image: nginx:1.26\n", [e])
    with pytest.raises(EditError, match="outside the file"):
        apply(b"x", [e])


def test_overlapping_edits_are_refused_identical_ones_applied_once() -> None:
    data = b"image: nginx:1.27\n"
    whole = edit(data, "nginx:1.27", "nginx:1.28")
    assert apply(data, [whole, whole]) == b"image: nginx:1.28\n"
    with pytest.raises(EditError, match="same bytes"):
        apply(data, [whole, edit(data, "1.27", "1.29")])
    with pytest.raises(EditError, match="same bytes"):
        apply(data, [whole, edit(data, "nginx:1.27", "nginx:1.29")])
    # an overlap with an edit further back than the neighbour
    data = b"abcdefghij"
    wide = Edit("f.yaml", span_of(data, "abcdefgh"), "abcdefgh", "X")
    with pytest.raises(EditError, match="same bytes"):
        apply(data, [wide, edit(data, "b", "B"), edit(data, "g", "G")])


def test_apply_takes_one_file() -> None:
    data = b"image: nginx:1.27\n"
    a, b = edit(data, "nginx:1.27", "nginx:1.28", "a.yaml"), edit(data, "nginx:1.27", "x", "b.yaml")
    with pytest.raises(EditError, match="several files"):
        apply(data, [a, b])
    assert apply(data, [a, b], path="a.yaml") == b"image: nginx:1.28\n"


def test_apply_all_returns_only_changed_files() -> None:
    files = {"a.yaml": b"image: nginx:1.27\n", "b.yaml": b"image: redis:7\n", "c.yaml": b"x: 1\n"}
    edits = [
        edit(files["a.yaml"], "nginx:1.27", "nginx:1.28", "a.yaml"),
        edit(files["b.yaml"], "redis:7", "redis:7", "b.yaml"),  # a no-op edit changes nothing
    ]
    assert apply_all(files, edits) == {"a.yaml": b"image: nginx:1.28\n"}
    with pytest.raises(EditError, match="was not given"):
        apply_all({}, edits)
