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

import contextlib
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
        if kind is ScalarNode:
            if implicit[0] and len(value) < 64:
                tag = _RESOLVED.get((value, implicit))
                if tag is None:
                    tag = super().resolve(kind, value, implicit)
                    if len(_RESOLVED) < 20_000:
                        _RESOLVED[(value, implicit)] = tag
                return tag
        elif not self.yaml_path_resolvers:  # none registered: a collection takes its default tag
            return self.DEFAULT_MAPPING_TAG if kind is MappingNode else self.DEFAULT_SEQUENCE_TAG
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
# ASCII bytes _BAD_CHARS lets through: deleted, an ASCII text with nothing left is fine
_ASCII_FINE = bytes(b for b in range(128) if not _BAD_CHARS.match(chr(b)))
_PROPERTIES = re.compile(r"(?:[&!][^ \t\r\n]*[ \t\r\n]+)+")  # node anchor and tag, then space


class YamlRejected(Exception):
    """The file is not YAML we will read; the message says why, for the scan's ``errors``."""


def check_text(text: str) -> None:
    """Refuse control characters and bidi overrides before any parser sees them (Trojan Source:
    a reviewer would read a different image than the cluster pulls)."""
    if text.isascii() and not text.encode("ascii").translate(None, _ASCII_FINE):
        return  # the common case, ten times faster than the regex (isascii is a stored flag)
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


def filtered(text: str, want: Callable[[str], bool]) -> list[Doc]:
    """:func:`documents` for a pre-filter ``want``, asked of the whole text first (most files
    answer no at once, before any YAML work) and not asked again of a file of one document."""
    if not want(text):
        return []
    return documents(text, want=lambda chunk: chunk is text or want(chunk))


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
    starts = doc_starts(text)
    if len(starts) > MAX_DOCS:
        raise YamlRejected(f"more than {MAX_DOCS} YAML documents")
    bounds = list(zip(starts, [*starts[1:], len(text)], strict=True))
    out: list[Doc] = []
    for s, e in bounds:
        chunk = text[s:e]
        if want is not None and (schema_only(chunk) or not want(chunk)):
            continue
        if s not in roots:
            roots[s] = _compose(chunk, functools.partial(_line, loc, s))
        out.extend(Doc(root, s, loc) for root in roots[s])
    return out


_CRD = re.compile(r"^kind:[ \t]*CustomResourceDefinition[ \t]*(?:#[^\r\n]*)?\r?$", re.M)


def schema_only(chunk: str) -> bool:
    """Whether the document is a ``CustomResourceDefinition``: a schema, which holds no pod,
    no pull secret and no image to pull (its ``image`` properties say ``type: string``), and is
    most of the bytes of an operator's install.yaml; so a reader that filters documents
    (``want``) never spends a pre-filter on one. Only a top-level ``kind`` (column 0) in the
    document's first 4 KiB counts, where every real CRD says it: a doc that states its kind
    later is read as any other."""
    if "CustomResourceDefinition" not in chunk[:4096]:
        return False
    m = _CRD.search(chunk, 0, 4096)  # the 4096th character is an end for $: check what follows
    return m is not None and chunk[m.end() : m.end() + 1] in ("", "\n", "\r")


def doc_starts(text: str) -> list[int]:
    """Offsets of the documents of ``text``: 0, and each line that is ``---`` or opens with
    ``---`` and a blank (a space, a tab, a line break), found with ``str.find``: a multiline
    regex would try every position of a large file. The one home of where documents start.
    The last text's answer is kept (per thread): a file is split by each of its readers."""
    memo = _last.__dict__
    if memo.get("split") is text:
        return list(memo["starts"])
    starts = [0]
    i = 0 if text.startswith("---") else text.find("\n---")
    while i >= 0:
        at = i if i == 0 and text.startswith("---") else i + 1
        after = text[at + 3 : at + 4]
        if after in ("", " ", "\t", "\r", "\n") and at != starts[-1]:
            starts.append(at)
        i = text.find("\n---", at + 3)
    memo.update(split=text, starts=starts)
    return list(starts)


# The last file's composed documents, per thread: a file read by a finder and then for its
# pull-secret facts (bot.scan.pullsecrets) is composed once. Readers never change nodes,
# except dedupe (a duplicate key's earlier values dropped), which every reader wants.
_last = threading.local()


def _line(loc: Locator, at: int) -> int:
    return loc.line_col(at)[0]


def _compose(chunk: str, line_of: Callable[[], int]) -> list[Node]:
    """``line_of()`` gives the chunk's first line, asked only for a message (counting lines
    is a walk over the file)."""
    if needs_depth_check(chunk):
        check_depth(chunk, line_of())
    try:
        return [n for n in yaml.compose_all(chunk, Loader=_Loader) if n is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + line_of()}" if mark else ""
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


