"""Recall: which lines that look like they name an image did no finder account for?

    python bench/recall.py PATH          # per source kind: references, skips, candidates, gaps
    python bench/recall.py PATH --quiet  # the table only

A *candidate* is any line of a file some finder claims that matches a deliberately loose grep:
``image`` or ``repository`` anywhere (any case, so ``Image:`` too), or ``FROM`` opening a line.
A candidate is *explained* when one of these holds, checked in this order:

1. a part of a reference (finding or skip) lies on the line (parts defined in another file, such
   as Ansible ``defaults/main.yml``, count for that file);
2. YAML: the line's key holds a block with a part in it (``image:`` above ``repository:``), or is
   a sibling key of a part in the same mapping (``imagePullPolicy`` beside ``image``, ``path:``
   beside a JSON patch's ``value``);
3. every match on the line is itself explained:
   - it is in a comment (``#`` outside any scalar in YAML, a line opening with ``#`` elsewhere);
   - it is inside a template expression or comment (``{{ .Values.image.tag }}``,
     ``{% if image %}``, ``{# ... #}``, across lines too): template logic, never a reference;
   - YAML: it is text inside a string value, and no token of that string is a fully qualified
     reference (:func:`bot.reference.qualified`): prose, flags, paths (finders never read prose);
   - YAML: it is in a key that does not name an image (:data:`NOT_IMAGE_KEYS`:
     ``imagePullPolicy``, ``imagePullSecrets``, ``imageRegistry``, ...) or a ``repository``
     whose value is a chart repository URL;
   - YAML: an ``image`` key naming a Dockerfile (an action's ``runs.image: Dockerfile``), or a
     ``*image`` key whose block builds the image (Ansible ``docker_image`` with ``source: build``);
   - Jsonnet: it is in a comment or a ``|||`` text block, in a string that is not a qualified
     reference (prose, URLs), or in a field name whose ``{ }`` block holds a part;
   - shell scripts and Makefiles: the assignment of a variable that a reference reported as
     skipped uses (``IMAGE ?= ghcr.io/x/app`` for ``docker run $(IMAGE):$(VERSION)``: the skip
     names it);
   - Dockerfile: an ``ARG`` whose value a reported ``FROM`` uses, the continuation lines of a
     reported instruction, ``FROM scratch`` or ``FROM <stage>`` of a stage named earlier with ``AS``, and
     any line in the body of a ``RUN <<EOF`` heredoc (a script, not instructions).

Jinja templates that render neither YAML nor a Dockerfile (``report.sql.j2``) hold no candidates.
Anything else is listed: each line is a place to look for the next gap. The core,
:func:`recall`, is what ``tests/scan/test_recall.py`` runs over the fixture trees.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode  # noqa: E402

from bot.model import ImageRef  # noqa: E402
from bot.reference import qualified  # noqa: E402
from bot.scan import HEAD_BYTES, LocalRepo, claimant, decode, scan_file  # noqa: E402
from bot.scan.yamlsrc import YamlRejected, documents  # noqa: E402

CANDIDATE = re.compile(r"image|repository|^[ \t]*FROM[ \t]", re.IGNORECASE)
NOT_IMAGE_KEYS = frozenset(
    {"imagepullpolicy", "imagepullsecrets", "pullpolicy", "imageregistry", "imagepullprogressdeadline",
     "kind", "imagepolicyref", "imagerepositoryref",
     "imagerepository"}  # alone (a pair with a tag is a finding): kubeadm's registry prefix
)  # fmt: skip
_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_HEREDOC = re.compile(r"<<-?[ \t]*['\"]?([A-Za-z_][A-Za-z0-9_]*)")
_TOKEN = re.compile(r"[^\s=,;'\"()<>|`]+")
_TEXT_FINDERS = frozenset({"bot.scan.dockerfile", "bot.scan.helm_template", "bot.scan.jinja"})
_STAGE = re.compile(r"(?im)^[ \t]*FROM[ \t]+(?:--\S+[ \t]+)*\S+[ \t]+AS[ \t]+(\S+)")
_ARG = re.compile(r"(?i)^[ \t]*ARG[ \t]+([A-Za-z_][A-Za-z0-9_]*)=")
_FROM = re.compile(r"(?i)^[ \t]*FROM[ \t]+(?:--\S+[ \t]+)*(\S+)")
_ASSIGNMENT = re.compile(r"^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*(?:[?:+]?=)")
_USES = re.compile(r"\$[({]?([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class Gap:
    """One candidate line nothing explains."""

    path: str
    line: int
    source: str
    text: str


@dataclass
class Recall:
    found: Counter[str] = field(default_factory=Counter)  # references, per source kind
    skipped: Counter[str] = field(default_factory=Counter)  # skips, per source kind
    candidates: Counter[str] = field(default_factory=Counter)  # per claiming finder's kind
    unexplained: list[Gap] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def recall(root: str | Path, under: str = "") -> Recall:
    """Scan every file under ``root`` (paths starting with ``under`` only) and sort its candidate
    lines into explained and not."""
    repo = LocalRepo(root)
    out = Recall()
    files: list[tuple[str, str, str, str]] = []  # (path, text, source, finder module)
    refs: list[ImageRef] = []
    for rel in repo.files():
        if not rel.startswith(under):
            continue
        data = repo.read_bytes(rel)
        mod = claimant(rel, data[:HEAD_BYTES]) if data is not None else None
        if data is None or mod is None:
            continue
        res = scan_file(rel, data, repo, mod)
        out.errors += [f"{e.path}: {e.message}" for e in res.errors]
        refs += res.refs
        try:
            files.append((rel, decode(data)[0], str(mod.SOURCE), mod.__name__))
        except ValueError:
            continue
    part_lines: dict[str, set[int]] = {}
    skipped_vars: dict[str, set[str]] = {}
    for r in refs:
        if r.skip is not None:
            skipped_vars.setdefault(r.path, set()).update(_USES.findall(r.text))
        (out.skipped if r.skip is not None else out.found)[str(r.source)] += 1
        part_lines.setdefault(r.path, set()).add(r.line)
        for p in r.parts:
            text = p.text or " "
            lines = range(p.span.line, p.span.line + max(text.count("\n"), 0) + 1)
            part_lines.setdefault(p.path or r.path, set()).update(lines)
    for rel, text, source, module in files:
        if module == "bot.scan.jinja" and not _rendered_kind(rel):
            continue  # a template of another language (``report.sql.j2``): no image lines to read
        parts = part_lines.get(rel, set())
        yaml_info = None if module in _TEXT_FINDERS or not rel.endswith((".yaml", ".yml")) else _yaml(text)
        docker = module == "bot.scan.dockerfile"
        stages = {m.group(1).lower() for m in _STAGE.finditer(text)} if docker else set()
        if docker:
            parts = _docker_lines(text, parts)
        templated = [(m.start(), m.end()) for m in _TEMPLATE.finditer(text)] if "{" in text else []
        offset, heredoc = 0, None
        for number, line in enumerate(text.split("\n"), 1):
            start, offset = offset, offset + len(line) + 1
            if heredoc is not None:
                heredoc = None if line.strip() == heredoc else heredoc
                continue  # the body of a RUN heredoc is a script, not instructions
            if docker and (m := _HEREDOC.search(line)) is not None:
                heredoc = m.group(1)
            if not CANDIDATE.search(line):
                continue
            out.candidates[source] += 1
            if number in parts or (yaml_info is not None and number in yaml_info.explained(parts)):
                continue
            if _matches_explained(line, start, yaml_info, stages, templated):
                continue
            if module == "bot.scan.jsonnet" and _jsonnet_explained(text, line, start, parts):
                continue
            assigned = _ASSIGNMENT.match(line) if module == "bot.scan.shell" else None
            if assigned is not None and assigned.group(1) in skipped_vars.get(rel, set()):
                continue
            out.unexplained.append(Gap(rel, number, source, line.strip()))
    out.unexplained.sort(key=lambda g: (g.path, g.line))
    return out


def _jsonnet_explained(text: str, line: str, start: int, parts: set[int]) -> bool:
    """Every candidate match on a Jsonnet line is outside code (a comment, a text block), in a
    string that is no qualified reference, or a field name whose block holds a part."""
    import bisect

    from bot.scan.jsonnet import _qualified, tokens

    toks = tokens(text)
    starts = [t.start for t in toks]
    for m in CANDIDATE.finditer(line):
        at = start + m.start()
        k = bisect.bisect_right(starts, at) - 1
        tok = toks[k] if k >= 0 and toks[k].start <= at < toks[k].end else None
        if tok is None:
            continue  # a comment or a ||| text block
        if tok.kind == "str" and not _qualified(tok.value):
            continue
        if tok.kind in ("id", "str") and k + 2 < len(toks) and toks[k + 1].value == ":":
            j = k + 2
            while j < len(toks) and toks[j].value == ":":
                j += 1
            if j < len(toks) and toks[j].value == "{":
                depth, e = 0, j
                for e in range(j, len(toks)):
                    depth += {"{": 1, "}": -1}.get(toks[e].value, 0) if toks[e].kind == "op" else 0
                    if depth == 0:
                        break
                first = text.count("\n", 0, toks[j].start) + 1
                last = text.count("\n", 0, toks[e].start) + 1
                if any(first <= p <= last for p in parts):
                    continue
        return False
    return True


class _Yaml:
    """Where keys, values and blocks of a YAML file sit, by line and character offset."""

    def __init__(self) -> None:
        self.keys: list[tuple[int, int, str, str | None]] = []  # key scalars and their string value
        self.values: list[tuple[int, int, ScalarNode, str | None]] = []  # value scalars and their key
        self.blocks: list[tuple[int, int, int]] = []  # (key line, first line, last line) of values
        self.mappings: list[tuple[list[int], list[int]]] = []  # (key lines, direct scalar lines)
        self._explained: set[int] | None = None

    def explained(self, parts: set[int]) -> set[int]:
        if self._explained is None:
            lines: set[int] = set()
            for key_line, first, last in self.blocks:
                if any(first <= p <= last for p in parts):
                    lines.add(key_line)
            for key_lines, scalar_lines in self.mappings:
                if parts.intersection(scalar_lines):
                    lines.update(key_lines)
            self._explained = lines
        return self._explained


def _yaml(text: str) -> _Yaml | None:
    try:
        docs = documents(text)
    except YamlRejected:
        return None
    info = _Yaml()
    for doc in docs:
        stack: list[tuple[Node, str | None]] = [(doc.root, None)]
        seen: set[int] = set()
        while stack:
            node, key = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, ScalarNode):
                info.values.append((doc.start(node), doc.base + node.end_mark.index, node, key))
            elif isinstance(node, SequenceNode):
                stack.extend((x, key) for x in node.value)
            elif isinstance(node, MappingNode):
                key_lines, scalar_lines = [], []
                for k, v in node.value:
                    name = k.value if isinstance(k, ScalarNode) else None
                    kline = k.start_mark.line + 1 + _line_of(doc)
                    key_lines.append(kline)
                    if name is not None:
                        value = v.value if isinstance(v, ScalarNode) else ("build" if _builds(v) else None)
                        info.keys.append((doc.start(k), doc.base + k.end_mark.index, name, value))
                    first, last = v.start_mark.line + 1 + _line_of(doc), v.end_mark.line + 1 + _line_of(doc)
                    if isinstance(v, ScalarNode):
                        scalar_lines.extend(range(first, last + 1))
                    else:
                        info.blocks.append((kline, first, last))
                    stack.append((v, name))
                info.mappings.append((key_lines, scalar_lines))
    return info


def _line_of(doc: object) -> int:
    """Lines before the document's text (marks are relative to it)."""
    base = getattr(doc, "base", 0)
    loc = getattr(doc, "loc", None)
    return loc.line_col(base)[0] - 1 if loc is not None else 0


