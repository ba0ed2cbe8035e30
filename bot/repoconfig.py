"""A repository's ``.github/pullable.yml``: what its maintainers want the bot to do.

The file is written by repository authors, so it is untrusted input: size-capped, read with the
same bounded YAML reader as the scan (no anchors or aliases: a 300-byte alias bomb would make the
validator walk a billion nodes), validated against :data:`SCHEMA` and against the rule table
(an unknown rule id is a typo the user wants to hear about). Every problem is a
:class:`ConfigError` whose message names the field; the caller reports it, nothing crashes.

Keys (all optional; documented for users in ``rules/README.md``, "Repository configuration")::

    cluster: {version: "1.33"}      # target Kubernetes minor, for kubectl-like images
    pin: patch | digest             # digest: write tag@sha256:... for every proposed target
    ignore: {images: [globs], paths: [globs]}
    rules: {disable: [ids], enable: [ids], params: {rule-id: {name: value}}}
    labels: [names]                 # put on pull requests (created when missing)
    schedule: daily | weekly | monthly | "<cron, 5 fields>"
    group: rule | all               # one PR per rule (default), or one PR for everything
    check: neutral | strict         # check-run conclusion for rotten references in PRs
    mirror: {docker.io: harbor.internal/dockerhub}
    kubectl: {distroless: false}    # exec-only containers may use registry.k8s.io/kubectl
    _extends: .github               # organisation-wide base: another repository's pullable.yml

``_extends`` works as in Probot: ``repo`` (same owner), ``owner/repo``, either with ``:path``
(default ``.github/pullable.yml``). The base is validated on its own, then the repository's keys
are merged over it: mappings key by key, lists and values replaced. One level only (a base may
not extend another), so a chain of organisations cannot loop or grow without bound.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.model import ImageRef
from bot.reference import ReferenceError, parse
from bot.rules import Options, RuleTable

if TYPE_CHECKING:
    import jsonschema

__all__ = [
    "CONFIG_PATHS",
    "SCHEMA",
    "ConfigError",
    "Extends",
    "RepoConfig",
    "extends_of",
    "load",
    "merge",
    "read",
]

CONFIG_PATHS = (".github/pullable.yml", ".github/pullable.yaml")
DEFAULT_LABELS = ("pullable",)
DEFAULT_SCHEDULE = "weekly"
MAX_BYTES = 64 * 1024
_CRON = r"^\s*(\S+\s+){4}\S+\s*$"
_HOST = r"^(localhost|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+)(:[0-9]{1,5})?$"
_AGE = r"^\s*(0|[0-9]{1,4}\s*(minutes?|hours?|days?))\s*$"
_AGE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
DEFAULT_MIN_RELEASE_AGE = "3 days"  # Renovate's minimumReleaseAge, as its security presets set it
_GLOBS = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 300}, "maxItems": 500}
_IDS = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True}

_EXTENDS = r"^([A-Za-z0-9-]{1,39}/)?[A-Za-z0-9._-]{1,100}(:[^\s:]{1,200})?$"

SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "_extends": {"type": "string", "pattern": _EXTENDS},
        "cluster": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"version": {"type": "string", "pattern": r"^v?\d+\.\d+$"}},
        },
        "pin": {"enum": ["patch", "digest"]},
        "ignore": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"images": _GLOBS, "paths": _GLOBS},
        },
        "rules": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "disable": _IDS,
                "enable": _IDS,
                "params": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": {"type": ["string", "boolean", "number"]},
                    },
                },
            },
        },
        "labels": {
            "type": "array",
            "maxItems": 20,
            "uniqueItems": True,
            "items": {"type": "string", "minLength": 1, "maxLength": 50},
        },
        "schedule": {
            "anyOf": [{"enum": ["daily", "weekly", "monthly"]}, {"type": "string", "pattern": _CRON}]
        },
        "group": {"enum": ["rule", "all"]},
        "check": {"enum": ["neutral", "strict"]},
        "mirror": {
            "type": "object",
            "propertyNames": {"pattern": _HOST},
            "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 255},
        },
        "kubectl": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"distroless": {"type": "boolean"}},
        },
        "minimum_release_age": {"type": "string", "pattern": _AGE},
    },
}


class ConfigError(ValueError):
    """The repository's config cannot be used; ``str()`` names the file and the field."""


