"""The worker process: ``pullable worker`` (or :func:`main`) starts a huey consumer, which runs
each job through :func:`bot.jobs.queue.execute`, plus a reaper thread that puts jobs whose lease
ran out (a worker killed mid-job) back in the queue.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence

from bot.jobs import app
from bot.jobs.queue import Queue
from bot.settings import Settings

log = logging.getLogger(__name__)


def _reaper(queue: Queue, stop: threading.Event) -> None:
    while True:
        try:
            queue.reap()
        except Exception:
            log.exception("reaper failed; retrying")
        if stop.wait(queue.settings.reap_interval):
            return


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pullable worker``: consume until SIGINT/SIGTERM."""
    del argv  # everything comes from the environment, as for the web process
    settings = Settings.from_env()
    logging.basicConfig(
        level=settings.log_level.upper() if settings.log_level != "trace" else "DEBUG",
        format="%(asctime)s %(levelname)s %(name)s [pid %(process)d] %(message)s",
    )
    app.start()
    queue = Queue(settings)
    stop = threading.Event()
    threading.Thread(target=_reaper, args=(queue, stop), daemon=True, name="reaper").start()
    consumer = queue.huey.create_consumer(
        workers=settings.worker_threads,
        worker_type="thread",
        periodic=True,
        max_delay=float(os.environ.get("PULLABLE_POLL_MAX", "2")),
        check_worker_health=True,
    )
    log.info("worker %d consuming (%s)", os.getpid(), "redis" if settings.redis_url else "sqlite")
    try:
        consumer.run()
    finally:
        stop.set()
    return 0
