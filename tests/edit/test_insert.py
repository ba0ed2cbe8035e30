"""bot.edit.insert: key paths written as new lines in the file's own style, the rest untouched."""

from __future__ import annotations

import pytest
import yaml

from bot.edit import EditError, apply
from bot.edit.insert import append_item, edit, set_value, set_values

VALUES = """\
# Values for our release
postgresql:
  auth:
    username: app   # the app user
    database: app

  # metrics are off for now
  primary:
    persistence:
      size: 8Gi
redis:
  enabled: false
"""


def test_nested_path_goes_under_the_deepest_existing_mapping_in_its_indentation() -> None:
    out = set_value(VALUES, ["postgresql", "image", "repository"], "bitnamilegacy/postgresql")
    assert out == VALUES.replace(
        "      size: 8Gi\n", "      size: 8Gi\n  image:\n    repository: bitnamilegacy/postgresql\n"
    )


def test_mapping_value_and_four_space_style() -> None:
    text = "postgresql:\n    auth:\n        username: app\n"
    out = set_value(text, ["postgresql", "image"], {"registry": "docker.io", "tag": "15.5.0"})
    assert out == text + "    image:\n        registry: docker.io\n        tag: 15.5.0\n"


def test_existing_scalar_is_updated_in_place_keeping_its_quotes() -> None:
    text = 'pg:\n  image:\n    tag: "15.4.0"  # pinned\n    repository: bitnami/postgresql\n'
    out = set_values(
        text,
        [(["pg", "image", "tag"], "15.5.0"), (["pg", "image", "repository"], "bitnamilegacy/postgresql")],
    )
    assert out == 'pg:\n  image:\n    tag: "15.5.0"  # pinned\n    repository: bitnamilegacy/postgresql\n'


def test_values_that_yaml_would_retype_are_quoted() -> None:
    out = set_value("a: 1\n", ["image", "tag"], "1.10")
    assert out == 'a: 1\nimage:\n  tag: "1.10"\n'
    assert yaml.safe_load(out)["image"]["tag"] == "1.10"
    out = set_value("a: 'x'\n", ["on"], True)
    assert yaml.safe_load(out) == {"a": "x", "on": True}


def test_new_and_empty_files() -> None:
    assert set_value("", ["global", "security", "allowInsecureImages"], True) == (
        "global:\n  security:\n    allowInsecureImages: true\n"
    )
    assert set_value("# nothing yet\n", ["a"], "b") == "# nothing yet\na: b\n"
    assert set_value("x: 1", ["z"], 2) == "x: 1\nz: 2\n"


def test_null_values_become_blocks_and_keep_their_comment() -> None:
    text = "postgresql:   # overrides\nredis: ~\n"
    out = set_value(text, ["postgresql", "image", "tag"], "1")
    assert out == 'postgresql:   # overrides\n  image:\n    tag: "1"\nredis: ~\n'
    out = set_value(text, ["redis", "image"], "r:1")
    assert yaml.safe_load(out) == {"postgresql": None, "redis": {"image": "r:1"}}
    assert out.startswith("postgresql:   # overrides\nredis:\n  image: r:1\n")


def test_flow_mappings_get_flow_text() -> None:
    out = set_value("image: {repository: a}\n", ["image", "tag"], "1.2.3")
    assert out == "image: {repository: a, tag: 1.2.3}\n"
    assert set_value("image: {}\n", ["image", "tag"], "x") == "image: {tag: x}\n"


def test_sequences_follow_the_files_dash_style() -> None:
    indented = "spec:\n  containers:\n    - name: a\n  x: 1\n"
    out = set_value(indented, ["spec", "imagePullSecrets"], [{"name": "regcred"}])
    assert out == indented + "  imagePullSecrets:\n    - name: regcred\n"
    flush = "spec:\n  containers:\n  - name: a\n  x: 1\n"
    out = set_value(flush, ["spec", "imagePullSecrets"], [{"name": "regcred"}])
    assert out == flush + "  imagePullSecrets:\n  - name: regcred\n"


