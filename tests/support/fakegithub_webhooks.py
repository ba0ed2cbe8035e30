"""Real webhook payloads from ``@octokit/webhooks-examples``, patched to the fake's state and signed
as GitHub signs them (so intake tests exercise the exact bytes and headers GitHub sends)."""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.artifacts import npm_file


@functools.cache
def _index() -> dict[str, list[dict[str, Any]]]:
    data = json.loads(npm_file("@octokit/webhooks-examples", "api.github.com/index.json").read_text())
    return {d["name"]: d["examples"] for d in data}


def examples(event: str) -> list[dict[str, Any]]:
    """Every real example payload of ``event`` (fresh copies: tests patch them)."""
    return copy.deepcopy(_index()[event])


def example(
    event: str, action: str | None = None, where: Callable[[dict[str, Any]], bool] | None = None
) -> dict[str, Any]:
    """The first example of ``event`` with ``action`` (and matching ``where``), deep-copied."""
    for ex in examples(event):
        if action is not None and ex.get("action") != action:
            continue
        if where is not None and not where(ex):
            continue
        return ex
    raise LookupError(f"no {event}/{action} example in @octokit/webhooks-examples")


def patch_repository(payload: dict[str, Any], repo: dict[str, Any]) -> dict[str, Any]:
    """Overwrite the example's ``repository`` with the fields of ``repo`` (a fake repository's JSON);
    fields the fake does not model keep the example's values, so the payload keeps GitHub's shape."""
    old = payload.get("repository") or {}
    new = {**old, **repo}
    if isinstance(old.get("owner"), dict):
        new["owner"] = {**old["owner"], **repo["owner"]}
    if "master_branch" in old:
        new["master_branch"] = repo["default_branch"]
    payload["repository"] = new
    return payload


def patch_installation(payload: dict[str, Any], installation_id: int) -> dict[str, Any]:
    payload["installation"] = {
        "id": installation_id,
        "node_id": f"MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{installation_id}",
    }
    return payload


def sign_bytes(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    """One webhook delivery: the exact bytes GitHub would POST and its headers."""

    event: str
    payload: dict[str, Any]
    body: bytes
    headers: dict[str, str]

    @property
    def delivery_id(self) -> str:
        return self.headers["X-GitHub-Delivery"]


def deliver(
    event: str, payload: dict[str, Any] | bytes, secret: str, delivery_id: str | None = None
) -> Delivery:
    """Serialise (unless bytes are given) and sign a payload with GitHub's delivery headers."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    parsed: Any = payload
    if isinstance(payload, bytes):
        try:
            parsed = json.loads(payload)
        except ValueError:  # intake tests send non-JSON bodies on purpose
            parsed = {}
    parsed = parsed if isinstance(parsed, dict) else {}
    inst = parsed.get("installation") or {}
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/a1b2c3d",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "424242",
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-GitHub-Hook-Installation-Target-ID": str(inst.get("id", "")),
        "X-Hub-Signature-256": sign_bytes(body, secret),
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
    }
    return Delivery(event, parsed, body, headers)
