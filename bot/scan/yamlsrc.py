"""Bounded, fast YAML reading for finders.

Scanning uses libyaml's composer (PyYAML ``CSafeLoader``) on the documents that can hold an image,
not ruamel's round-trip loader: on a 17 MB GitOps repository that is 0.2 s instead of 31 s
(``../shared/research/performance.md``). Round-trip parsing is kept for the files ``edit`` touches.

We compose (nodes with source marks) and never construct (Python objects), which gives us:
scalars exactly as written (``tag: 1.10`` stays ``1.10``), no merge-key expansion (the exponential
case in security.md §2), and aliases as shared node objects that :func:`walk` visits once, at the
anchor. What libyaml cannot defend against is checked here first: deep nesting (its composer
recurses and segfaults around 8-30k levels), control and bidi characters, too many documents.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.model import Part, Role, Span
from bot.scan.text import Locator

try:  # pragma: no cover - which one depends on the wheel
    _Base: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Base = yaml.SafeLoader

_RESOLVED: dict[tuple[str, tuple[bool, bool]], str] = {}


class _Loader(_Base):
    """libyaml's composer with PyYAML's (pure-Python, regex-based) implicit tag resolver
    memoised: a scalar's tag depends only on its text and style, and manifests repeat the same
    keys and values thousands of times."""

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0] and len(value) < 64:
            tag = _RESOLVED.get((value, implicit))
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(_RESOLVED) < 20_000:
                    _RESOLVED[(value, implicit)] = tag
            return tag
        return super().resolve(kind, value, implicit)


MAX_DEPTH = 128  # deeper than any real manifest or values file (CRD schemas reach ~40)
MAX_NODES = 250_000  # per file; bounds walk time whatever aliases do
MAX_DOCS = 2_000
_FLOW_SUSPECT = 512  # above this many [ { in a document, measure nesting before composing
_CHAIN_SUSPECT = 48  # ...or when a line starts with this many columns of indentation and - ? :

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
NULL = "tag:yaml.org,2002:null"

_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\u200e\u200f]")
_DOC_START = re.compile(r"^---(?=[ \t\r\n]|$)", re.M)
_PROPERTIES = re.compile(r"(?:[&!][^ \t\r\n]*[ \t\r\n]+)+")  # node anchor and tag, then space


class YamlRejected(Exception):
    """The file is not YAML we will read; the message says why, for the scan's ``errors``."""


def check_text(text: str) -> None:
    """Refuse control characters and bidi overrides before any parser sees them (Trojan Source:
    a reviewer would read a different image than the cluster pulls)."""
    m = _BAD_CHARS.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        raise YamlRejected(f"control or bidi character U+{ord(m.group()):04X} at line {line}")


@dataclass(slots=True)
class Doc:
    """One composed YAML document, with the positions of its nodes in the whole file."""

    root: Node
    base: int  # character offset of this document's text in the file
    loc: Locator

    def start(self, node: Node) -> int:
        return self.base + node.start_mark.index

    def position(self, node: Node) -> tuple[int, int]:
        """1-based line and column of the node's value (inside quotes)."""
        return self.span(node).line, self.span(node).column

    def bounds(self, node: Node) -> tuple[int, int]:
        """Character range of the node's value (quotes included), past any ``&anchor`` and
        ``!tag``: libyaml's start mark includes them, so ``x: &img nginx`` would span ``&img``."""
        s, e = self.base + node.start_mark.index, self.base + node.end_mark.index
        if s < e and self.loc.text[s] in "&!":
            m = _PROPERTIES.match(self.loc.text, s, e)
            if m is not None:
                s = m.end()
        return s, e

    def span(self, node: Node) -> Span:
        """The node's value as written, inside quotes for quoted scalars."""
        s, e = self.bounds(node)
        if isinstance(node, ScalarNode) and node.style in ("'", '"') and e - s >= 2:
            s, e = s + 1, e - 1
        return self.loc.span(s, e)

    def part(self, node: ScalarNode, role: Role, path: str | None = None) -> Part:
        """A :class:`Part` for a scalar: span, quoting, and whether the bytes are the value."""
        s, e = self.bounds(node)
        quote = ""
        if node.style in ("'", '"') and e - s >= 2:
            quote, s, e = node.style, s + 1, e - 1
        raw = node.style not in ("|", ">") and self.loc.text[s:e] == node.value
        return Part(role, node.value, self.loc.span(s, e), quote, raw, path, scalar=True)