def test_append_item_adds_once() -> None:
    text = "spec:\n  imagePullSecrets:\n  - name: a\n  other: 1\n"
    out = append_item(text, ["spec", "imagePullSecrets"], {"name": "b"})
    assert out == "spec:\n  imagePullSecrets:\n  - name: a\n  - name: b\n  other: 1\n"
    assert append_item(out, ["spec", "imagePullSecrets"], {"name": "b"}) == out
    assert append_item("s: {l: [a]}\n", ["s", "l"], "b") == "s: {l: [a, b]}\n"
    assert append_item("s: 1\n", ["t"], "b") == "s: 1\nt:\n  - b\n"


def test_items_of_a_sequence_of_mappings_keep_their_columns() -> None:
    text = "containers:\n  - name: a\n    image: x\n"
    out = set_value(text, ["z"], 1)
    assert out == text + "z: 1\n"


def test_crlf_and_block_scalars_survive() -> None:
    text = "a:\r\n  note: |\r\n    hello\r\n\r\nb: 1\r\n"
    out = set_value(text, ["a", "c"], "d")
    assert yaml.safe_load(out) == {"a": {"note": "hello\n", "c": "d"}, "b": 1}
    assert "\r\n  c: d\r\n" in out and "\n" not in out.replace("\r\n", "")


def test_other_documents_are_left_alone() -> None:
    text = "a: 1\n---\nb: 2\n---\nc: 3\n"
    assert set_value(text, ["x"], "z", document=1) == "a: 1\n---\nb: 2\nx: z\n---\nc: 3\n"


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("image: nginx:1\n", ["image", "tag"]),  # a string where a mapping is needed
        ("base: &b {a: 1}\nx: *b\n", ["x", "c"]),  # writing through an alias changes base too
        ("a: [1, 2]\n", ["a"]),  # an existing list is not replaced silently
        ("a: |\n  x\n", ["a"]),
        ("a: [\n", ["a"]),  # not YAML
    ],
)
def test_refusals(text: str, keys: list[str]) -> None:
    with pytest.raises(EditError):
        set_value(text, keys, "v" if keys != ["a"] or "[1" not in text else [3])


def test_edit_is_the_minimal_span_and_splices_back() -> None:
    old = VALUES.encode()
    new = set_value(VALUES, ["redis", "image", "tag"], "7.2.5").encode()
    plain = edit("values.yaml", old, new)
    assert plain is not None and plain.old == "" and plain.span.start == plain.span.end == len(old)
    e = edit("values.yaml", old, new, anchored=True)
    # A pure insertion keeps the character before it, so the splice checks where it lands.
    assert e is not None and e.old == "\n" and (e.span.start, e.span.end) == (len(old) - 1, len(old))
    assert e.span.line == VALUES.count("\n")
    with pytest.raises(EditError, match="changed since"):
        apply(b"# shifted by a line\n" + old, [e])
    assert apply(old, [e]) == new
    assert edit("values.yaml", old, old) is None
    # Multi-byte text before the change: the span counts bytes.
    old2 = "name: café\nimage:\n  tag: a\n".encode()
    new2 = set_value(old2.decode(), ["image", "tag"], "b").encode()
    e2 = edit("v.yaml", old2, new2)
    assert e2 is not None and apply(old2, [e2]) == new2 and e2.old == "a" and e2.new == "b"


def test_insertion_goes_before_comments_that_introduce_the_next_key() -> None:
    text = "pg:\n  auth:\n    user: a\n\n# --- redis ---\nredis:\n  enabled: true\n"
    out = set_value(text, ["pg", "image", "tag"], "x")
    assert (
        out == "pg:\n  auth:\n    user: a\n  image:\n    tag: x\n\n# --- redis ---\nredis:\n  enabled: true\n"
    )


APP = """\
spec:
  source:
    helm:
      values: |
        # shared
        auth:
          username: app

        replicas: 2
      parameters: []
"""


def test_set_value_in_a_literal_block_of_yaml() -> None:
    from bot.edit.insert import set_value_in_string

    out = set_value_in_string(APP, ["spec", "source", "helm", "values"], ["image", "tag"], "1.2")
    assert out == APP.replace(
        "        replicas: 2\n", '        replicas: 2\n        image:\n          tag: "1.2"\n'
    )
    folded = APP.replace("values: |", "values: >")
    with pytest.raises(EditError):
        set_value_in_string(folded, ["spec", "source", "helm", "values"], ["image", "tag"], "1.2")
    with pytest.raises(EditError):
        set_value_in_string(
            APP.replace("values: |", "values: |2"), ["spec", "source", "helm", "values"], ["a"], "b"
        )
