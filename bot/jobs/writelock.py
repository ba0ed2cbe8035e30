"""One writer per installation at a time (GitHub: "make requests serially", and content creation
has its own secondary limit per account).

The journal already runs one job per repository; this lock spans the repositories of one
installation: a thread lock within the worker, an ``flock`` on a file under the data directory
across worker processes of one machine, and a Redis lock (with a lease, so a killed worker
cannot hold it forever) when the queue is on Redis and workers run on many machines.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings

LEASE = 600.0  # seconds a Redis lock outlives a worker that died holding it

_guard = threading.Lock()
_locks: dict[int, threading.Lock] = {}


@contextlib.contextmanager
def installation_writes(settings: Settings, installation_id: int) -> Iterator[None]:
    with _guard:
        local = _locks.setdefault(installation_id, threading.Lock())
    with local, _file_lock(Path(settings.data_dir) / "locks" / f"installation-{installation_id}.lock"):
        if settings.redis_url:
            import redis

            client = redis.Redis.from_url(settings.redis_url)
            lock = client.lock(f"pullable:writes:{installation_id}", timeout=LEASE, blocking_timeout=LEASE)
            if not lock.acquire():
                raise TimeoutError(f"installation {installation_id}: another worker holds the write lock")
            try:
                yield
            finally:
                with contextlib.suppress(redis.exceptions.LockError):
                    lock.release()
                client.close()
        else:
            yield


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
