"""Set a key path in a YAML mapping by inserting text, never by re-serialising the file.

Overrides for a chart's defaults (``postgresql.image.repository``), ``imagePullSecrets`` lists
and the like often have no line to edit yet: the key path must be created. :func:`set_value`
writes the missing keys as new lines at the end of the deepest mapping that exists, in the
file's own indentation (its step, and whether sequences are indented under their key), and
updates a scalar in place when the key is already there. Everything else (comments, order,
quoting, blank lines, CRLF) stays byte for byte, and :func:`edit` turns the result into one
minimal :class:`~bot.model.Edit` for the splice engine.

Every result is checked by loading both texts: the new document must equal the old one with
exactly that key set, or :class:`EditError` is raised. Aliases and anchors on the way are
refused, because writing through them would change other places too.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from bot.edit.errors import EditError
from bot.edit.quoting import needs_quotes
from bot.model import Edit, Span

__all__ = ["Key", "append_item", "edit", "set_value", "set_values"]

Key = str | int  # a mapping key, or the index of an existing list item on the way
Scalar = str | int | float | bool | None
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_NULL = "tag:yaml.org,2002:null"


def set_value(text: str, keys: Sequence[Key], value: Any, *, document: int = 0) -> str:
    """``text`` with ``keys`` (a path of mapping keys from the document's root) set to ``value``
    (a scalar, a mapping or a list). Missing mappings on the way are created; an existing scalar
    is replaced in place; an existing mapping receives ``value``'s keys one by one. Raises
    :class:`EditError` when the path runs into something that is not a mapping."""
    if not keys:
        raise EditError("an empty key path cannot be set")
    old = _load(text, document)
    new_text = _set(text, list(keys), value, document)
    want = copy.deepcopy(old) if old is not None else {}
    _assign(want, list(keys), value)
    got = _load(new_text, document)
    if got != want:
        raise EditError(f"setting {_dotted(keys)} would change more than that key; edit it by hand")
    return new_text


def set_values(text: str, items: Sequence[tuple[Sequence[Key], Any]], *, document: int = 0) -> str:
    """Several :func:`set_value` calls on one text, in order."""
    for keys, value in items:
        text = set_value(text, keys, value, document=document)
    return text


def append_item(text: str, keys: Sequence[Key], item: Any, *, document: int = 0) -> str:
    """``text`` with ``item`` appended to the list at ``keys`` (created when missing); unchanged
    when an equal item is already there (``imagePullSecrets: [{name: regcred}]``)."""
    current = _get(_load(text, document), list(keys))
    if current is None:
        return set_value(text, keys, [item], document=document)
    if not isinstance(current, list):
        raise EditError(f"{_dotted(keys)} is not a list; cannot add {item!r} to it")
    if item in current:
        return text
    old = _load(text, document)
    node = _walk(_compose(text, document), list(keys))
    if not isinstance(node, yaml.SequenceNode):
        raise EditError(f"{_dotted(keys)} is not a list; cannot add {item!r} to it")
    style = _Style.of(text)
    if node.flow_style or not node.value:
        body = _flow(item, style)
        if node.value:
            close = node.end_mark.index - 1
            if text[close] != "]":
                raise EditError(f"{_dotted(keys)}: a flow list that does not end with ']' cannot be extended")
            new_text = text[:close] + ", " + body + text[close:]
        else:
            s, e = node.start_mark.index, node.end_mark.index
            new_text = text[:s] + "[" + body + "]" + text[e:]
    else:
        dash = node.start_mark.column
        gap = max(2, node.value[0].start_mark.column - dash)
        lines = _render_item(item, dash, style, gap)
        at = _line_after(text, _last(node.value[-1]))
        new_text = _insert_lines(text, at, lines, style)
    want = copy.deepcopy(old)
    _get(want, list(keys)).append(item)
    if _load(new_text, document) != want:
        raise EditError(f"adding to {_dotted(keys)} would change more than that list; edit it by hand")
    return new_text


def edit(path: str, old: bytes, new: bytes, *, anchored: bool = False) -> Edit | None:
    """One :class:`Edit` that turns ``old`` into ``new`` (their common head and tail left out,
    cut at character boundaries), or None when they are equal. ``anchored``: a pure insertion
    keeps the character before it as ``old``, so the splice refuses a file that moved since
    ``old`` was read (a text read without its BOM, a concurrent change)."""
    if old == new:
        return None
    a, b = old.decode("utf-8"), new.decode("utf-8")
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    if anchored and head == len(a) - tail and head > 0:
        head -= 1  # a pure insertion keeps one old character, so the splice checks where it lands
    start = len(a[:head].encode("utf-8"))
    end = len(a[: len(a) - tail].encode("utf-8"))
    line = a.count("\n", 0, head) + 1
    column = head - (a.rfind("\n", 0, head) + 1) + 1
    return Edit(path, Span(start, end, line, column), a[head : len(a) - tail], b[head : len(b) - tail])


# ---------------------------------------------------------------------------------------------
# Reading


def _documents(text: str) -> list[yaml.Node | None]:
    try:
        return list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise EditError(f"not valid YAML: {str(exc).splitlines()[0]}") from None


def _compose(text: str, document: int) -> yaml.Node | None:
    docs = _documents(text)
    if document < len(docs):
        return docs[document]
    if document == len(docs) == 0:
        return None
    raise EditError(f"the file has no document {document}")


def _load(text: str, document: int) -> Any:
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise EditError(f"not valid YAML: {str(exc).splitlines()[0]}") from None
    return docs[document] if document < len(docs) else None


def _get(data: Any, keys: list[Key]) -> Any:
    for k in keys:
        if isinstance(k, int):
            data = data[k] if isinstance(data, list) and 0 <= k < len(data) else None
        elif isinstance(data, dict):
            data = data.get(k)
        else:
            return None
    return data


def _assign(data: Any, keys: list[Key], value: Any) -> None:
    for k in keys[:-1]:
        if isinstance(k, int):
            data = data[k]
            continue
        if not isinstance(data.get(k), dict):
            data[k] = {}
        data = data[k]
    last = keys[-1]
    if isinstance(value, Mapping) and isinstance(data.get(last), dict):
        for k, v in value.items():
            _assign(data[last], [k], v)
    else:
        data[last] = copy.deepcopy(_plain(value))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _lookup(node: yaml.MappingNode, key: Key) -> tuple[yaml.Node, yaml.Node] | None:
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key and k.tag != "tag:yaml.org,2002:merge":
            return k, v
    return None


def _walk(node: yaml.Node | None, keys: list[Key]) -> yaml.Node | None:
    for k in keys:
        if isinstance(k, int):
            node = node.value[k] if isinstance(node, yaml.SequenceNode) and 0 <= k < len(node.value) else None
            continue
        if not isinstance(node, yaml.MappingNode):
            return None
        hit = _lookup(node, k)
        if hit is None:
            return None
        node = hit[1]
    return node


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL


# ---------------------------------------------------------------------------------------------
# Style


class _Style:
    """How the file writes YAML: indentation step, sequences under keys, quotes, newline."""

    def __init__(self, step: int, indent_seq: bool, quote: str, newline: str) -> None:
        self.step, self.indent_seq, self.quote, self.newline = step, indent_seq, quote, newline

    @classmethod
    def of(cls, text: str) -> _Style:
        steps: Counter[int] = Counter()
        seqs: Counter[bool] = Counter()
        try:
            docs = _documents(text)
        except EditError:
            docs = []
        for doc in docs:
            stack = [doc]
            while stack:
                node = stack.pop()
                if isinstance(node, yaml.MappingNode):
                    for k, v in node.value:
                        if isinstance(v, yaml.MappingNode) and v.value and not v.flow_style:
                            d = v.value[0][0].start_mark.column - k.start_mark.column
                            if d > 0 and v.start_mark.line > k.start_mark.line:
                                steps[d] += 1
                        block_seq = isinstance(v, yaml.SequenceNode) and v.value and not v.flow_style
                        if block_seq and v.start_mark.line > k.start_mark.line:
                            seqs[v.start_mark.column > k.start_mark.column] += 1
                        stack.append(v)
                elif isinstance(node, yaml.SequenceNode):
                    stack.extend(node.value)
        quotes = Counter({'"': text.count(': "'), "'": text.count(": '")})
        step = steps.most_common(1)[0][0] if steps else 2
        indent_seq = seqs.most_common(1)[0][0] if seqs else True
        quote = "'" if quotes["'"] > quotes['"'] else '"'
        newline = "\r\n" if "\r\n" in text else "\n"
        return cls(step, indent_seq, quote, newline)


def _scalar(value: Any, style: _Style) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if not isinstance(value, str):
        raise EditError(f"cannot write {value!r} as a YAML scalar")
    if not needs_quotes(value):
        return value
    if style.quote == "'" and "'" not in value and value.isprintable():
        return f"'{value}'"
    return json.dumps(value, ensure_ascii=False)


def _key(key: Key) -> str:
    if not isinstance(key, str) or not key:
        raise EditError(f"cannot write the key {key!r}")
    return key if not needs_quotes(key) else json.dumps(key, ensure_ascii=False)


def _flow(value: Any, style: _Style | None = None) -> str:
    st = style or _Style(2, True, '"', "\n")
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)}: {_flow(v, st)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v, st) for v in value) + "]"
    return _scalar(value, st)


def _render(key: Key, value: Any, col: int, style: _Style) -> list[str]:
    """Block lines (without newline) writing ``key: value`` at column ``col``."""
    pad = " " * col
    if isinstance(value, Mapping):
        if not value:
            return [f"{pad}{_key(key)}: {{}}"]
        out = [f"{pad}{_key(key)}:"]
        for k, v in value.items():
            out += _render(k, v, col + style.step, style)
        return out
    if isinstance(value, (list, tuple)):
        if not value:
            return [f"{pad}{_key(key)}: []"]
        out = [f"{pad}{_key(key)}:"]
        item_col = col + style.step if style.indent_seq else col
        for item in value:
            out += _render_item(item, item_col, style)
        return out
    return [f"{pad}{_key(key)}: {_scalar(value, style)}"]


def _render_item(item: Any, col: int, style: _Style, gap: int = 2) -> list[str]:
    """A sequence item (``- ...``) whose dash is at column ``col``, its content ``gap`` further."""
    pad = " " * col + "-" + " " * (gap - 1)
    if isinstance(item, Mapping) and item:
        lines: list[str] = []
        for k, v in item.items():
            lines += _render(k, v, col + gap, style)
        return [pad + lines[0][col + gap :], *lines[1:]]
    if isinstance(item, (Mapping, list, tuple)):
        return [pad + _flow(item, style)]
    return [pad + _scalar(item, style)]


# ---------------------------------------------------------------------------------------------
# Writing


def _line_after(text: str, index: int) -> int:
    """Start of the line after the one holding ``text[index - 1]`` (a node's last character)."""
    if index > 0 and text[index - 1] == "\n":
        return index
    nl = text.find("\n", index)
    return len(text) if nl < 0 else nl + 1


def _insert_lines(text: str, at: int, lines: list[str], style: _Style) -> str:
    nl = style.newline
    block = nl.join(lines) + nl
    if at == len(text) and text and not text.endswith("\n"):
        block = nl + block
    return text[:at] + block + text[at:]


def _set(text: str, keys: list[Key], value: Any, document: int) -> str:
    style = _Style.of(text)
    root = _compose(text, document)
    if root is None or _is_null(root):
        # An empty file or document: the whole path is new, at the left margin.
        lines = _render(keys[0], _nest(keys[1:], value), 0, style)
        at = len(text) if root is None else _line_after(text, root.end_mark.index)
        return _insert_lines(text, at, lines, style)
    shared = _shared(root)
    node: yaml.Node = root
    for i, k in enumerate(keys):
        if isinstance(k, int):  # an existing list item on the way (helmfile `releases[2]`)
            if not isinstance(node, yaml.SequenceNode) or not 0 <= k < len(node.value) or i == len(keys) - 1:
                raise EditError(f"{_dotted(keys[: i + 1])} is not an item of an existing list")
            node = node.value[k]
            continue
        if not isinstance(node, yaml.MappingNode):
            raise EditError(f"{_dotted(keys[:i])} is not a mapping; cannot set {_dotted(keys)}")
        if id(node) in shared:
            raise EditError(f"{_dotted(keys[:i])} is an anchor used elsewhere; edit it by hand")
        hit = _lookup(node, k)
        if hit is None:
            return _add(text, node, k, _nest(keys[i + 1 :], value), style)
        vnode = hit[1]
        if id(vnode) in shared:
            raise EditError(f"{_dotted(keys[: i + 1])} is an anchor or alias; edit it by hand")
        if i == len(keys) - 1:
            return _replace(text, vnode, value, keys, document)
        if _is_null(vnode):
            return _fill(text, vnode, _nest(keys[i + 1 :], value), style)
        node = vnode
    raise AssertionError("unreachable")


def _shared(root: yaml.Node) -> set[int]:
    """Ids of nodes reached more than once (an anchor with aliases) or written with an anchor."""
    seen: set[int] = set()
    out: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            out.add(id(node))
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack.extend(x for kv in node.value for x in kv)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return out


def _nest(keys: list[Key], value: Any) -> Any:
    for k in reversed(keys):
        if isinstance(k, int):
            raise EditError("a list item cannot be created on the way to a key")
        value = {k: value}
    return value


def _dotted(keys: Sequence[Key]) -> str:
    return ".".join(str(k) for k in keys)


def _replace(text: str, vnode: yaml.Node, value: Any, keys: list[Key], document: int) -> str:
    """Set the existing entry at ``keys`` (whose value is ``vnode``) to ``value``."""
    where = _dotted(keys)
    style = _Style.of(text)
    if isinstance(value, Mapping):
        if _is_null(vnode):
            return _fill(text, vnode, value, style)
        if not isinstance(vnode, yaml.MappingNode):
            raise EditError(f"{where} is not a mapping; cannot set keys under it")
        for k, v in value.items():
            text = _set(text, [*keys, k], v, document)
        return text
    if isinstance(value, (list, tuple)):
        if _is_null(vnode):
            return _fill(text, vnode, value, style)
        if isinstance(vnode, yaml.SequenceNode) and _load_node(vnode) == _plain(value):
            return text
        raise EditError(f"{where} already holds a value; replace it by hand")
    if not isinstance(vnode, yaml.ScalarNode) or vnode.style in ("|", ">"):
        raise EditError(f"{where} is not a single-line scalar; cannot write {value!r} over it")
    s, e = vnode.start_mark.index, vnode.end_mark.index
    quote = text[s] if vnode.style in ("'", '"') else ""
    if isinstance(value, str) and quote and value.isprintable() and quote not in value and "\\" not in value:
        new = f"{quote}{value}{quote}"
    else:
        new = _scalar(value, style)
    if s == e:  # `key:` with nothing written after the colon
        new = " " + new
    return text[:s] + new + text[e:]


def _load_node(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _add(text: str, mapping: yaml.MappingNode, key: Key, value: Any, style: _Style) -> str:
    """Add ``key: value`` to an existing mapping, after its last entry."""
    if mapping.flow_style or not mapping.value:
        close = mapping.end_mark.index - 1
        if text[close] != "}":
            raise EditError("a flow mapping that does not end with '}' cannot be extended")
        sep = ", " if mapping.value else ""
        return text[:close] + sep + f"{_key(key)}: {_flow(value, style)}" + text[close:]
    col = mapping.value[0][0].start_mark.column
    last_key, last_value = mapping.value[-1]
    at = _line_after(text, _end(last_value, last_key))
    return _insert_lines(text, at, _render(key, value, col, style), style)


def _end(vnode: yaml.Node, knode: yaml.Node) -> int:
    """Where an entry's text ends (an empty value ends with its key)."""
    return max(knode.end_mark.index, _last(vnode))


def _last(node: yaml.Node) -> int:
    """Where a node's own text ends. A block collection's end mark lies at the next token, past
    any comments and blank lines that follow it, so its last descendant is asked instead."""
    if isinstance(node, yaml.MappingNode) and node.value and not node.flow_style:
        return _end(node.value[-1][1], node.value[-1][0])
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return _last(node.value[-1])
    return node.end_mark.index


def _fill(text: str, vnode: yaml.Node, value: Any, style: _Style) -> str:
    """Write ``value`` under a key whose value is null (``key:``, ``key: ~``), as a block on the
    next lines (keeping a comment on the key's line), or inline when it is empty or a scalar."""
    s, e = vnode.start_mark.index, vnode.end_mark.index
    key_col = _key_column(text, s)
    if not (isinstance(value, (Mapping, list, tuple)) and value):
        body = _flow(value, style)
        return text[:s] + (" " if s == e else "") + body + text[e:]
    head = text[:s].rstrip(" ") if s != e else text[:s]
    joined = head + text[e:]
    lines = _render("x", value, key_col, style)[1:]
    return _insert_lines(joined, _line_after(joined, len(head)), lines, style)


def _key_column(text: str, index: int) -> int:
    """The column of the key whose value starts at ``index`` (``key:`` or ``- key:``)."""
    line_start = text.rfind("\n", 0, index) + 1
    line = text[line_start:index]
    stripped = line.lstrip(" ")
    col = len(line) - len(stripped)
    while stripped.startswith("- "):
        rest = stripped[1:].lstrip(" ")
        col += len(stripped) - len(rest)
        stripped = rest
    return col


def set_value_in_string(
    text: str, keys: Sequence[Key], inner: Sequence[Key], value: Any, *, document: int = 0
) -> str:
    """``text`` with ``inner`` set to ``value`` in the YAML held by the literal block scalar at
    ``keys`` (Argo CD's ``helm.values: |``): the block's lines are dedented, edited with
    :func:`set_value` and indented back, so the rest of the file keeps every byte. Only a plain
    literal block (``|``, ``|-``, ``|+``, no indentation digit) can be edited this way."""
    node = _walk(_compose(text, document), list(keys))
    where = _dotted(keys)
    if not isinstance(node, yaml.ScalarNode) or node.style != "|":
        raise EditError(f"{where} is not a literal block (|) of YAML; edit it by hand")
    s, e = node.start_mark.index, node.end_mark.index
    header_end = text.find("\n", s)
    header = text[s:header_end] if header_end >= 0 else text[s:]
    if any(c.isdigit() for c in header.split("#", 1)[0]):
        raise EditError(f"{where} gives an explicit indentation; edit it by hand")
    start = header_end + 1
    block = text[start:e]
    lines = block.split("\n")
    widths = [len(x) - len(x.lstrip(" ")) for x in lines if x.strip()]
    if not widths:
        raise EditError(f"{where} is empty; write the values by hand")
    n = min(widths)
    inner_old = "\n".join(x[n:] if x.strip() else x.strip(" \r") for x in lines)
    inner_new = set_value(inner_old, inner, value)
    if inner_new.endswith("\n") and not inner_old.endswith("\n"):
        inner_new = inner_new[:-1]
    pad = " " * n
    block_new = "\n".join(pad + x if x.strip() else x for x in inner_new.split("\n"))
    new_text = text[:start] + block_new + text[e:]
    old_doc, new_doc = _load(text, document), _load(new_text, document)
    got = _get(new_doc, list(keys))
    if not isinstance(got, str):
        raise EditError(f"{where} would no longer be a string")
    try:
        inner_value = yaml.safe_load(got)
    except yaml.YAMLError:
        raise EditError(f"{where} would no longer hold valid YAML") from None
    want_inner = yaml.safe_load(inner_old) or {}
    _assign(want_inner, list(inner), value)
    if inner_value != want_inner:
        raise EditError(f"setting {_dotted(inner)} in {where} would change more than that key")
    _assign_raw(new_doc, list(keys), _get(old_doc, list(keys)))
    if new_doc != old_doc:
        raise EditError(f"editing {where} would change the file outside it")
    return new_text


def _assign_raw(data: Any, keys: list[Key], value: Any) -> None:
    for k in keys[:-1]:
        data = data[k]
    data[keys[-1]] = value
