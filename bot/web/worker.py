"""The gunicorn worker for intake: gthread, with a deadline on every connection's turn.

gunicorn's threaded worker hands a connection to a thread once its first byte arrives, and the
thread then reads headers and body with blocking reads and no overall limit: 24 clients
trickling a byte now and then held every thread, and GitHub's deliveries timed out at its 10 s.
Here each turn of a connection (wait for data, read the request, answer) has a wall-clock budget;
past it, a watchdog shuts the socket down, the blocked read returns, and the thread is free. With
many threads (cheap: they only wait on sockets) a slow client costs one thread for at most
:data:`TURN_BUDGET_S`, and intake keeps acknowledging. A buffering proxy in front (nginx's default
``proxy_request_buffering on``) removes even that; the README says so.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import socket
import threading
import time
from typing import Any

from gunicorn.workers.gthread import DEFAULT_WORKER_DATA_TIMEOUT, ThreadWorker

log = logging.getLogger(__name__)

# gunicorn waits up to DEFAULT_WORKER_DATA_TIMEOUT for a first byte; GitHub sends a whole delivery
# at once and gives up after 10 s, so nobody legitimate needs longer than that on top.
TURN_BUDGET_S = DEFAULT_WORKER_DATA_TIMEOUT + 10.0
THREADS = 64  # per worker process
WORKERS = 2


class Watchdog:
    """Shuts sockets down at their deadline unless disarmed first (one thread, a heap)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, socket.socket] = {}
        self._tickets = itertools.count()
        self._thread: threading.Thread | None = None
        self.fired = 0

    def arm(self, sock: socket.socket, seconds: float) -> int:
        """Shut ``sock`` down in ``seconds`` unless :meth:`disarm` is called with the ticket."""
        with self._cond:
            ticket = next(self._tickets)
            self._armed[ticket] = sock
            heapq.heappush(self._heap, (time.monotonic() + seconds, ticket))
            if self._thread is None:  # started lazily: in the forked worker, not the arbiter
                self._thread = threading.Thread(target=self._run, name="intake-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
            return ticket

    def disarm(self, ticket: int) -> None:
        with self._cond:
            self._armed.pop(ticket, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)  # disarmed: dropped lazily
                if not self._heap:
                    self._cond.wait()
                    continue
                at, ticket = self._heap[0]
                left = at - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                sock = self._armed.pop(ticket)
                self.fired += 1
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked reading from it
                log.info("closed a connection that took longer than %.0f s", TURN_BUDGET_S)


_WATCHDOG = Watchdog()


class IntakeWorker(ThreadWorker):
    """``gthread`` whose every connection turn ends within :data:`TURN_BUDGET_S`."""

    def handle(self, conn: Any) -> Any:
        ticket = _WATCHDOG.arm(conn.sock, TURN_BUDGET_S)
        try:
            return super().handle(conn)
        finally:
            _WATCHDOG.disarm(ticket)
