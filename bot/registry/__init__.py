"""Ask registries whether image references still resolve (issue 3).

``Registry`` is the one entry point: ``check``/``check_many`` classify references (statuses in
:mod:`bot.registry.classify`), ``tags``/``pinned_digest``/``platforms`` serve the rules. All
traffic goes through one guarded ``httpx.Client`` shared by worker threads (faster than
``AsyncClient`` on small machines, measured), with a per-host concurrency limit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TypeVar

import httpx

from bot.model import Evidence, Resolution, Status
from bot.reference import Reference, ReferenceError, is_digest, parse
from bot.registry.auth import install_log_hygiene
from bot.registry.cache import MemoryStore, RedisStore, ResultCache, SQLiteStore, Store, default_store
from bot.registry.classify import Listing, now_iso, platforms, resolve
from bot.registry.client import (
    INDEX_TYPES,
    MANIFEST_CAP,
    Blocked,
    Client,
    Deadline,
    Reply,
    Unreachable,
    sha256_digest,
)
from bot.registry.config import ConfigError, RegistryConfig
from bot.versions import TagList

__all__ = [
    "ConfigError",
    "MemoryStore",
    "RedisStore",
    "Registry",
    "RegistryConfig",
    "SQLiteStore",
    "Store",
    "TagsUnavailable",
]

log = logging.getLogger(__name__)
DEFAULT_WORKERS = 16
DEFAULT_PER_HOST = 8
DEADLINE_FACTOR = 3  # a reference may take this many per-operation timeouts in total
T = TypeVar("T")


class _Once:
    """Each key computed once per :class:`Registry` (one run), however many threads ask at the
    same time: the first computes, the others wait for its answer (or its exception)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: dict[str, tuple[bool, object]] = {}
        self._busy: dict[str, threading.Event] = {}

    def get(self, key: str, compute: Callable[[], T]) -> T:
        while True:
            with self._lock:
                if key in self._done:
                    ok, value = self._done[key]
                    break
                event = self._busy.get(key)
                mine = event is None
                if event is None:
                    event = self._busy[key] = threading.Event()
            if not mine:
                event.wait()
                continue
            try:
                ok, value = True, compute()
            except Exception as exc:  # noqa: BLE001 - handed to every waiter, then raised
                ok, value = False, exc
            with self._lock:
                self._done[key] = (ok, value)
                del self._busy[key]
            event.set()
            break
        if not ok:
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]

    def put(self, key: str, value: object) -> None:
        """An answer learnt on the way (a manifest classification fetched anyway)."""
        with self._lock:
            self._done.setdefault(key, (True, value))


class TagsUnavailable(Exception):
    """A repository's tags could not be listed (unreachable, refused, rate limited, failing):
    no answer, which callers must never take for "it has no tags" (issue 11 §5)."""


# An image's build time never changes for the bytes a digest names: kept a month.
CREATED_FRESH_S = 30 * 86400.0