class TextReader(Protocol):
    def read_text(self, path: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class RepoConfig:
    """The validated config; ``RepoConfig()`` is what a repository without the file gets."""

    cluster_version: str | None = None
    pin: str = "patch"
    ignore_images: tuple[str, ...] = ()
    ignore_paths: tuple[str, ...] = ()
    disable: frozenset[str] = frozenset()
    enable: frozenset[str] = frozenset()
    params: Mapping[str, Mapping[str, str | bool | float]] = field(default_factory=dict)
    labels: tuple[str, ...] = DEFAULT_LABELS
    schedule: str = DEFAULT_SCHEDULE
    group: str = "rule"
    check: str = "neutral"
    mirror: Mapping[str, str] = field(default_factory=dict)
    distroless: bool = False
    min_release_age_s: float = 3 * 86400.0  # DEFAULT_MIN_RELEASE_AGE
    path: str | None = None  # where it was read from; None for defaults
    extends: str | None = None  # the ``_extends`` value, when the file names a base

    def options(self) -> Options:
        """What the rule engine needs; `mirror` and `kubectl.distroless` switch their opt-in rules on."""
        enable = set(self.enable)
        if self.mirror:
            enable.add("mirror")
        if self.distroless:
            enable.add("bitnami-kubectl-distroless")
        return Options(
            cluster_version=self.cluster_version.removeprefix("v") if self.cluster_version else None,
            pin_digest=self.pin == "digest",
            mirror=dict(self.mirror),
            enable=frozenset(enable),
            disable=self.disable,
            params=self.params,
            min_release_age_s=self.min_release_age_s,
        )

    def ignores_path(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, g) for g in self.ignore_paths)

    def ignores(self, ref: ImageRef) -> bool:
        """Ignored by path glob, or by image glob on any spelling of the reference
        (``docker.io/library/nginx:1.27``, ``docker.io/library/nginx``, ``nginx:1.27``, ``nginx``)."""
        if self.ignores_path(ref.path) or any(p.path and self.ignores_path(p.path) for p in ref.parts):
            return True
        if not self.ignore_images or ref.reference is None:
            return False
        try:
            r = parse(ref.reference)
        except ReferenceError:
            return False
        forms = {str(r), r.name, r.familiar(), r.familiar_name(), ref.text}
        return any(fnmatch.fnmatchcase(f, g) for f in forms for g in self.ignore_images)


def release_age_s(text: str) -> float:
    """``"3 days"``, ``"12 hours"``, ``"30 minutes"`` or ``"0"`` (off), in seconds (the schema
    has checked the form)."""
    m = re.fullmatch(r"\s*([0-9]+)\s*(minute|hour|day)?s?\s*", text)
    if m is None or (m.group(2) is None and m.group(1) != "0"):
        raise ConfigError(f"minimum_release_age: {text!r} is not like '3 days', '12 hours' or '0'")
    return float(m.group(1)) * _AGE_UNITS[m.group(2)] if m.group(2) else 0.0


class Extends(NamedTuple):
    """Where an ``_extends`` base lives: ``owner`` None means the repository's own owner."""

    owner: str | None
    repo: str
    path: str


Fetch = Callable[[Extends], "str | None"]


def extends_of(value: str) -> Extends:
    """``repo``, ``owner/repo``, either with ``:path``, as Probot reads ``_extends``."""
    name, _, path = value.partition(":")
    owner, _, repo = name.rpartition("/")
    path = path or CONFIG_PATHS[0]
    if path.startswith("/") or ".." in path.split("/") or repo in (".", ".."):
        raise ConfigError(f"_extends: {value!r} is not repo, owner/repo or either with :path")
    return Extends(owner or None, repo, path)


def read(
    reader: TextReader, table: RuleTable | None = None, fetch: Fetch | None = None, *, alone: bool = False
) -> RepoConfig:
    """The config of the repository ``reader`` reads (defaults when it has none). ``fetch``
    reads an ``_extends`` base (the App, from GitHub); see :func:`load` for ``alone``."""
    for path in CONFIG_PATHS:
        text = reader.read_text(path)
        if text is not None:
            return load(text, table=table, origin=path, fetch=fetch, alone=alone)
        # read_text says None for a missing file and for one it cannot decode or that is too
        # big: the latter is a config the authors wrote, so it must not read as "no config".
        raw = getattr(reader, "read_bytes", None)
        data = raw(path) if raw is not None else None
        if data is not None:
            if len(data) > MAX_BYTES:
                raise ConfigError(f"{path}: larger than {MAX_BYTES // 1024} KiB")
            raise ConfigError(f"{path}: cannot be read as UTF-8 text")
    return RepoConfig()