def documents(text: str, want: Callable[[str], bool] | None = None) -> list[Doc]:
    """Compose the documents of ``text`` for which ``want(document_text)`` holds (all when None).

    Raises :class:`YamlRejected` for anything unsafe or malformed; never lets a parser error,
    ``RecursionError`` or a segfault-sized input through.
    """
    memo = _last.__dict__
    if memo.get("text") is not text:  # a new file: forget the last one's nodes
        check_text(text)
        memo.update(text=text, loc=Locator(text), roots={})
    loc: Locator = memo["loc"]
    roots: dict[int, list[Node]] = memo["roots"]
    starts = [m.start() for m in _DOC_START.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    if len(starts) > MAX_DOCS:
        raise YamlRejected(f"more than {MAX_DOCS} YAML documents")
    bounds = list(zip(starts, [*starts[1:], len(text)], strict=True))
    out: list[Doc] = []
    for s, e in bounds:
        chunk = text[s:e]
        if want is not None and not want(chunk):
            continue
        if s not in roots:
            roots[s] = _compose(chunk, loc.line_col(s)[0])
        out.extend(Doc(root, s, loc) for root in roots[s])
    return out


# The last file's composed documents, per thread: a file read by a finder and then for its
# pull-secret facts (bot.scan.pullsecrets) is composed once. Nodes are never modified by readers.
_last = threading.local()


def _compose(chunk: str, first_line: int) -> list[Node]:
    check_depth(chunk, first_line)
    try:
        return [n for n in yaml.compose_all(chunk, Loader=_Loader) if n is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + first_line}" if mark else ""
        raise YamlRejected(f"invalid YAML{where}: {exc.problem or exc.context}") from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, MemoryError) as exc:
        raise YamlRejected(f"invalid YAML: {type(exc).__name__}") from None


def depth_bound(chain: int = _CHAIN_SUSPECT, flows: int = _FLOW_SUSPECT) -> int:
    """The deepest nesting a text that passes :func:`needs_depth_check` can reach in libyaml.

    A block collection starts where a line's content starts, after its indentation and any
    compact ``- ``, ``? ``, ``: `` indicators (a ``&anchor`` or ``!tag`` ends that run: libyaml
    refuses a block collection after one on the same line). Each level sits further right than
    its parent, except a sequence that is a mapping's value, which may share its column: so two
    levels per column. Flow collections add at most one level per bracket in the text.
    """
    return 2 * chain + flows


@functools.lru_cache(maxsize=8)
def _deep_line(columns: int) -> re.Pattern[str]:
    # any of libyaml's line breaks starts a line; the BOM takes a column
    return re.compile(f"(?:^|[\r\x85\u2028\u2029])[ \t\ufeff?:-]{{{columns}}}", re.M)


def needs_depth_check(text: str, chain: int = _CHAIN_SUSPECT, flows: int = _FLOW_SUSPECT) -> bool:
    """Whether ``text`` might nest deeper than :func:`depth_bound` (a cheap, sound test: it
    over-counts, never under-counts, so the measured path runs only on suspicious text)."""
    return text.count("[") + text.count("{") > flows or _deep_line(chain).search(text) is not None


