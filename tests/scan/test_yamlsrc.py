"""The bounded YAML reader: exact spans, scalars as written, and every hazard from security.md §2
ending as a YamlRejected (never a crash, never an exponential walk)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.model import Role
from bot.scan import yamlsrc as y


def _image_parts(text: str) -> list[tuple[str, str]]:
    out = []
    for doc in y.documents(text):
        for path, node in y.walk(doc.root):
            if path and path[-1] == "image":
                p = doc.part(node, Role.IMAGE)
                data = text.encode()
                assert data[p.span.start : p.span.end].decode() == p.text
                out.append((y.dotted(path), p.text))
    return out


def test_spans_are_bytes_of_the_value_inside_quotes() -> None:
    text = (
        "# é comment\nspec:\n  containers:\n"
        "  - image: \"nginx:1.27\"\n  - image: 'redis:7'\n  - image: alpine\n"
    )
    assert _image_parts(text) == [
        ("spec.containers[0].image", "nginx:1.27"),
        ("spec.containers[1].image", "redis:7"),
        ("spec.containers[2].image", "alpine"),
    ]


def test_line_and_column_are_one_based_and_point_inside_quotes() -> None:
    (doc,) = y.documents('a: 1\nimage: "x:1"\n')
    node = y.get(doc.root, "image")
    assert doc.position(node) == (2, 9)


def test_multi_document_offsets_and_prefilter() -> None:
    text = "kind: ConfigMap\ndata: {}\n---\nkind: Pod\nimage: busybox:1.36\n---\nfoo: bar\n"
    docs = y.documents(text, want=lambda t: "image" in t)
    assert len(docs) == 1
    node = y.get(docs[0].root, "image")
    part = docs[0].part(node, Role.IMAGE)
    assert text.encode()[part.span.start : part.span.end] == b"busybox:1.36"
    assert (part.span.line, part.span.column) == (5, 8)


def test_crlf_spans() -> None:
    text = "a: 1\r\nimage: nginx:1\r\n"
    (doc,) = y.documents(text)
    p = doc.part(y.get(doc.root, "image"), Role.IMAGE)
    assert text.encode()[p.span.start : p.span.end] == b"nginx:1"
    assert p.span.line == 2


def test_scalars_are_read_as_written() -> None:
    (doc,) = y.documents("tag: 1.10\nport: 8080\nflag: true\nref: !Ref x\nnull_: ~\ns: '1.10'\n")
    assert y.text_of(y.get(doc.root, "tag")) is None  # a float is not a string...
    assert y.text_of(y.get(doc.root, "tag"), numeric=True) == "1.10"  # ...but its text is kept
    assert y.text_of(y.get(doc.root, "port"), numeric=True) == "8080"
    assert y.text_of(y.get(doc.root, "flag"), numeric=True) is None
    assert y.text_of(y.get(doc.root, "ref")) is None
    assert y.text_of(y.get(doc.root, "null_")) is None
    assert y.text_of(y.get(doc.root, "s")) == "1.10"


def test_raw_is_false_when_bytes_differ_from_value() -> None:
    (doc,) = y.documents('a: "ngi\\x6ex:1"\nb: >\n  folded\n')
    assert doc.part(y.get(doc.root, "a"), Role.IMAGE).raw is False
    assert doc.part(y.get(doc.root, "b"), Role.IMAGE).raw is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # libyaml's composer would segfault; our pre-check or libyaml's own limit (PyYAML >= 6.0.4)
        # refuses it first, so assert the refusal and that its reason names nesting, not the wording.
        ("[" * 50_000, "nesting|depth"),
        ("- " * 20_000 + "x", "nesting deeper"),
        ("a: [1, 2\n", "invalid YAML"),
        ("image: nginx\u202e:1\n", "bidi"),
        ("image: x\x1b[2J\n", "control"),
        ("---\na: 1\n" * 2500, "more than"),
    ],
)
def test_hazards_are_rejected(text: str, message: str) -> None:
    with pytest.raises(y.YamlRejected, match=message):
        for doc in y.documents(text):
            list(y.walk(doc.root))


def test_duplicate_keys_keep_the_last_value_and_warn() -> None:
    with y.collecting() as warnings:
        (doc,) = y.documents("a: 1\nb: 2\na: 3\n")
        assert [k for k, _k, _v in y.items(doc.root, doc)] == ["b", "a"]
        assert y.text_of(y.get(doc.root, "a"), numeric=True) == "3"
    assert warnings == [
        "duplicate key 'a' at line 1 (again at line 3): the last value is used, as Kubernetes tooling does"
    ]


def test_billion_laughs_walks_each_node_once() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    lines.append("image: nginx:1")
    (doc,) = y.documents("\n".join(lines) + "\n")
    visited = list(y.walk(doc.root))
    assert len(visited) < 200  # 387M leaves if expanded


def test_merge_key_bomb_is_linear() -> None:
    lines = ["m0: &m0 {image: a:1}"]
    lines += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}" for i in range(1, 25)]
    (doc,) = y.documents("\n".join(lines) + "\n")
    assert len(list(y.walk(doc.root))) < 200


def test_self_reference_terminates() -> None:
    (doc,) = y.documents("a: &a [*a, image]\n")
    assert [p for p, _ in y.walk(doc.root)] == [(), ("a",), ("a", 1)]


def test_python_tags_are_not_constructed(tmp_path) -> None:
    marker = tmp_path / "pwned"
    (doc,) = y.documents(f'image: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert not marker.exists()
    assert y.text_of(y.get(doc.root, "image")) is None


def test_node_limit() -> None:
    text = "l: [" + ", ".join("x" for _ in range(3000)) + "]\n"
    (doc,) = y.documents(text)
    with pytest.raises(y.YamlRejected, match="nodes"):
        list(y.walk(doc.root, limit=1000))


# --- issue 11 item 1: the nesting bound is ours, whatever libyaml's version does -------------

_OURS = f"nesting deeper than {y.MAX_DEPTH} levels"


@pytest.mark.parametrize(
    "text",
    [
        "- " * 20_000 + "x",
        # a line starting with ':' (explicit value) once slipped past the compact pre-check and
        # segfaulted PyYAML 6.0.3's composer
        "apiVersion: v1\nkind: Pod\n? a\n: " + "- " * 200_000,
        "? " * 20_000 + "x",
        "\ufeff" + "- " * 20_000 + "x",  # libyaml counts the BOM as a column
        "a:\r" + "- " * 20_000 + "x",  # a lone CR is a line break to libyaml
        "b: " + "[" * 5_000,
    ],
)
def test_deep_nesting_is_refused_by_our_bound(text: str) -> None:
    with pytest.raises(y.YamlRejected, match=_OURS):
        y.documents(text)


def _libyaml_depth(text: str) -> int:
    """The deepest nesting libyaml's event parser reaches before it stops (events before a syntax
    error still reach the composer, which recurses on them)."""
    import yaml

    depth = deepest = 0
    try:
        for ev in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(ev, yaml.CollectionStartEvent):
                depth += 1
                deepest = max(deepest, depth)
            elif isinstance(ev, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        pass
    return deepest


_PIECES = [
    "- ",
    "? ",
    ": ",
    "  ",
    " ",
    "\t",
    "a: ",
    "a:",
    "x",
    "&a ",
    "!t ",
    "--- ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "\n",
    "\r",
    "\x85",
    "\u2028",
    "\ufeff",
    "|\n",
    "'q'",
    '"q": ',
    "#c\n",
]


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(_PIECES), max_size=40), st.integers(2, 6), st.integers(0, 4))
def test_depth_precheck_is_a_sound_upper_bound(pieces: list[str], chain: int, flows: int) -> None:
    """When the cheap pre-check lets a text through to the composer unmeasured, libyaml cannot
    nest it deeper than the bound the pre-check promises (2 levels per column of leading
    indentation and indicators, plus one per flow bracket): checked on generated texts with
    small thresholds."""
    text = "".join(pieces)
    if not y.needs_depth_check(text, chain=chain, flows=flows):
        assert _libyaml_depth(text) <= y.depth_bound(chain, flows)


CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition  # a schema
metadata: {name: things.example.io}
spec:
  versions:
  - name: v1
    schema:
      openAPIV3Schema:
        properties:
          image: {type: string, description: "the image: nginx:1.27 by default"}
"""
DEPLOY = """apiVersion: apps/v1
kind: Deployment
spec: {template: {spec: {containers: [{name: a, image: "nginx:1.27"}]}}}
"""


