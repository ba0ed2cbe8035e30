"""What a registry's answers mean, with the evidence kept.

Statuses (the README copies this table):

=================  ================================================================================
``ok``             The manifest exists (HEAD 200). ``digest`` is what the reference resolves to: for
                   a multi-platform image, the index's own digest.
``tag-missing``    The repository exists but has no such tag (manifest 404, tag list 200).
``repo-missing``   The repository does not exist (manifest 404 and tag list 404; or, on Docker Hub,
                   which answers 401 for missing repositories, its public repository API says 404).
``auth-required``  Anonymous access was refused, so existence is unknown: private, or missing on a
                   registry that will not say (GitLab, GHCR, Docker Hub for non-public repos).
``auth-failed``    The configured credentials were rejected (by the token server, or as Basic auth).
``forbidden``      403, or configured credentials were accepted yet give no access to this
                   repository (it may also not exist; registries do not tell them apart).
``digest-missing`` A pinned digest is not in the repository (manifest by digest 404).
``rate-limited``   429, still after one polite retry honouring ``Retry-After`` (at most 10 s).
``unreachable``    DNS, connect, TLS, timeout, the per-reference deadline, an oversized body, or a
                   server error (5xx and other unexpected statuses).
``blocked``        Refused by the network guard: a non-public address, a port other than 443, plain
                   http, a redirect to one of those, or more than 3 redirects.
``invalid``        The reference does not parse under Docker's grammar (no request is made).
``unchecked``      Not asked (``--offline``).
=================  ================================================================================

Evidence records the HTTP status, the registry's error code (or the challenge's ``error=``;
HEAD answers have no body), the digest, the media type, when we asked (ISO 8601 UTC) and a short
detail, including Docker Hub's ``ratelimit-*`` headers when present.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from bot.model import Evidence, Resolution, Status
from bot.reference import Reference
from bot.registry.auth import parse_challenges
from bot.registry.client import (
    INDEX_TYPES,
    SMALL_CAP,
    Blocked,
    Client,
    Deadline,
    Endpoint,
    Reply,
    Unreachable,
    sha256_digest,
)

log = logging.getLogger(__name__)


def now_iso() -> str:
    """UTC, seconds precision."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def resolve(client: Client, ref: Reference, total_s: float) -> Resolution:
    """HEAD the manifest and classify; never raises for registry or network trouble."""
    asked = now_iso()
    try:
        ep = client.endpoint(ref.domain)
        deadline = Deadline(total_s)
        target = ref.digest or ref.tag or "latest"
        reply = client.manifest(ep, ref.path, target, "HEAD", deadline)
        return _classify(client, ep, ref, reply, deadline=deadline, asked=asked)
    except Blocked as exc:
        return Resolution(
            str(ref), Status.BLOCKED, Evidence(error_code="BLOCKED", checked_at=asked, detail=str(exc))
        )
    except Unreachable as exc:
        return Resolution(
            str(ref), Status.UNREACHABLE, Evidence(error_code=exc.code, checked_at=asked, detail=str(exc))
        )