def merge(base: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """``own`` over ``base``: mappings merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in own.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _validated(text: str, origin: str) -> dict[str, Any]:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ConfigError(f"{origin}: larger than {MAX_BYTES // 1024} KiB")
    data = _parse_yaml(text, origin)
    import jsonschema  # ~100 ms: only when a repository has a config to check

    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        raise ConfigError(f"{origin}: {_describe(errors[0])}")
    return dict(data or {})


def load(
    text: str,
    *,
    table: RuleTable | None = None,
    origin: str = CONFIG_PATHS[0],
    fetch: Fetch | None = None,
    alone: bool = False,
) -> RepoConfig:
    """Parse and validate config text and its ``_extends`` base, which ``fetch`` reads; raises
    :class:`ConfigError` naming the file and the field. Without ``fetch`` a file that extends a
    base is an error (organisation-wide settings silently dropped would be worse), unless
    ``alone``: then it is used by itself and ``RepoConfig.extends`` says what was not merged
    (the CLI on a checkout, which has no GitHub to read the base from, says so)."""
    data = _validated(text, origin)
    extends = data.pop("_extends", None)
    if extends is not None and fetch is None and not alone:
        raise ConfigError(f"{origin}: _extends: {extends}: the base configuration cannot be read here")
    if extends is not None and fetch is not None:
        try:
            where = extends_of(extends)
        except ConfigError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
        base_origin = f"{where.owner + '/' if where.owner else ''}{where.repo}:{where.path}"
        base_text = fetch(where)
        if base_text is None:
            raise ConfigError(f"{origin}: _extends: {extends}: {base_origin} was not found or cannot be read")
        base = _validated(base_text, base_origin)
        if "_extends" in base:
            raise ConfigError(f"{base_origin}: _extends: a base configuration may not extend another")
        _check_semantics(base, table, base_origin)
        data = merge(base, data)
    _check_semantics(data, table, origin)
    rules = data.get("rules", {})
    ignore = data.get("ignore", {})
    return RepoConfig(
        cluster_version=data.get("cluster", {}).get("version"),
        pin=data.get("pin", "patch"),
        ignore_images=tuple(ignore.get("images", ())),
        ignore_paths=tuple(ignore.get("paths", ())),
        disable=frozenset(rules.get("disable", ())),
        enable=frozenset(rules.get("enable", ())),
        params={k: dict(v) for k, v in rules.get("params", {}).items()},
        labels=tuple(data.get("labels", DEFAULT_LABELS)),
        schedule=data.get("schedule", DEFAULT_SCHEDULE),
        group=data.get("group", "rule"),
        check=data.get("check", "neutral"),
        mirror={k: v.rstrip("/") for k, v in data.get("mirror", {}).items()},
        distroless=bool(data.get("kubectl", {}).get("distroless", False)),
        min_release_age_s=release_age_s(data.get("minimum_release_age", DEFAULT_MIN_RELEASE_AGE)),
        path=origin,
        extends=extends if fetch is None else None,
    )


def _parse_yaml(text: str, origin: str) -> Any:
    from bot.scan.yamlsrc import YamlRejected, check_depth, check_text

    try:
        check_text(text)
        check_depth(text)  # libyaml's composer recurses per level: bound it before it runs
        nodes = [n for n in yaml.compose_all(text, Loader=yaml.CSafeLoader) if n is not None]
    except YamlRejected as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{origin}: invalid YAML{where}: {exc.problem}") from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise ConfigError(f"{origin}: invalid YAML: {type(exc).__name__}") from None
    if len(nodes) > 1:
        raise ConfigError(f"{origin}: expected one YAML document, found {len(nodes)}")
    if not nodes:
        return None
    _refuse_aliases(nodes[0], origin)
    try:
        return yaml.constructor.SafeConstructor().construct_document(nodes[0])
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: invalid YAML: {exc}") from None


def _refuse_aliases(root: Node, origin: str) -> None:
    """Anchors, aliases and ``<<`` merges have no use in a config this size and are how a small
    file becomes a huge tree, so refuse them outright (iteratively: depth is unbounded); and
    duplicate keys, which YAML would resolve silently to the last one."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            raise ConfigError(
                f"{origin}: anchors and aliases are not supported (line {node.start_mark.line + 1})"
            )
        seen.add(id(node))
        if len(seen) > 10_000:
            raise ConfigError(f"{origin}: too many values")
        if isinstance(node, MappingNode):
            keys: set[str] = set()
            for k, v in node.value:
                if isinstance(k, ScalarNode) and k.value == "<<":
                    raise ConfigError(
                        f"{origin}: merge keys (<<) are not supported (line {k.start_mark.line + 1})"
                    )
                if isinstance(k, ScalarNode):  # YAML keeps the last silently; the author meant one
                    if k.value in keys:
                        raise ConfigError(
                            f"{origin}: duplicate key {k.value!r} at line {k.start_mark.line + 1}"
                        )
                    keys.add(k.value)
                stack.extend((k, v))
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


