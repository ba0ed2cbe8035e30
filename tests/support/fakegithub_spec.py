"""GitHub's REST contract for the fake: the operations it serves, taken from ``@octokit/openapi``.

Only the operations the fake implements are extracted (with the component schemas they reach) and
cached in the temp directory keyed by the description file's size and mtime, so loading the 13 MB
description costs once per machine, not once per test run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from tests.support.artifacts import npm_file

# Path parameters GitHub accepts with slashes in them (branch names, file paths), besides the ones
# the description marks ``x-multi-segment``.
MULTI_SEGMENT = frozenset({"ref", "branch", "path", "tree_sha", "basehead", "head"})
_COMPONENT_REF = re.compile(r'"#/components/(schemas|parameters|responses|headers|examples)/([^"]+)"')


@dataclass
class Operation:
    method: str
    template: str
    operation_id: str
    regex: re.Pattern[str]
    literal: int  # characters outside parameters: more wins when two templates match
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    query_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    required_query: frozenset[str] = frozenset()
    body_schema: dict[str, Any] | None = None
    body_required: bool = False


def _description() -> Path:
    return npm_file("@octokit/openapi", "generated/api.github.com.json")


def extract(operation_ids: Iterable[str]) -> dict[str, Any]:
    """The subset of GitHub's description holding ``operation_ids`` and what they reference."""
    wanted = set(operation_ids)
    src = _description()
    st = src.stat()
    key = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}:{sorted(wanted)}".encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"pullable-fakegithub-openapi-{key}.json"
    if cache.exists():
        try:
            return json.loads(cache.read_text())
        except ValueError:
            pass
    full = json.loads(src.read_text())
    paths: dict[str, Any] = {}
    for template, item in full["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId") in wanted:
                paths.setdefault(template, {})[method] = op
    missing = wanted - {op["operationId"] for item in paths.values() for op in item.values()}
    if missing:
        raise KeyError(f"not in GitHub's description: {sorted(missing)}")
    components: dict[str, dict[str, Any]] = {}
    todo = [json.dumps(paths)]
    while todo:
        for kind, name in _COMPONENT_REF.findall(todo.pop()):
            if name not in components.setdefault(kind, {}):
                components[kind][name] = full["components"][kind][name]
                todo.append(json.dumps(components[kind][name]))
    subset = {"paths": paths, "components": components}
    tmp = cache.with_suffix(f".{id(subset)}.tmp")
    tmp.write_text(json.dumps(subset))
    tmp.replace(cache)
    return subset


def to_json_schema(schema: Any, *, lax: bool = False) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema (``nullable``); ``lax`` drops ``required`` so a response
    carrying only some of GitHub's many fields is still checked for the types of those it has."""
    if isinstance(schema, list):
        return [to_json_schema(s, lax=lax) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: to_json_schema(v, lax=lax) for k, v in schema.items() if not k.startswith("x-")}
    out.pop("example", None)
    if lax and isinstance(out.get("required"), list):
        del out["required"]
    if lax and isinstance(out.get("oneOf"), list):
        out["anyOf"] = out.pop("oneOf")  # without ``required`` several branches match
    if out.pop("nullable", False):
        if "$ref" in out or "type" not in out:
            rest = {k: v for k, v in out.items() if k != "description"}
            return {"anyOf": [{"type": "null"}, rest]}
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


