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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.model import Evidence, Resolution, Status
from bot.reference import Reference
from bot.registry.auth import parse_challenges
from bot.registry.client import (
    INDEX_TYPES,
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


@dataclass(frozen=True, slots=True)
class Listing:
    """A repository's tag list as classification needs it: the HTTP status of the (first) page,
    the registry's error code, and the tags (kept for the rules, which would ask again)."""

    status: int
    code: str | None
    tags: Sequence[str] = ()
    # every page answered 200: only then may the rules read a missing tag as "not there"
    complete: bool = True


# (reference, deadline) -> the repository's tag list; may raise Blocked or Unreachable.
ListTags = Callable[[Reference, Deadline], Listing]
# (reference, the GET reply of its manifest): lets the caller keep the verified digest.
SawManifest = Callable[[Reference, Reply], None]


def list_tags(client: Client) -> ListTags:
    """A plain :data:`ListTags` that fetches every time (the registry passes a caching one)."""

    def fetch(ref: Reference, deadline: Deadline) -> Listing:
        tags, reply, _ = client.tags(client.endpoint(ref.domain), ref.path, deadline)
        if reply is None:
            return Listing(0, None, complete=False)
        return Listing(reply.status, reply.error_code(), tuple(tags), complete=reply.status == 200)

    return fetch


def resolve(
    client: Client,
    ref: Reference,
    total_s: float,
    tags: ListTags | None = None,
    saw_manifest: SawManifest | None = None,
) -> Resolution:
    """HEAD the manifest and classify; never raises for registry or network trouble.

    A missing manifest is told apart by the repository's tag list (404: no repository), read
    through ``tags`` so that the list is fetched once per repository and kept for the rules; a
    manifest fetched whole (no digest header) is handed to ``saw_manifest`` for the same reason.
    """
    asked = now_iso()
    try:
        ep = client.endpoint(ref.domain)
        deadline = Deadline(total_s)
        target = ref.digest or ref.tag or "latest"
        reply = client.manifest(ep, ref.path, target, "HEAD", deadline)
        return _classify(
            client, ep, ref, reply, deadline=deadline, asked=asked, tags=tags or list_tags(client),
            saw_manifest=saw_manifest,
        )  # fmt: skip
    except Blocked as exc:
        return Resolution(
            str(ref), Status.BLOCKED, Evidence(error_code="BLOCKED", checked_at=asked, detail=str(exc))
        )
    except Unreachable as exc:
        return Resolution(
            str(ref), Status.UNREACHABLE, Evidence(error_code=exc.code, checked_at=asked, detail=str(exc))
        )


def _classify(
    client: Client,
    ep: Endpoint,
    ref: Reference,
    reply: Reply,
    *,
    deadline: Deadline,
    asked: str,
    tags: ListTags,
    saw_manifest: SawManifest | None,
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
            if saw_manifest is not None:
                saw_manifest(ref, got)
            digest, media = sha256_digest(got.body), got.media_type() or media
            if ref.digest is not None and digest != ref.digest:
                return result(Status.DIGEST_MISSING, "the registry served other content for this digest")
        return result(Status.OK, digest=digest, media_type=media)
    if status == 404:
        if ref.digest is not None:
            return result(Status.DIGEST_MISSING, "no manifest with this digest", code="MANIFEST_UNKNOWN")
        try:
            listing = tags(ref, deadline)
        except Unreachable:  # a huge tag list still proves the repository exists
            return result(Status.TAG_MISSING, "manifest 404, tag list too large", code="MANIFEST_UNKNOWN")
        if listing.status == 404:
            return result(Status.REPO_MISSING, "manifest 404, tag list 404", code=listing.code)
        return result(Status.TAG_MISSING, f"manifest 404, tag list {listing.status}", code="MANIFEST_UNKNOWN")
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