def _describe(err: jsonschema.ValidationError) -> str:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path).lstrip(".")
    where = where or "top level"
    inst = err.instance
    if err.validator == "additionalProperties":
        return f"{where}: unknown key(s): " + err.message.split("(", 1)[-1].rstrip(")").replace(
            " were unexpected", ""
        ).replace(" was unexpected", "")
    if where == "cluster.version" and isinstance(inst, float | int):
        return (f"cluster.version: write it as a quoted string (\"1.30\"): YAML reads {inst!r} as a "
                "number, which loses trailing zeros")  # fmt: skip
    if err.validator in ("enum", "anyOf", "pattern") or where == "schedule":
        expected = {
            "pin": "patch or digest",
            "group": "rule or all",
            "check": "neutral or strict",
            "schedule": "daily, weekly, monthly or a 5-field cron expression",
            "cluster.version": 'a Kubernetes minor such as "1.33"',
        }.get(where)
        if expected:
            return f"{where}: {inst!r} is not valid; expected {expected}"
        if where.startswith("mirror"):
            return f"mirror: {inst!r} is not a registry host name"
    return f"{where}: {err.message}"


def _check_semantics(data: Mapping[str, Any], table: RuleTable | None, origin: str) -> None:
    for registry, prefix in data.get("mirror", {}).items():
        try:
            ref = parse(f"{prefix.rstrip('/')}/x")
        except ReferenceError as exc:
            raise ConfigError(
                f"{origin}: mirror.{registry}: {prefix!r} is not a registry prefix: {exc}"
            ) from None
        if ref.domain == "docker.io" and not prefix.startswith("docker.io"):
            raise ConfigError(
                f"{origin}: mirror.{registry}: {prefix!r} must start with the mirror's host name"
            )
    if table is None:
        return
    from bot.report import CHECK_RULES

    known = set(table.ids) | CHECK_RULES
    rules = data.get("rules", {})
    for key in ("disable", "enable"):
        for i, rid in enumerate(rules.get(key, ())):
            if rid not in known:
                raise ConfigError(
                    f"{origin}: rules.{key}[{i}]: unknown rule {rid!r} (known: {', '.join(sorted(known))})"
                )
    for rid, values in rules.get("params", {}).items():
        rule = table.get(rid)
        if rule is None:
            raise ConfigError(
                f"{origin}: rules.params.{rid}: unknown rule {rid!r} (known: {', '.join(table.ids)})"
            )
        for name, value in values.items():
            if name not in rule.params:
                have = ", ".join(rule.params) or "none"
                raise ConfigError(
                    f"{origin}: rules.params.{rid}.{name}: rule {rid} has no such parameter (has: {have})"
                )
            if name == "image" or name.endswith("image"):
                try:
                    ok = parse(str(value))
                except ReferenceError as exc:
                    raise ConfigError(f"{origin}: rules.params.{rid}.{name}: {value!r}: {exc}") from None
                if ok.tag or ok.digest:
                    raise ConfigError(
                        f"{origin}: rules.params.{rid}.{name}: give a name without tag or digest"
                    )