# --- pre-filters -----------------------------------------------------------------------------

_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def has_key_with(chunk: str, word: str = "mage") -> bool:
    """Whether some mapping key of ``chunk`` contains ``word`` (any case of its first letter,
    ``mage`` finding ``image``, ``Image``, ``initImage``, ``imageRepository``, ``images``), as a
    block key (``image:``, ``- image:``) or a flow one (``{name: a, image: b}``). Linear: it
    looks only around each occurrence of the word (``str.find``), so the prose of a 2-MB CRD
    that says "image" in every description costs a few checks, not a parse. A word that only
    looks like a key inside a block scalar is a false positive: the document is parsed anyway."""
    for w in (word, word.upper()):
        if w not in chunk:
            continue
        pattern = _KEY_AFTER.get(w)
        if pattern is None:  # a literal prefix: the regex engine skips ahead to it at C speed
            pattern = _KEY_AFTER[w] = re.compile(re.escape(w) + r"[\w.-]*['\"]?[ \t]*:(?=[ \t\r\n]|$)")
        if any(_is_key_at(chunk, m.start(), len(w)) for m in pattern.finditer(chunk)):
            return True
    return False


_KEY_AFTER: dict[str, re.Pattern[str]] = {}


def _is_key_at(text: str, i: int, n: int) -> bool:
    j = i + n
    end = len(text)
    while j < end and text[j] in _KEY_CHARS:
        j += 1
    if j < end and text[j] in "'\"":
        j += 1
    while j < end and text[j] in " \t":
        j += 1
    if j >= end or text[j] != ":" or (j + 1 < end and text[j + 1] not in " \t\r\n"):
        return False
    k = i - 1
    while k >= 0 and text[k] in _KEY_CHARS:
        k -= 1
    if k >= 0 and text[k] in "'\"":
        k -= 1
    while k >= 0 and text[k] in " \t":
        k -= 1
    return k < 0 or text[k] in "\n{,-?"


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


def items(node: MappingNode, doc: Doc | None = None) -> Iterator[tuple[str | None, ScalarNode | Node, Node]]:
    """(key text, key node, value node) for each pair, a duplicate key's last value only (see
    :func:`dedupe`). ``<<`` merge pairs are yielded like others; their targets are the anchored
    nodes."""
    dedupe(node, doc)
    for k, v in node.value:
        yield (k.value if isinstance(k, ScalarNode) else None), k, v


def dedupe(node: MappingNode, doc: Doc | None = None) -> None:
    """Drop all but the last value of a key written twice, as kubectl, Helm and compose (Go
    YAML decoders that keep the last) do, with a :func:`warn` naming the key and line (the
    file's line given ``doc``, else the line in its YAML document). Cheap when there is nothing
    to drop; changes ``node`` in place so every reader agrees."""
    keys = [k.value for k, _v in node.value if isinstance(k, ScalarNode) and k.value != "<<"]
    if len(keys) == len(set(keys)):
        return
    last: dict[str, int] = {}
    for i, (k, _v) in enumerate(node.value):
        if isinstance(k, ScalarNode) and k.value != "<<":
            last[k.value] = i
    kept = []
    for i, (k, v) in enumerate(node.value):
        if isinstance(k, ScalarNode) and k.value != "<<" and last[k.value] != i:
            later = node.value[last[k.value]][0]
            at, then = (
                (doc.span(k).line, doc.span(later).line)
                if doc is not None
                else (k.start_mark.line + 1, later.start_mark.line + 1)
            )
            warn(
                f"duplicate key {k.value!r} at line {at} (again at line {then}): "
                "the last value is used, as Kubernetes tooling does"
            )
            continue
        kept.append((k, v))
    node.value = kept


class _Warnings(threading.local):
    stack: list[list[str]]

    def __init__(self) -> None:
        self.stack = []


_WARNINGS = _Warnings()


def warn(message: str) -> None:
    """Record a warning about the file being read (reported by :func:`bot.scan.scan_file` as a
    ``ScanError`` of level ``warning``); lines are 1-based in the composed text."""
    if _WARNINGS.stack and message not in _WARNINGS.stack[-1]:
        _WARNINGS.stack[-1].append(message)


@contextlib.contextmanager
def collecting() -> Iterator[list[str]]:
    """Collect the :func:`warn` messages raised while the block runs (per thread)."""
    out: list[str] = []
    _WARNINGS.stack.append(out)
    try:
        yield out
    finally:
        _WARNINGS.stack.pop()


def get(node: Node | None, key: str) -> Node | None:
    """The value under ``key`` in a mapping (None when absent or not a mapping)."""
    if not isinstance(node, MappingNode):
        return None
    for k, v in reversed(node.value):  # the last of a duplicate key wins (see dedupe)
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