class Registry:
    """Registry lookups for one operator configuration (thread-safe; close when done)."""

    def __init__(
        self,
        config: RegistryConfig | None = None,
        *,
        store: Store | None = None,
        transport: httpx.BaseTransport | None = None,
        workers: int = DEFAULT_WORKERS,
        per_host: int = DEFAULT_PER_HOST,
    ) -> None:
        """``store`` defaults to Redis/SQLite (see :mod:`bot.registry.cache`); ``transport``
        replaces the guarded one (tests with ``httpx.MockTransport`` only)."""
        install_log_hygiene()
        self.config = config or RegistryConfig()
        self.client = Client(self.config, transport=transport, per_host=per_host)
        self.cache = ResultCache(store if store is not None else default_store())
        self.workers = workers
        self.total_s = self.config.timeout_s * DEADLINE_FACTOR
        self._asked = 0  # distinct references asked about (network.max_references)
        self._asked_lock = threading.Lock()
        # This run's answers for the rules, shared with classification (issue 17): one tag list
        # per repository, one verified digest per reference, whoever asks first.
        self._listings = _Once()
        self._digests = _Once()

    @classmethod
    def from_file(cls, path: str | None) -> Registry:
        """From ``--config`` or else ``PULLABLE_CONFIG``; neither -> public registries only."""
        path = path or os.environ.get("PULLABLE_CONFIG") or None
        return cls(RegistryConfig.load(path) if path else RegistryConfig())

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and the store."""
        self.client.close()
        self.cache.close()

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (benchmarks and tests count them)."""
        return sum(self.client.counts.values())

    # -- checks ---------------------------------------------------------------------------------

    def check(self, reference: str) -> Resolution:
        """Status and evidence for one reference; never raises for registry or network trouble."""
        return self.check_many([reference])[reference]

    def check_many(self, references: Iterable[str]) -> dict[str, Resolution]:
        """Each distinct reference asked once, in parallel, cached; keyed by the input strings."""
        inputs = list(dict.fromkeys(references))
        out: dict[str, Resolution] = {}
        parsed: dict[str, Reference] = {}
        for text in inputs:
            try:
                parsed[text] = parse(text)
            except ReferenceError as exc:
                out[text] = Resolution(text, Status.INVALID, Evidence(checked_at=now_iso(), detail=str(exc)))
        by_ref: dict[str, Reference] = {str(r): r for r in parsed.values()}
        keys = {norm: self._key(ref) for norm, ref in by_ref.items()}
        cached = self.cache.get_many(keys.values())
        results = {norm: _aged(cached[k]) for norm, k in keys.items() if k in cached}
        todo = [by_ref[n] for n in by_ref if n not in results]
        todo, capped = self._within_cap(todo)

        def one(ref: Reference) -> Resolution:
            return resolve(self.client, ref, self.total_s, self._listing, self._saw_manifest)

        if len(todo) == 1:
            fresh = [one(todo[0])]
        elif todo:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(todo))) as pool:
                fresh = list(pool.map(one, todo))
        else:
            fresh = []
        for res in fresh:
            results[res.reference] = res
        self.cache.put_many({keys[res.reference]: res for res in fresh})
        results.update(capped)  # never cached: the next scan may have room for them
        for text, ref in parsed.items():
            out[text] = results[str(ref)]
        return out

    def _within_cap(self, todo: list[Reference]) -> tuple[list[Reference], dict[str, Resolution]]:
        """The references this scan may still ask about, and an ``unchecked`` answer saying so
        for the rest (one repository must not be able to make thousands of requests)."""
        cap = self.config.max_references
        with self._asked_lock:
            room = max(0, cap - self._asked)
            self._asked += min(room, len(todo))
        if len(todo) <= room:
            return todo, {}
        detail = f"not checked: this scan reached its cap of {cap} references (network.max_references)"
        ev = Evidence(error_code="SCAN_CAP", checked_at=now_iso(), detail=detail)
        return todo[:room], {str(r): Resolution(str(r), Status.UNCHECKED, ev) for r in todo[room:]}

    # -- what the rules need --------------------------------------------------------------------

    def tags(self, name: str) -> TagList:
        """Every valid tag of a repository (``docker.io/alpine/kubectl``), de-duplicated, in the
        registry's order; empty for a name that is not one or a repository the registry says
        does not exist (404). Raises :class:`TagsUnavailable` when the registry could not be asked
        or did not answer with the whole list (any other status, on any page): an outage must never
        read as "no tags". One list per repository per run (the same object, parsed once), shared
        with classification, cached in the store."""
        try:
            ref = parse(name)
        except ReferenceError:
            return TagList()
        if ref.tag or ref.digest:
            return TagList()
        try:
            listing = self._listing(ref, Deadline(self.total_s))
        except (Blocked, Unreachable) as exc:
            log.info("no tags for %s: %s", name, exc)
            raise TagsUnavailable(f"could not list the tags of {name}: {exc}") from None
        if not listing.complete and not (listing.status == 404 and not listing.tags):
            what = f"HTTP {listing.status}" if listing.status else "no answer"
            raise TagsUnavailable(f"could not list the tags of {name}: {what}")
        return listing.tags if isinstance(listing.tags, TagList) else TagList(listing.tags)

    def pinned_digest(self, reference: str) -> str | None:
        """The sha256 of the manifest bytes received (GET), only if it agrees with the
        registry's ``Docker-Content-Digest`` and with a digest the reference pins; else None.
        Asked once per run and cached in the store; a stale entry is revalidated with its ETag."""
        try:
            ref = parse(reference)
        except ReferenceError:
            return None
        return self._digests.get(self._entry_key("digest", ref), lambda: self._fetch_digest(ref))

    def _listing(self, ref: Reference, deadline: Deadline) -> Listing:
        """The repository's tag list: this run's, the store's while fresh (revalidated with its
        ETag when stale), or fetched. Only complete 200 answers are stored."""
        key = self._entry_key("tags", ref)
        return self._listings.get(key, lambda: self._fetch_listing(ref, key, deadline))

    def _fetch_listing(self, ref: Reference, key: str, deadline: Deadline) -> Listing:
        entry = self.cache.get_entry(key)
        stored = entry.get("tags") if entry else None
        if entry is not None and isinstance(stored, list):
            if float(entry["fresh"]) > time.time():  # type: ignore[arg-type]
                return Listing(200, None, TagList(stored))
        else:
            entry = None
        etag = entry.get("etag") if entry else None
        ep = self.client.endpoint(ref.domain)
        tags, reply, pages = self.client.tags(
            ep, ref.path, deadline, if_none_match=etag if isinstance(etag, str) else None
        )
        if reply is None:
            return Listing(0, None, complete=False)
        if reply.status == 304 and entry is not None and isinstance(stored, list):
            self.cache.put_entry(key, entry)
            return Listing(200, None, TagList(stored))
        status = 200 if tags and pages > 1 else reply.status
        listing = Listing(status, reply.error_code(), TagList(tags), complete=reply.status == 200)
        if reply.status == 200:
            tag = reply.headers.get("etag") if pages == 1 else None
            self.cache.put_entry(key, {"tags": list(listing.tags), "etag": tag})
        return listing

    def _fetch_digest(self, ref: Reference) -> str | None:
        key = self._entry_key("digest", ref)
        entry = self.cache.get_entry(key)
        if entry is not None and isinstance(entry.get("digest"), str):
            if float(entry["fresh"]) > time.time():  # type: ignore[arg-type]
                return str(entry["digest"])
        else:
            entry = None
        etag = entry.get("etag") if entry else None
        try:
            ep = self.client.endpoint(ref.domain)
            reply = self.client.manifest(
                ep, ref.path, ref.digest or ref.tag or "latest", "GET", Deadline(self.total_s),
                if_none_match=etag if isinstance(etag, str) else None,
            )  # fmt: skip
        except (Blocked, Unreachable) as exc:
            log.info("cannot fetch the manifest of %s: %s", ref, exc)
            return None
        if reply.status == 304 and entry is not None:
            self.cache.put_entry(key, entry)
            return str(entry["digest"])
        return self._verified_digest(ref, reply)

    def _verified_digest(self, ref: Reference, reply: Reply) -> str | None:
        """The digest of a GET reply's bytes if the header and the reference agree (then stored)."""
        if reply.status != 200:
            return None
        digest = sha256_digest(reply.body)
        header = reply.digest()
        if header is not None and header != digest:
            log.warning("%s: Docker-Content-Digest %s does not match the manifest received", ref, header)
            return None
        if ref.digest is not None and ref.digest != digest:
            log.warning("%s: the registry served other content for this digest", ref)
            return None
        self.cache.put_entry(
            self._entry_key("digest", ref), {"digest": digest, "etag": reply.headers.get("etag")}
        )
        return digest

    def _saw_manifest(self, ref: Reference, reply: Reply) -> None:
        """Classification fetched this manifest whole: keep its digest for ``pinned_digest``."""
        digest = self._verified_digest(ref, reply)
        self._digests.put(self._entry_key("digest", ref), digest)

    def platforms(self, reference: str) -> tuple[str, ...]:
        """``os/arch[/variant]`` entries of an index, () for a single-platform manifest."""
        got = self._get_manifest(reference)
        return () if got is None else platforms(got[1], got[3])

    def created(self, reference: str) -> dt.datetime | None:
        """When the image was built: its config's ``created`` (for an index, the linux/amd64
        entry's, else the first platform's). None when unknown or on any trouble. Asked only for
        a chosen target (the minimum release age), so it may cost two or three requests the
        first time; the answer is kept by the manifest's digest (what the check of the
        reference reports, cached), which names those bytes for good."""
        try:
            name = parse(reference).name
        except ReferenceError:
            return None
        known = self.check(reference).evidence.digest
        key = self._entry_key("created", parse(f"{name}@{known}")) if known and is_digest(known) else None
        if key is not None:
            entry = self.cache.get_entry(key)
            if entry is not None:
                return _timestamp(entry.get("created"))
        when, read = self._created(reference)
        if key is not None and read:
            stated = when.isoformat().replace("+00:00", "Z") if when is not None else None
            self.cache.put_entry(key, {"created": stated}, CREATED_FRESH_S)
        return when

    def _created(self, reference: str) -> tuple[dt.datetime | None, bool]:
        """(the config's ``created``, whether the config was read): a config read and verified
        that states no time is an answer too, kept like a time; trouble on the way is not."""
        got = self._get_manifest(reference)
        if got is None:
            return None, False
        ref, body, _, media = got
        deadline = Deadline(self.total_s)
        ep = self.client.endpoint(ref.domain)
        try:
            data = json.loads(body)
            if media in INDEX_TYPES or (isinstance(data, dict) and data.get("mediaType") in INDEX_TYPES):
                entry = _platform_entry(data)
                if entry is None:
                    return None, False
                reply = self.client.manifest(ep, ref.path, entry, "GET", deadline)
                if reply.status != 200 or sha256_digest(reply.body) != entry:
                    return None, False
                data = json.loads(reply.body)
            config = data["config"]["digest"]
            if not isinstance(config, str) or not is_digest(config):
                return None, False
            blob = self.client.request(
                ep, "GET", ep.url(f"/v2/{ref.path}/blobs/{config}"), ref.path, deadline,
                accept="application/json", cap=MANIFEST_CAP,
            )  # fmt: skip
        except (Blocked, Unreachable) as exc:
            log.info("cannot tell when %s was created: %s", reference, exc)
            return None, False
        except (ValueError, KeyError, TypeError, AttributeError):
            return None, False  # not the JSON a manifest is
        if blob.status != 200 or sha256_digest(blob.body) != config:
            return None, False
        try:
            stated = json.loads(blob.body).get("created")
        except (ValueError, AttributeError):
            stated = None  # not the JSON an image config is: no time, for good
        return _timestamp(stated), True

    def _get_manifest(self, reference: str) -> tuple[Reference, bytes, str | None, str | None] | None:
        try:
            ref = parse(reference)
            ep = self.client.endpoint(ref.domain)
            reply = self.client.manifest(
                ep, ref.path, ref.digest or ref.tag or "latest", "GET", Deadline(self.total_s)
            )
        except (ReferenceError, Blocked, Unreachable) as exc:
            log.info("cannot fetch the manifest of %s: %s", reference, exc)
            return None
        if reply.status != 200:
            return None
        return ref, reply.body, reply.digest(), reply.media_type()

    def _scope(self, domain: str) -> str:
        host = self.config.host(domain)
        user = host.credentials.username if host and host.credentials else ""
        return f"{host.endpoint if host else ''}\0{user}"

    def _key(self, ref: Reference) -> str:
        return ResultCache.key(str(ref), self._scope(ref.domain))

    def _entry_key(self, kind: str, ref: Reference) -> str:
        """Tag lists are keyed by repository, digests by reference."""
        return ResultCache.entry_key(kind, ref.name if kind == "tags" else str(ref), self._scope(ref.domain))


