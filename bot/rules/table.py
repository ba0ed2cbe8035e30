"""The rule table: ``rules/*.yaml`` read, validated and compiled once.

Rules are data so that a platform engineer can add one without reading code (the schema is
documented in ``rules/README.md``). Everything a rule can say is checked here, at load, so a
mistake is reported with its file and field instead of surfacing as a wrong pull request later.
"""

from __future__ import annotations

import fnmatch
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bot.model import Source, Status

if TYPE_CHECKING:
    import jsonschema

__all__ = [
    "ADVICE_FIELDS",
    "NAME_FIELDS",
    "STRATEGIES",
    "Match",
    "Replace",
    "Rule",
    "RuleError",
    "RuleTable",
    "default_dir",
    "load",
    "load_layered",
    "load_text",
]

STRATEGIES = ("keep", "cluster-minor", "newest-patch", "newest-in-line", "newest-stable", "latest-equivalent")
# Placeholders a `replace.name` template may use (plus the rule's params and regex groups {1}..).
NAME_FIELDS = frozenset({"domain", "path", "name", "repo", "mirror"})
# Placeholders an `advise` text may use (plus the rule's params).
ADVICE_FIELDS = frozenset(
    {"reference", "name", "domain", "path", "repo", "tag", "status", "detail", "credentials", "reason",
     "cluster_version"}
)  # fmt: skip
_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
_STR_LIST = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
    ]
}


def _one_or_more(values: list[str]) -> dict[str, Any]:
    return {"oneOf": [{"enum": values}, {"type": "array", "minItems": 1, "items": {"enum": values}}]}


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["rules"],
    "properties": {
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "why", "match"],
                "anyOf": [{"required": ["replace"]}, {"required": ["advise"]}],
                "properties": {
                    "id": {"type": "string", "pattern": _ID},
                    "why": {"type": "string", "minLength": 1},
                    "opt_in": {"type": "boolean"},
                    "params": {
                        "type": "object",
                        "propertyNames": {"pattern": r"^[a-z_][a-z0-9_]*$"},
                        "additionalProperties": {"type": ["string", "boolean", "number"]},
                    },
                    "match": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "name": _STR_LIST,
                            "name_regex": {"type": "string", "minLength": 1},
                            "registry": _STR_LIST,
                            "tag": {"type": "string"},
                            "digest": {"type": "boolean"},
                            "status": _one_or_more([s.value for s in Status]),
                            "source": _one_or_more([s.value for s in Source]),
                            "needs_shell": {"type": ["boolean", "null"]},
                            "not_field": _STR_LIST,
                        },
                    },
                    "replace": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "tag": _one_or_more(list(STRATEGIES)),
                            "variant": {"enum": ["keep", "drop"]},
                            "digest": {"enum": ["auto", "always"]},
                            "if_unverified": {"enum": ["advise", "next"]},
                        },
                    },
                    "advise": {"type": "string", "minLength": 1},
                    "note": {"type": "string", "minLength": 1},
                },
            },
        }
    },
}


class RuleError(ValueError):
    """A rule file that cannot be used; the message names the file, the rule and the field."""


@dataclass(frozen=True, slots=True)
class Match:
    """What a reference must look like for a rule to fire; an empty field matches anything."""

    names: tuple[str, ...] = ()  # fnmatch globs on the normalised name ("docker.io/bitnami/*")
    name_regex: re.Pattern[str] | None = None
    registries: tuple[str, ...] = ()
    tag: re.Pattern[str] | None = None  # on the tag as written, "" when there is none
    digest: bool | None = None
    statuses: frozenset[Status] = frozenset()
    sources: frozenset[Source] = frozenset()
    needs_shell: tuple[bool | None, ...] = ()  # empty: any; (None,) matches "cannot be known"
    not_field: tuple[str, ...] = ()  # globs on context.field where the rule must not fire


