"""Parse untrusted files where a crash costs one file, not the process (security.md §2).

libyaml is C: a parser bug (there have been several: deep nesting segfaults) kills whatever
process runs it, and in the App that is a worker holding other jobs. :class:`Sandbox` runs
:func:`bot.scan.scan_file` in a small pool of worker processes, each with an address-space limit
(``RLIMIT_AS``) and a CPU budget per file (``RLIMIT_CPU``, raised before each file), no core
dumps, and a wall-clock limit kept by the parent. A worker that dies (a signal, the CPU budget,
an exit) costs exactly the file it was reading: that file gets a :class:`~bot.model.ScanError`
saying so, the worker is replaced, and the files queued behind it are scanned by the new one.

The same pool is how a large scan uses both cores: the parent walks, reads and claims files, and
hands them out in batches (:data:`BATCH_FILES` files or :data:`BATCH_BYTES` bytes), one result
message per file so the parent always knows which file a dead worker was on. A finder that reads
a sibling file (a chart's ``Chart.yaml``) asks the parent, which owns the repository (a checkout,
or GitHub's API with its blob cache and read tracking).

Workers are forked from the scanning process when it has one thread on Linux (the CLI), or come from a
``forkserver`` (fork is unsafe in the threaded App worker), started once per process with the
finders preloaded, so a new worker costs a fork, not an interpreter start.
Who contains what: the App's scans always go through a sandbox (``bot.jobs.reader``); the CLI's
``scan_tree`` uses one when the tree is big enough to pay for the start-up
(:data:`POOL_MIN_FILES`, :data:`POOL_MIN_BYTES`) or when asked (``contain=True``); single files
given on the command line and the edit verifier's re-scans of files already scanned run in
process.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import resource
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.model import ScanError

if TYPE_CHECKING:  # multiprocessing itself is imported when a pool starts (start-up of small scans)
    from multiprocessing.connection import Connection

BATCH_FILES = 64
BATCH_BYTES = 1 << 20
# Below both (claimed files, their bytes) a CLI scan stays in one process: the pool's start-up
# (a fork, ~20 ms; a forkserver in a threaded process, ~0.3 s) and handing every result back
# cost more than a second core saves there (bench/scan.py: 300 files are faster in process,
# 1,000 about even; the thresholds stay above that, as the gain there is a few hundredths).
POOL_MIN_FILES = 2_000
POOL_MIN_BYTES = 16 << 20


@dataclass(frozen=True)
class Limits:
    """Per-worker resource limits. ``memory_bytes`` bounds the address space (a 32 MiB file
    composes in well under it); ``cpu_seconds`` is per file; ``wall_seconds`` is per file too,
    counted by the parent while the worker is neither idle nor waiting for a read it asked for."""

    memory_bytes: int = 1 << 30
    cpu_seconds: int = 30
    wall_seconds: float = 90.0


Job = tuple[str, bytes | None, str]  # repository path, bytes (None: the worker reads them), finder


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    cur: Any  # shared memory: index of the job the worker is reading, -1 between batches
    batches: deque[list[tuple[int, str]]] = field(default_factory=deque)  # sent, not yet answered
    light: bool = False  # the last batch sent carries paths, not bytes
    seen: int = -1  # cur as last seen by the parent
    since: float = 0.0  # when the current file's clock started


def _context(preload: Sequence[str]) -> Any:
    """``fork`` from a process with one thread on Linux (the CLI: a worker costs milliseconds, and what
    the parent imported is already there); ``forkserver`` otherwise, as forking a threaded
    process (the App) can copy a lock some other thread holds. A forked worker's address-space
    limit counts what it inherits: a one-thread CLI process is about 45 MB of the 1 GiB."""
    import multiprocessing
    import sys
    import threading

    # Linux only: on macOS a forked child may die in system frameworks the parent touched
    # (why Python itself stopped forking there by default).
    if threading.active_count() == 1 and sys.platform.startswith("linux"):
        for name in preload:  # imported once here, not by every worker after the fork
            importlib.import_module(name)
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["bot.scan", "bot.scan.sandbox", *preload])
    return ctx


class Sandbox:
    """A pool of contained scan workers; use as a context manager (workers start lazily).

    What the workers run is handed in, never imported here (this module sits under
    :mod:`bot.scan`, which uses it): ``scan`` is :func:`bot.scan.scan_file`, ``result`` its
    result type (for the error of a file a worker died on), ``local`` the checkout reader
    (:class:`bot.scan.LocalRepo`) for workers given a ``root``; functions and classes cross
    to the workers by name, as pickle sends them.
    """

    def __init__(
        self,
        scan: Callable[..., Any],
        result: Callable[..., Any],
        local: Callable[..., Any],
        *,
        finders: Sequence[str],
        workers: int | None = None,
        limits: Limits | None = None,
        max_bytes: int = 1 << 40,
        root: str | None = None,
    ) -> None:
        self.scan, self.result, self.local = scan, result, local
        self.size = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))
        self.limits = limits or Limits()
        self.finders = tuple(finders)
        self.max_bytes = max_bytes
        self.root = root  # a checkout the workers read themselves (jobs without bytes)
        self._workers: list[_Worker] = []
        self.crashes = 0  # workers lost (and replaced) so far
        self.cpu: dict[int, float] = {}  # CPU seconds used, per worker process
        self.peak_rss = 0  # KiB, the largest worker

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for w in self._workers:
            with contextlib.suppress(OSError, ValueError):
                w.conn.send(None)
        for w in self._workers:
            w.proc.join(timeout=2)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            w.conn.close()
        self._workers = []

    def _start(self) -> _Worker:
        ctx = _context(self.finders)
        parent, child = ctx.Pipe()
        cur = ctx.RawValue("q", -1)
        lim = self.limits
        tools = (self.scan, self.result, self.local)
        proc = ctx.Process(
            target=_child,
            args=(
                child,
                cur,
                tools,
                self.finders,
                lim.memory_bytes,
                lim.cpu_seconds,
                self.max_bytes,
                self.root,
            ),
            daemon=True,
            name="pullable-scan",
        )
        proc.start()
        child.close()
        return _Worker(proc, parent, cur)

    def one(self, path: str, data: bytes, finder: str, repo: object) -> Any:
        """The result for one file, contained (one worker, synchronously)."""
        for _i, res in self.run([(path, data, finder)], repo):
            return res
        return self.result()  # pragma: no cover - run yields once per job

    def run(self, jobs: Iterable[Job], repo: object) -> Iterator[tuple[int, Any]]:
        """``(index, ScanResult)`` for every job, in completion order; jobs are pulled lazily
        (the caller may read files as workers free up). A job without bytes (``None``) is read
        by the worker itself from the sandbox's ``root``."""
        from multiprocessing.connection import wait

        source = enumerate(jobs)
        retry: deque[tuple[int, Job]] = deque()
        exhausted = False
        lookup: dict[int, Job] = {}

        def batch() -> list[tuple[int, Job]]:
            nonlocal exhausted
            out: list[tuple[int, Job]] = []
            size = 0
            while len(out) < BATCH_FILES and size < BATCH_BYTES:
                if retry:
                    item = retry.popleft()
                elif exhausted:
                    break
                else:
                    try:
                        item = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                out.append(item)
                size += len(item[1][1] or b"")
            return out

        while True:
            while len(self._workers) < self.size and (retry or not exhausted):
                self._workers.append(self._start())
            for w in self._workers:
                # A batch of bytes goes to an idle worker only (a pipe both ways full would
                # deadlock); a batch of paths is small, so a second one waits in the pipe.
                while len(w.batches) < (2 if w.light else 1):
                    todo = batch()
                    if not todo:
                        break
                    for i, job in todo:
                        lookup[i] = job
                    w.light = all(job[1] is None for _i, job in todo)
                    if not w.batches:
                        w.since = time.monotonic()
                    w.batches.append([(i, job[0]) for i, job in todo])
                    with contextlib.suppress(OSError, ValueError):  # a dead worker: its sentinel says so
                        w.conn.send([(i, *job) for i, job in todo])
                    if not w.light:
                        break
            busy = [w for w in self._workers if w.batches]
            if not busy:
                if exhausted and not retry:
                    return
                continue
            waits: list[Any] = [w.conn for w in busy] + [w.proc.sentinel for w in busy]
            ready = wait(waits, timeout=1.0)
            now = time.monotonic()
            for w in busy:
                dead = False
                if w.conn in ready or w.proc.sentinel in ready:
                    results: list[tuple[int, Any]] = []
                    dead = self._drain(w, repo, lookup, results)
                    yield from results
                if not dead and w.batches:
                    at = w.cur.value
                    if at != w.seen:
                        w.seen, w.since = at, now
                    elif now - w.since > self.limits.wall_seconds:
                        w.proc.kill()
                        w.proc.join()
                        dead = True
                if dead:
                    yield from self._bury(w, lookup, retry, self.result)

    def _drain(
        self, w: _Worker, repo: object, lookup: dict[int, Job], results: list[tuple[int, Any]]
    ) -> bool:
        """Handle every message ``w`` has sent; True when it is dead (its pipe closed)."""
        try:
            while w.conn.poll():
                msg = w.conn.recv()
                if msg[0] == "read":
                    _kind, method, arg = msg
                    fn = getattr(repo, method, None)
                    try:
                        value = fn(arg) if fn is not None else None
                    except Exception:  # noqa: BLE001 - a failed read is an absent file to the finder
                        value = None
                    w.conn.send(value)
                    w.since = time.monotonic()  # the parent's read is not the worker's time
                elif msg[0] == "done":
                    _kind, done, cpu, rss = msg
                    w.batches.popleft()
                    for i, res in done:
                        lookup.pop(i, None)
                        results.append((i, res))
                    self.cpu[w.proc.pid] = cpu
                    self.peak_rss = max(self.peak_rss, rss)
                    w.since = time.monotonic()
        except (EOFError, OSError):
            return True
        return not w.proc.is_alive()

    def _bury(
        self, w: _Worker, lookup: dict[int, Job], retry: deque[tuple[int, Job]], result: Any
    ) -> Iterator[tuple[int, Any]]:
        """A worker died: the file it was reading gets the error, the others it held are
        scanned again by another worker."""
        w.proc.join()
        code = w.proc.exitcode
        culprit = w.cur.value
        with contextlib.suppress(OSError):
            w.conn.close()
        self._workers.remove(w)
        self.crashes += 1
        held = [(i, path) for b in w.batches for i, path in b]
        for i, path in held:
            if i == culprit:
                job = lookup.pop(i)
                out = result(files=1, bytes=len(job[1] or b""))
                out.errors.append(ScanError(path, _death(code, self.limits)))
                yield i, out
        for i, _path in reversed(held):
            if i != culprit and i in lookup:
                retry.appendleft((i, lookup[i]))