def _classify(
    client: Client, ep: Endpoint, ref: Reference, reply: Reply, *, deadline: Deadline, asked: str
) -> Resolution:
    status = reply.status
    limits = _rate_limit(reply)

    def result(st: Status, detail: str | None = None, code: str | None = None, **kw: object) -> Resolution:
        text = "; ".join(x for x in (detail, limits) if x) or None
        code = code or reply.error_code() or _challenge_error(reply)
        ev = Evidence(http_status=status, error_code=code, checked_at=asked, detail=text, **kw)  # type: ignore[arg-type]
        return Resolution(str(ref), st, ev)

    if status == 200:
        digest, media = reply.digest(), reply.media_type()
        if digest is None or (ref.digest is not None and digest != ref.digest):
            got = client.manifest(ep, ref.path, ref.digest or ref.tag or "latest", "GET", deadline)
            if got.status != 200:
                return result(Status.UNREACHABLE, f"HEAD said 200 but GET said {got.status}")
            digest, media = sha256_digest(got.body), got.media_type() or media
            if ref.digest is not None and digest != ref.digest:
                return result(Status.DIGEST_MISSING, "the registry served other content for this digest")
        return result(Status.OK, digest=digest, media_type=media)
    if status == 404:
        if ref.digest is not None:
            return result(Status.DIGEST_MISSING, "no manifest with this digest", code="MANIFEST_UNKNOWN")
        try:
            probe = client.request(
                ep, "GET", ep.url(f"/v2/{ref.path}/tags/list", {"n": "1"}), ref.path, deadline,
                accept="application/json", cap=SMALL_CAP,
            )  # fmt: skip
        except Unreachable:  # a huge tag list (2.8 ignores n) still proves the repository exists
            return result(Status.TAG_MISSING, "manifest 404, tag list too large", code="MANIFEST_UNKNOWN")
        if probe.status == 404:
            return result(Status.REPO_MISSING, "manifest 404, tag list 404", code=probe.error_code())
        return result(Status.TAG_MISSING, f"manifest 404, tag list {probe.status}", code="MANIFEST_UNKNOWN")
    if status == 401:
        if reply.auth == "rejected":
            return result(Status.AUTH_FAILED, "the configured credentials were rejected")
        if ep.hub:
            hub = client.hub_repository(ref.path, deadline)
            if hub == 404:
                return result(Status.REPO_MISSING, "Docker Hub's repository API: 404", code="NAME_UNKNOWN")
        if reply.auth == "credentials":
            return result(Status.FORBIDDEN, "credentials accepted, but no access (or no such repository)")
        return result(Status.AUTH_REQUIRED, "anonymous access refused; private or missing")
    if status == 403:
        return result(Status.FORBIDDEN, "access denied")
    if status == 429:
        return result(Status.RATE_LIMITED, "rate limited" + (" after one retry" if reply.retried else ""))
    return result(Status.UNREACHABLE, f"unexpected HTTP {status}")


def _challenge_error(reply: Reply) -> str | None:
    for ch in parse_challenges(", ".join(reply.headers.get_list("www-authenticate"))):
        err = ch.params.get("error", "")
        if err.replace("_", "").isalpha() and len(err) <= 64:
            return err
    return None


def _rate_limit(reply: Reply) -> str | None:
    """Docker Hub's ``ratelimit-limit``/``-remaining`` headers, as written (validated)."""
    parts = []
    for name in ("ratelimit-limit", "ratelimit-remaining"):
        value = reply.headers.get(name, "")
        if value and len(value) <= 40 and all(c.isalnum() or c in ";=" for c in value):
            parts.append(f"{name}: {value}")
    return ", ".join(parts) or None


def platforms(body: bytes, media_type: str | None) -> tuple[str, ...]:
    """``os/arch[/variant]`` of each entry of an index (attestation entries skipped)."""
    if media_type not in INDEX_TYPES:
        try:
            data = json.loads(body)
        except ValueError:
            return ()
        if not isinstance(data, dict) or data.get("mediaType") not in INDEX_TYPES:
            return ()
    else:
        try:
            data = json.loads(body)
        except ValueError:
            return ()
    out: dict[str, None] = {}
    for entry in data.get("manifests") or [] if isinstance(data, dict) else []:
        plat = entry.get("platform") if isinstance(entry, dict) else None
        if not isinstance(plat, dict):
            continue
        os_, arch, variant = plat.get("os"), plat.get("architecture"), plat.get("variant")
        if not isinstance(os_, str) or not isinstance(arch, str) or os_ == "unknown":
            continue
        name = f"{os_}/{arch}" + (f"/{variant}" if isinstance(variant, str) and variant else "")
        if len(name) <= 64 and all(c.isalnum() or c in "/._-" for c in name):
            out[name] = None
    return tuple(out)