@dataclass(frozen=True, slots=True)
class Replace:
    name: str = "{name}"
    tags: tuple[str, ...] = ("keep",)
    variant: str = "keep"  # keep the tag's suffix (-alpine) when choosing, or drop it
    digest: str = "auto"  # auto: write one when the reference had one or the repo pins; always
    if_unverified: str = "advise"  # a chosen target the registry does not confirm: advise, or next rule


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    why: str
    match: Match
    replace: Replace | None = None
    advise: str | None = None  # when the replacement cannot be made (or there is none)
    note: str | None = None  # shown with a replacement that was made (a stop-gap warning)
    opt_in: bool = False
    params: Mapping[str, str | bool | float] = field(default_factory=dict)
    origin: str = ""  # "rules/10-retired.yaml#2", for messages

    def matches_name(self, name: str) -> re.Match[str] | bool:
        """A regex match (its groups feed the name template), True, or False."""
        m = self.match
        if m.names and not any(fnmatch.fnmatchcase(name, g) for g in m.names):
            return False
        if m.name_regex is not None:
            return m.name_regex.search(name) or False
        return True


@dataclass(frozen=True, slots=True)
class RuleTable:
    rules: tuple[Rule, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


def default_dir() -> Traversable:
    """The built-in table, read from the installed package: ``bot/rules/builtin`` is a link to the
    top-level ``rules/`` people edit, so wheels carry the same files an editable install reads."""
    return resources.files("bot.rules") / "builtin"


def _builtin_files() -> list[tuple[Traversable, str]]:
    """The built-in rule files, each with the origin messages name it by (``rules/10-retired.yaml``)."""
    found = sorted((f for f in default_dir().iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    if not found:
        raise RuleError(f"{default_dir()}: no built-in rule files (is the package installed completely?)")
    return [(f, f"rules/{f.name}") for f in found]


def _given_files(given: str | Path) -> list[tuple[Traversable, str]]:
    p = Path(given)
    return [(f, str(f)) for f in (sorted(p.glob("*.yaml")) if p.is_dir() else [p])]


def load(paths: Iterable[str | Path] | None = None) -> RuleTable:
    """Load rule files in order (a directory contributes its ``*.yaml`` sorted by name); none
    given: the built-in table, which the tests schema-check instead of every run (the validator
    costs ~100 ms of start-up); files a user names are always checked."""
    if paths is None:
        return _load(_builtin_files(), validate=False)
    return _load([f for given in paths for f in _given_files(given)])


def _load(files: Iterable[tuple[Traversable, str]], *, validate: bool = True) -> RuleTable:
    rules: list[Rule] = []
    for f, origin in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleError(f"{origin}: cannot read: {exc}") from None
        rules.extend(_compile_file(text, origin, validate=validate))
    return _table(rules)


def load_text(text: str, origin: str = "<rules>") -> RuleTable:
    """One rule file given as text (tests, and rules shipped inside a repository later)."""
    return _table(_compile_file(text, origin))


def _table(rules: Sequence[Rule]) -> RuleTable:
    seen: dict[str, str] = {}
    for r in rules:
        if r.id in seen:
            raise RuleError(f"{r.origin}: id: {r.id!r} is already used by {seen[r.id]}")
        seen[r.id] = r.origin
    return RuleTable(tuple(rules))


def _compile_file(text: str, origin: str, *, validate: bool = True) -> list[Rule]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"{origin}: invalid YAML: {exc}") from None
    if validate:
        _validate(doc, origin)
    return [_compile(raw, f"{origin}#{i + 1}") for i, raw in enumerate(doc["rules"])]


def _validate(doc: Any, origin: str) -> None:
    import jsonschema  # imported here: ~100 ms that the trusted bundled table does not need

    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        raise RuleError(f"{origin}: {_describe(errors[0], doc)}")


def _describe(err: jsonschema.ValidationError, doc: Any) -> str:
    """'rules[2] (bitnami-x): match.status: ...': the rule by position and id, then the field."""
    path = list(err.absolute_path)
    where = "top level"
    if len(path) >= 2 and path[0] == "rules":
        idx = int(path[1])
        rid = doc["rules"][idx].get("id") if isinstance(doc["rules"][idx], dict) else None
        field_path = ".".join(str(p) for p in path[2:]) or "(rule)"
        where = f"rules[{idx}]" + (f" ({rid})" if isinstance(rid, str) else "") + f": {field_path}"
    elif path:
        where = ".".join(str(p) for p in path)
    msg = err.message
    if err.validator == "anyOf" and path[2:] == []:
        msg = "a rule needs an action: 'replace', 'advise', or both (advice for when replace cannot be met)"
    if err.validator == "additionalProperties":
        msg = msg.replace("Additional properties are not allowed", "unknown field")
    return f"{where}: {msg}"


def _strings(v: str | list[str] | None) -> tuple[str, ...]:
    if v is None:
        return ()
    return (v,) if isinstance(v, str) else tuple(v)


def _compile(raw: dict[str, Any], origin: str) -> Rule:
    rid = raw["id"]

    def fail(field_name: str, msg: str) -> RuleError:
        return RuleError(f"{origin} ({rid}): {field_name}: {msg}")

    def regex(field_name: str, pattern: str | None) -> re.Pattern[str] | None:
        if pattern is None:
            return None
        try:
            return re.compile(pattern)
        except re.error as exc:
            raise fail(field_name, f"invalid regular expression: {exc}") from None

    m = raw["match"]
    shell = m.get("needs_shell", ...)
    match = Match(
        names=_strings(m.get("name")),
        name_regex=regex("match.name_regex", m.get("name_regex")),
        registries=_strings(m.get("registry")),
        tag=regex("match.tag", m.get("tag")),
        digest=m.get("digest"),
        statuses=frozenset(Status(s) for s in _strings(m.get("status"))),
        sources=frozenset(Source(s) for s in _strings(m.get("source"))),
        needs_shell=() if shell is ... else (shell,),
        not_field=_strings(m.get("not_field")),
    )
    params = dict(raw.get("params") or {})
    groups = match.name_regex.groups if match.name_regex else 0
    replace = None
    if "replace" in raw:
        rp = raw["replace"]
        replace = Replace(
            name=rp.get("name", "{name}"),
            tags=_strings(rp.get("tag")) or ("keep",),
            variant=rp.get("variant", "keep"),
            digest=rp.get("digest", "auto"),
            if_unverified=rp.get("if_unverified", "advise"),
        )
        _check_template("replace.name", replace.name, NAME_FIELDS | set(params), groups, fail)
    advise, note = raw.get("advise"), raw.get("note")
    if advise is not None:
        _check_template("advise", advise, ADVICE_FIELDS | set(params), 0, fail)
    if note is not None:
        if replace is None:
            raise fail("note", "a note goes with 'replace' (use 'advise' for advice-only rules)")
        _check_template("note", note, ADVICE_FIELDS | set(params), 0, fail)
    return Rule(
        id=rid,
        why=raw["why"].strip(),
        match=match,
        replace=replace,
        advise=advise.strip() if advise else None,
        note=note.strip() if note else None,
        opt_in=bool(raw.get("opt_in", False)),
        params=params,
        origin=origin,
    )


def _check_template(field_name: str, text: str, allowed: Iterable[str], groups: int, fail: Any) -> None:
    """Only plain ``{field}`` placeholders: no attribute access, indexing or format specs,
    because params can come from a repository's config."""
    names = set(allowed)
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise fail(field_name, f"bad template: {exc}") from None
    for _lit, fname, spec, conv in parsed:
        if fname is None:
            continue
        if spec or conv:
            raise fail(field_name, f"placeholder {{{fname}}} may not carry a format spec or conversion")
        if fname.isdigit():
            if int(fname) > groups:
                raise fail(field_name, f"placeholder {{{fname}}}: match.name_regex has {groups} group(s)")
        elif fname not in names:
            raise fail(field_name, f"unknown placeholder {{{fname}}} (known: {', '.join(sorted(names))})")


def load_layered(extra: Iterable[str | Path]) -> RuleTable:
    """The built-in table together with an operator's rule directories (or files), validated the
    same way. Files are ordered by file name across all of them (ties: built-in first), so an
    operator's ``05-ours.yaml`` is tried before every built-in rule and ``95-late.yaml`` after."""
    files: list[tuple[str, int, tuple[Traversable, str]]] = [(f.name, 0, (f, o)) for f, o in _builtin_files()]
    for order, given in enumerate(extra, 1):
        p = Path(given)
        if not p.exists():
            raise RuleError(f"{given}: no such rules directory or file")
        files.extend((f.name, order, (f, o)) for f, o in _given_files(p))
    return _load(entry for _, _, entry in sorted(files, key=lambda t: (t[0], t[1])))