def _death(code: int | None, limits: Limits) -> str:
    """Why a worker died, for the file it was reading."""
    if code is not None and code < 0:
        sig = signal.Signals(-code)
        if sig is signal.SIGXCPU:
            return f"skipped: parsing took more than {limits.cpu_seconds} s of CPU"
        if sig is signal.SIGKILL:
            return f"skipped: parsing took more than {limits.wall_seconds:g} s, or ran out of memory"
        return f"skipped: the parser crashed ({sig.name}); the file was not read"
    return f"skipped: the parser process exited ({code}); the file was not read"


# --- the worker side ------------------------------------------------------------------------


class _Remote:
    """The repository as the worker sees it: every read is asked of the parent."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _ask(self, method: str, arg: str) -> Any:
        self._conn.send(("read", method, arg))
        return self._conn.recv()

    def read_text(self, path: str) -> str | None:
        value = self._ask("read_text", path)
        return value if isinstance(value, str) else None

    def read_bytes(self, path: str) -> bytes | None:
        value = self._ask("read_bytes", path)
        return value if isinstance(value, bytes) else None

    def listdir(self, path: str) -> list[str]:
        value = self._ask("listdir", path)
        return list(value) if isinstance(value, list) else []


def _child(  # noqa: PLR0917 - the arguments multiprocessing hands a worker
    conn: Connection,
    cur: Any,
    tools: tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]],
    names: Sequence[str],
    memory: int,
    cpu: int,
    max_bytes: int,
    root: str | None,
) -> None:
    """Worker main: limits first, then scan batches until told to stop (None) or orphaned.
    ``cur`` (shared memory) always holds the job being read, so a crash names its file."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    scan_file, empty, local = tools
    mods = {n: importlib.import_module(n) for n in names}
    repo: Any = local(root, max_bytes) if root is not None else _Remote(conn)
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        done = []
        if root is not None:  # the parent's walk found these as plain files under root
            repo.walked(path for _i, path, sent, _name in batch if sent is None)
        for i, path, sent, name in batch:
            cur.value = i
            if cpu:
                used = resource.getrusage(resource.RUSAGE_SELF)
                soft = int(used.ru_utime + used.ru_stime) + 1 + cpu
                hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
                resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
            data = sent if sent is not None else repo.read_bytes(path)
            res = scan_file(path, data, repo, mods[name], max_bytes) if data is not None else empty()
            done.append((i, res))
        cur.value = -1
        usage = resource.getrusage(resource.RUSAGE_SELF)
        conn.send(("done", done, usage.ru_utime + usage.ru_stime, usage.ru_maxrss))
