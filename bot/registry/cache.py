"""Registry answers cached with a TTL, in memory and in a store shared by processes.

The shared store is Redis when ``REDIS_URL`` is set, else SQLite at
``$PULLABLE_DATA_DIR/registry-cache.sqlite3`` (default ``$XDG_DATA_HOME/pullable``, i.e.
``~/.local/share/pullable``). Keys hash the reference together with the endpoint and the
configured username, so one installation's credentials never answer for another's. Transient
answers (unreachable, rate-limited, blocked) are kept in memory for one run only. A broken store
costs speed, never correctness: its errors are logged and treated as misses.

Besides check results the store keeps what the rules ask for (issue 17): a repository's tag list
and a reference's verified manifest digest, as JSON entries that are fresh for ``FRESH_S`` and
kept ``KEEP_S`` with the registry's ``ETag``, so that a stale one is revalidated with
``If-None-Match`` (a 304 costs no body) instead of fetched again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from bot.model import Evidence, Resolution, Status

log = logging.getLogger(__name__)

OK_TTL_S = 1800.0  # tags move (latest, floating minors): half an hour
NEGATIVE_TTL_S = 300.0  # missing / private answers: someone may be pushing right now
TRANSIENT_TTL_S = 60.0  # memory only
FRESH_S = OK_TTL_S  # tag lists and pinned digests: as fresh as an ok check
KEEP_S = 86400.0  # ...and kept a day past that for conditional revalidation
_TRANSIENT = frozenset({Status.UNREACHABLE, Status.RATE_LIMITED, Status.BLOCKED, Status.UNCHECKED})
_PREFIX = "pullable:registry:v1:"


class Store(Protocol):
    """A shared key/value store with expiry."""

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """Values of the keys that exist and have not expired."""
        ...

    def set_many(self, items: Mapping[str, str], ttl: float) -> None:
        """Write all items with one expiry (one transaction / pipeline)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class MemoryStore:
    """A per-process store (tests, ``--no-cache``-like runs)."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """Unexpired values."""
        now = time.time()
        with self._lock:
            hits = {k: self._data.get(k) for k in keys}
        return {k: hit[0] for k, hit in hits.items() if hit is not None and hit[1] > now}

    def set_many(self, items: Mapping[str, str], ttl: float) -> None:
        """Store with expiry."""
        with self._lock:
            for k, v in items.items():
                self._data[k] = (v, time.time() + ttl)

    def close(self) -> None:
        """Nothing to release."""


class SQLiteStore:
    """One table in a WAL-mode SQLite file; safe for several processes and threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=5, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS registry_cache (key TEXT PRIMARY KEY, value TEXT, expires REAL)"
            )

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """Unexpired values (expired rows are left for the next write to prune)."""
        keys = list(keys)
        out: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, value FROM registry_cache WHERE key IN ({marks}) AND expires > ?",  # noqa: S608
                    [*chunk, time.time()],
                )
                out.update(rows)
        return out

    def set_many(self, items: Mapping[str, str], ttl: float) -> None:
        """Upsert in one transaction and prune expired rows."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO registry_cache (key, value, expires) VALUES (?, ?, ?)",
                [(k, v, now + ttl) for k, v in items.items()],
            )
            self._db.execute("DELETE FROM registry_cache WHERE expires <= ?", (now,))
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()


class RedisStore:
    """Redis ``MGET`` / pipelined ``SET EX``."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """Values that exist (Redis expires the rest)."""
        keys = list(keys)
        if not keys:
            return {}
        values = self._redis.mget(keys)
        return {
            k: v.decode() if isinstance(v, bytes) else str(v)
            for k, v in zip(keys, values, strict=True)
            if v is not None
        }

    def set_many(self, items: Mapping[str, str], ttl: float) -> None:
        """One pipeline."""
        pipe = self._redis.pipeline(transaction=False)
        for k, v in items.items():
            pipe.set(k, v, ex=max(1, int(ttl)))
        pipe.execute()

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()


def data_dir() -> Path:
    """``PULLABLE_DATA_DIR``, else ``$XDG_DATA_HOME/pullable``, else ``~/.local/share/pullable``."""
    if os.environ.get("PULLABLE_DATA_DIR"):
        return Path(os.environ["PULLABLE_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pullable"


def default_store() -> Store:
    """Redis when ``REDIS_URL`` is set, SQLite in :func:`data_dir` otherwise."""
    url = os.environ.get("REDIS_URL")
    if url:
        return RedisStore(url)
    return SQLiteStore(data_dir() / "registry-cache.sqlite3")


def encode(res: Resolution) -> str:
    """JSON for the store."""
    e = res.evidence
    return json.dumps(
        {
            "reference": res.reference,
            "status": res.status.value,
            "evidence": {
                "http_status": e.http_status,
                "error_code": e.error_code,
                "digest": e.digest,
                "media_type": e.media_type,
                "checked_at": e.checked_at,
                "detail": e.detail,
                "platforms": list(e.platforms),
            },
        }
    )


def decode(text: str) -> Resolution | None:
    """A Resolution from the store, or None for anything malformed."""
    try:
        data = json.loads(text)
        ev = data["evidence"]
        return Resolution(
            data["reference"],
            Status(data["status"]),
            Evidence(
                http_status=ev["http_status"],
                error_code=ev["error_code"],
                digest=ev["digest"],
                media_type=ev["media_type"],
                checked_at=ev["checked_at"],
                detail=ev["detail"],
                platforms=tuple(ev["platforms"]),
            ),
        )
    except (ValueError, KeyError, TypeError):
        return None


class ResultCache:
    """Memory in front of a shared store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._memory: dict[str, tuple[Resolution, float]] = {}
        self._lock = threading.Lock()
        self._warned = False

    @staticmethod
    def key(reference: str, scope: str) -> str:
        """Hash of reference and who asks where (endpoint, username)."""
        return _PREFIX + hashlib.sha256(f"{reference}\0{scope}".encode()).hexdigest()

    def get_many(self, keys: Iterable[str]) -> dict[str, Resolution]:
        """Memory hits first, then one round trip to the store for the rest."""
        now = time.monotonic()
        out: dict[str, Resolution] = {}
        missing: list[str] = []
        with self._lock:
            for k in keys:
                hit = self._memory.get(k)
                if hit and hit[1] > now:
                    out[k] = hit[0]
                else:
                    missing.append(k)
        if missing:
            try:
                found = self.store.get_many(missing)
            except Exception as exc:  # noqa: BLE001 - a cache must never fail a check
                self._warn(exc)
                found = {}
            for k, text in found.items():
                res = decode(text)
                if res is not None:
                    out[k] = res
                    self._remember(k, res)
        return out

    def put_many(self, items: Mapping[str, Resolution]) -> None:
        """Remember in memory; persist what is not transient, grouped by TTL."""
        groups: dict[float, dict[str, str]] = {}
        for k, res in items.items():
            self._remember(k, res)
            if res.status not in _TRANSIENT:
                groups.setdefault(_ttl(res.status), {})[k] = encode(res)
        for ttl, group in groups.items():
            try:
                self.store.set_many(group, ttl)
            except Exception as exc:  # noqa: BLE001 - a cache must never fail a check
                self._warn(exc)

    @staticmethod
    def entry_key(kind: str, name: str, scope: str) -> str:
        """Key of a JSON entry (``kind``: tags, digest) for ``name`` asked as ``scope``."""
        return f"{_PREFIX}{kind}:" + hashlib.sha256(f"{name}\0{scope}".encode()).hexdigest()

    def get_entry(self, key: str) -> dict[str, object] | None:
        """A JSON entry from the store (stale ones included: see ``fresh``), or None."""
        try:
            text = self.store.get_many([key]).get(key)
        except Exception as exc:  # noqa: BLE001 - a cache must never fail a lookup
            self._warn(exc)
            return None
        try:
            value = json.loads(text) if text is not None else None
        except ValueError:
            return None
        return value if isinstance(value, dict) and isinstance(value.get("fresh"), float | int) else None

    def put_entry(self, key: str, value: dict[str, object], fresh_s: float = FRESH_S) -> dict[str, object]:
        """Store ``value`` fresh for ``fresh_s`` and kept for revalidation; returns what was stored."""
        value = {**value, "fresh": time.time() + fresh_s}
        try:
            self.store.set_many({key: json.dumps(value)}, fresh_s + KEEP_S)
        except Exception as exc:  # noqa: BLE001 - a cache must never fail a lookup
            self._warn(exc)
        return value

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def _remember(self, key: str, res: Resolution) -> None:
        with self._lock:
            self._memory[key] = (res, time.monotonic() + _ttl(res.status))

    def _warn(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            log.warning("registry cache store unavailable, continuing without it: %s", type(exc).__name__)


def _ttl(status: Status) -> float:
    if status is Status.OK:
        return OK_TTL_S
    return TRANSIENT_TTL_S if status in _TRANSIENT else NEGATIVE_TTL_S