class Contract:
    """Matches requests to operations and validates them against GitHub's description."""

    def __init__(self, operation_ids: Iterable[str]) -> None:
        self.doc = extract(operation_ids)
        comps = self.doc["components"]
        self._schemas = to_json_schema({"schemas": comps.get("schemas", {})})
        self._lax_schemas = to_json_schema({"schemas": comps.get("schemas", {})}, lax=True)
        self.operations: list[Operation] = []
        for template, item in self.doc["paths"].items():
            for method, op in item.items():
                self.operations.append(self._operation(method.upper(), template, op))
        self.operations.sort(key=lambda o: -o.literal)
        self._responses: dict[tuple[str, int], Any] = {}

    def _resolve(self, obj: Any) -> Any:
        while isinstance(obj, dict) and "$ref" in obj and not obj["$ref"].startswith("#/components/schemas"):
            _, _, kind, name = obj["$ref"].split("/")
            obj = self.doc["components"][kind][name]
        return obj

    def _operation(self, method: str, template: str, op: dict[str, Any]) -> Operation:
        params = [self._resolve(p) for p in op.get("parameters", [])]
        path_params = {p["name"]: p for p in params if p["in"] == "path"}
        query = {p["name"]: p for p in params if p["in"] == "query"}
        regex, literal, pos = "", 0, 0
        for m in re.finditer(r"\{([^}]+)\}", template):
            lit = template[pos : m.start()]
            regex += re.escape(lit)
            literal += len(lit)
            name = m.group(1)
            multi = name in MULTI_SEGMENT or path_params.get(name, {}).get("x-multi-segment")
            regex += f"(?P<{name}>.+?)" if multi else f"(?P<{name}>[^/]+)"
            pos = m.end()
        regex += re.escape(template[pos:])
        literal += len(template) - pos
        body = op.get("requestBody")
        body_schema = None
        if body:
            body = self._resolve(body)
            body_schema = body.get("content", {}).get("application/json", {}).get("schema")
        return Operation(
            method=method,
            template=template,
            operation_id=op["operationId"],
            regex=re.compile(f"^{regex}$"),
            literal=literal,
            path_params=path_params,
            query_params=query,
            required_query=frozenset(n for n, p in query.items() if p.get("required")),
            body_schema=body_schema,
            body_required=bool(body and body.get("required")),
        )

    def match(self, method: str, path: str) -> tuple[Operation | None, dict[str, str], bool]:
        """The operation, its path parameters, and whether the path exists for another method."""
        other = False
        for op in self.operations:
            m = op.regex.match(path)
            if m is None:
                continue
            if op.method == method:
                return op, m.groupdict(), False
            other = True
        return None, {}, other

    def _validate(self, schema: Any, value: Any, schemas: Any) -> list[str]:
        root = {**schema, "components": schemas} if isinstance(schema, dict) else schema
        validator = jsonschema.Draft7Validator(root)
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"[:400]
            for e in validator.iter_errors(value)
        ]

    def check_request(
        self, op: Operation, params: Mapping[str, str], query: Mapping[str, list[str]], body: Any
    ) -> list[str]:
        """Contract violations of one request (empty when it is one GitHub accepts)."""
        errors: list[str] = []
        for name, value in params.items():
            errors += [f"path {name}: {e}" for e in self._param(op.path_params.get(name), value)]
        for name, values in query.items():
            spec = op.query_params.get(name)
            if spec is None:
                errors.append(f"query {name}: not a parameter of {op.operation_id}")
                continue
            for value in values:
                errors += [f"query {name}: {e}" for e in self._param(spec, value)]
        for name in op.required_query - set(query):
            errors.append(f"query {name}: required")
        if body is None:
            if op.body_required:
                errors.append("body: required")
        elif op.body_schema is None:
            errors.append(f"body: {op.operation_id} takes no body")
        else:
            errors += [
                f"body {e}" for e in self._validate(to_json_schema(op.body_schema), body, self._schemas)
            ]
        return errors

    def _param(self, spec: dict[str, Any] | None, raw: str) -> list[str]:
        if spec is None:
            return []
        schema = to_json_schema(spec.get("schema", {}))
        kind = schema.get("type")
        value: Any = raw
        try:
            if kind == "integer":
                value = int(raw)
            elif kind == "boolean":
                if raw not in ("true", "false"):
                    return [f"{raw!r} is not a boolean"]
                value = raw == "true"
            elif kind == "array":
                value = raw.split(",")
        except ValueError:
            return [f"{raw!r} is not an integer"]
        return self._validate(schema, value, self._schemas)

    def check_response(self, op: Operation, status: int, body: Any) -> list[str]:
        """Type errors in a response the fake produced (``required`` relaxed, see ``to_json_schema``)."""
        key = (op.operation_id, status)
        if key not in self._responses:
            src = self.doc["paths"][op.template][op.method.lower()].get("responses", {})
            resp = self._resolve(src.get(str(status)))
            schema = None
            if isinstance(resp, dict):
                schema = resp.get("content", {}).get("application/json", {}).get("schema")
            self._responses[key] = None if schema is None else to_json_schema(copy.deepcopy(schema), lax=True)
        schema = self._responses[key]
        if schema is None:
            return []
        return [f"response {e}" for e in self._validate(schema, body, self._lax_schemas)]