def _matches_explained(
    line: str, start: int, info: _Yaml | None, stages: set[str], templated: list[tuple[int, int]]
) -> bool:
    for m in CANDIDATE.finditer(line):
        at = m.start()
        if any(s <= start + at < e for s, e in templated):
            continue
        if m.group().strip().upper() == "FROM":
            word = _FROM.match(line)
            if word is not None and (word.group(1).lower() == "scratch" or word.group(1).lower() in stages):
                continue
            return False
        if info is None:
            if line.lstrip().startswith("#"):
                continue
            return False
        if not _yaml_match_explained(info, line, start, start + at):
            return False
    return True


def _yaml_match_explained(info: _Yaml, line: str, line_start: int, at: int) -> bool:
    for s, e, key, value in info.keys:
        if s <= at < e:
            low = key.lower()
            if low in ("repository", "repo") and value is not None and _chart_repo(value):
                return True
            if low == "image" and value is not None and _dockerfile(value):
                return True
            if value == "build" and low.endswith("image"):
                return True
            return low in NOT_IMAGE_KEYS
    for s, e, node, key in info.values:
        if s <= at < e:
            if key is not None and key.lower() in NOT_IMAGE_KEYS:
                return True
            if key is not None and key.lower() in ("repository", "repo") and _chart_repo(node.value):
                return True
            return not any(qualified(t.group()) for t in _TOKEN.finditer(node.value))
    return "#" in line[: at - line_start]  # outside any scalar: a comment