def _aged(res: Resolution) -> Resolution:
    """A cached answer, marked with its age (from when it was asked) so reports can say
    "cached, N s old": a not-found answer may be minutes older than the push that fixed it."""
    try:
        asked = dt.datetime.fromisoformat((res.evidence.checked_at or "").replace("Z", "+00:00"))
    except ValueError:
        return res
    age = max(0, int((dt.datetime.now(dt.UTC) - asked).total_seconds()))
    return dataclasses.replace(res, evidence=dataclasses.replace(res.evidence, cached_age_s=age))


def _platform_entry(index: dict[str, object]) -> str | None:
    """The digest of an index's linux/amd64 manifest, else of its first real platform's."""
    found: list[tuple[bool, str]] = []
    for entry in index.get("manifests") or []:  # type: ignore[attr-defined]
        if not isinstance(entry, dict) or not is_digest(str(entry.get("digest", ""))):
            continue
        raw = entry.get("platform")
        plat: dict[str, object] = raw if isinstance(raw, dict) else {}
        if plat.get("os") == "unknown":  # attestations
            continue
        found.append((plat.get("os") == "linux" and plat.get("architecture") == "amd64", entry["digest"]))
    best = [d for amd64, d in found if amd64] or [d for _, d in found]
    return best[0] if best else None


def _timestamp(value: object) -> dt.datetime | None:
    """An RFC 3339 time as Go writes it (nanoseconds, ``Z``), in UTC; None if it is not one."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", value)
    if m is None:
        return None
    text = m.group(1) + (f".{m.group(2)[:6]}" if m.group(2) else "") + m.group(3).replace("Z", "+00:00")
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    except ValueError:
        return None
