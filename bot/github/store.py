"""What the worker remembers between jobs so an unchanged repository costs next to nothing: ETags
of GET answers and scan results per blob. In memory, plus SQLite under ``PULLABLE_DATA_DIR`` when
given (so a restarted worker still revalidates instead of re-reading every repository).
"""

from __future__ import annotations

import pickle
import sqlite3
import threading
from pathlib import Path
from typing import Any

from bot.github.http import EtagStore

_MEMORY_ITEMS = 20_000


class Store:
    """A small key -> value cache; values are pickled in SQLite (written and read only by this
    process family, under the App's own data directory)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._lock = threading.Lock()
        self._memory: dict[str, Any] = {}
        self._db: sqlite3.Connection | None = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)")

    def get(self, key: str) -> Any:
        with self._lock:
            if key in self._memory:
                return self._memory[key]
            if self._db is None:
                return None
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            value = pickle.loads(row[0])  # noqa: S301 - our own cache file, see the class docstring
        except Exception:  # noqa: BLE001 - a cache written by another version reads as a miss
            return None
        self._remember(key, value)
        return value

    def put(self, key: str, value: Any) -> None:
        self._remember(key, value)
        if self._db is not None:
            blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            with self._lock:
                self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, blob))

    def _remember(self, key: str, value: Any) -> None:
        with self._lock:
            self._memory.pop(key, None)
            self._memory[key] = value
            while len(self._memory) > _MEMORY_ITEMS:
                self._memory.pop(next(iter(self._memory)))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class StoredEtags(EtagStore):
    """ETags kept in a :class:`Store` (persistent when the store is)."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    def get(self, key: str) -> tuple[str, str] | None:
        got = self.store.get("etag:" + key)
        return None if got is None else (str(got[0]), str(got[1]))

    def put(self, key: str, etag: str, body: str) -> None:
        self.store.put("etag:" + key, (etag, body))