def _docker_lines(text: str, parts: set[int]) -> set[int]:
    """Dockerfile lines that take part in a reported reference: every line of an instruction
    continued with ``\\`` when one of them holds a part, and each ``ARG NAME=...`` whose name a
    line with a part uses (``FROM $BASE_IMAGE``)."""
    lines = text.split("\n")
    out = set(parts)
    first = 0
    for i, line in enumerate(lines, 1):
        if not line.rstrip().endswith("\\"):
            if any(first <= n <= i for n in parts) and first:
                out.update(range(first, i + 1))
            first = 0
        elif not first:
            first = i
    for i, line in enumerate(lines, 1):
        m = _ARG.match(line)
        if m is not None:
            use = re.compile(r"\$\{?" + re.escape(m.group(1)) + r"\b")
            if any(use.search(lines[n - 1]) for n in parts if i < n <= len(lines)):
                out.add(i)
    return out


def _rendered_kind(path: str) -> bool:
    """Whether a Jinja template renders YAML or a Dockerfile, the files its finder reads lines of."""
    name = path.rpartition("/")[2].lower().removesuffix(".j2").removesuffix(".jinja2").removesuffix(".jinja")
    return name.endswith((".yaml", ".yml")) or "dockerfile" in name or "containerfile" in name


def _builds(node: Node) -> bool:
    """A block that builds its image (``docker_image`` with ``source: build``): it pulls none."""
    if not isinstance(node, MappingNode):
        return False
    pairs = {k.value: v for k, v in node.value if isinstance(k, ScalarNode)}
    source = pairs.get("source")
    return "build" in pairs or (isinstance(source, ScalarNode) and source.value == "build")


def _dockerfile(value: str) -> bool:
    """``runs.image: Dockerfile`` in an action: a file built on the runner, not an image."""
    return value.rpartition("/")[2].lower().startswith(("dockerfile", "containerfile"))


def _chart_repo(value: str) -> bool:
    return "://" in value or value.startswith(("@", "file:", "alias:"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("path", help="directory to scan")
    ap.add_argument("--quiet", action="store_true", help="print the table only")
    args = ap.parse_args(argv)
    r = recall(args.path)
    kinds = sorted(set(r.found) | set(r.skipped) | set(r.candidates))
    gaps = Counter(g.source for g in r.unexplained)
    print(f"{'source':<16}{'found':>8}{'skipped':>9}{'candidates':>12}{'unexplained':>13}")
    for k in kinds:
        print(f"{k:<16}{r.found[k]:>8}{r.skipped[k]:>9}{r.candidates[k]:>12}{gaps[k]:>13}")
    if not args.quiet:
        for g in r.unexplained:
            print(f"{g.path}:{g.line}: [{g.source}] {g.text[:120]}")
        for e in r.errors:
            print(f"error: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