def check_depth(text: str, first_line: int = 1) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` before libyaml's recursive composer sees it.

    The composer recurses once per level and segfaults around 8-30k levels on PyYAML 6.0.3 (6.0.4
    stops at 1000 itself); this bound is ours, whatever the installed libyaml does: text that
    passes the cheap test nests at most :func:`depth_bound` (~600) levels, and anything else is
    measured with the event parser, which keeps its own stack (no recursion) and stops early.
    """
    if not needs_depth_check(text):
        return
    error_at = _measure_depth(text, first_line)
    if error_at:
        # libyaml refused before our bound (its own limit scans ahead of the events it gives):
        # measure what comes before its complaint, so the refusal names our limit
        _measure_depth(text[:error_at], first_line)


def _measure_depth(text: str, first_line: int) -> int:
    """Raise past MAX_DEPTH; else where libyaml stopped on an error (0 when it did not): the
    composer will report a syntax error with its position."""
    depth = 0
    try:
        for ev in yaml.parse(text, Loader=_Loader):
            if isinstance(ev, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    line = (ev.start_mark.line if ev.start_mark else 0) + first_line
                    raise YamlRejected(f"nesting deeper than {MAX_DEPTH} levels at line {line}")
            elif isinstance(ev, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return mark.index if mark else 0
    except yaml.YAMLError:
        return 0
    return 0


# --- node helpers ---------------------------------------------------------------------------


def is_map(node: object) -> bool:
    return isinstance(node, MappingNode)


def is_seq(node: object) -> bool:
    return isinstance(node, SequenceNode)


def is_scalar(node: object) -> bool:
    return isinstance(node, ScalarNode)


def text_of(node: object, numeric: bool = False) -> str | None:
    """The scalar's text as written, when it is a string (or a number and ``numeric``);
    None for non-strings (``!Ref x``, ``123``, ``true``, null, collections)."""
    if not isinstance(node, ScalarNode):
        return None
    if node.tag == STR or (numeric and node.tag in (INT, FLOAT)):
        return node.value
    return None


def items(node: MappingNode) -> Iterator[tuple[str | None, ScalarNode | Node, Node]]:
    """(key text, key node, value node) for each pair; duplicate keys reject the file (the
    cluster's parser and ours may keep different ones: a parser differential). ``<<`` merge
    pairs are yielded like others; their targets are the anchored nodes."""
    seen: set[str] = set()
    for k, v in node.value:
        key = k.value if isinstance(k, ScalarNode) else None
        if key is not None and key != "<<":
            if key in seen:
                raise YamlRejected(f"duplicate key {key!r} at line {k.start_mark.line + 1}")
            seen.add(key)
        yield key, k, v


def get(node: Node | None, key: str) -> Node | None:
    """The value under ``key`` in a mapping (None when absent or not a mapping)."""
    if not isinstance(node, MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return v
    return None


def get_path(node: Node | None, *keys: str) -> Node | None:
    for key in keys:
        node = get(node, key)
    return node


def walk(root: Node, limit: int = MAX_NODES) -> Iterator[tuple[tuple[str | int, ...], Node]]:
    """Pre-order (path, node) over the tree, each node object once (aliases are shared nodes:
    visiting them again is how a 300-byte file takes minutes), iteratively, within ``limit``."""
    seen: set[int] = set()
    stack: list[tuple[tuple[str | int, ...], Node]] = [((), root)]
    count = 0
    while stack:
        path, node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        count += 1
        if count > limit:
            raise YamlRejected(f"more than {limit} YAML nodes")
        if len(path) > MAX_DEPTH:
            raise YamlRejected(f"nesting deeper than {MAX_DEPTH} levels")
        yield path, node
        if isinstance(node, MappingNode):
            children = [((*path, key if key is not None else "?"), v) for key, _k, v in items(node)]
            stack.extend(reversed(children))
        elif isinstance(node, SequenceNode):
            stack.extend(reversed([((*path, i), v) for i, v in enumerate(node.value)]))


def dotted(path: tuple[str | int, ...]) -> str:
    """``("spec", "containers", 0, "image")`` -> ``spec.containers[0].image``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out