def test_a_filtered_read_skips_crds_without_asking_its_filter() -> None:
    asked: list[str] = []

    def want(chunk: str) -> bool:
        asked.append(chunk)
        return True

    docs = y.documents(CRD + "---\n" + DEPLOY, want=want)
    assert [y.text_of(y.get(d.root, "kind")) for d in docs] == ["Deployment"]
    assert len(asked) == 1 and "Deployment" in asked[0]
    # unfiltered readers (the edit verification) still see every document
    assert len(y.documents(CRD + "---\n" + DEPLOY)) == 2


@pytest.mark.parametrize(
    "text",
    [
        "apiVersion: v1\nkind: CustomResourceDefinitionList\n",  # another kind
        "spec:\n  kind: CustomResourceDefinition\n",  # not the document's kind
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  x: |\n    kind: CustomResourceDefinition\n",
        "metadata: {}\n" + "#" * 5000 + "\nkind: CustomResourceDefinition\n",  # stated late
        "#" * 4065 + "\nkind: CustomResourceDefinitionX\n",  # cut by the 4 KiB window
    ],
)
def test_only_a_top_level_crd_kind_near_the_top_is_a_schema(text: str) -> None:
    assert not y.schema_only(text)
    assert y.schema_only(CRD) and y.schema_only(CRD.replace("\n", "\r\n"))
