"""The worker process: ``pullable worker`` (or :func:`main`) starts a huey consumer, which runs
each job through :func:`bot.jobs.queue.execute`, plus a reaper thread that puts jobs whose lease
ran out (a worker killed mid-job) back in the queue and records the worker's heartbeat (which
``/healthz`` reads to tell "jobs wait" from "jobs wait and nobody takes them").

It refuses to start without what every job needs (``APP_ID``, a private key): one line at start,
not a traceback in every job.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence

from bot import logs, metrics
from bot.jobs import app, inventory
from bot.jobs.queue import Queue
from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def _reaper(queue: Queue, stop: threading.Event) -> None:
    who = f"{socket.gethostname()}:{os.getpid()}"
    while True:
        try:
            queue.journal.worker_beat(who)
            queue.reap()
        except Exception:
            log.exception("reaper failed; retrying")
        if stop.wait(min(queue.settings.reap_interval, queue.settings.stall_after / 3)):
            return


def check_operator_config(settings: Settings) -> None:
    """The operator configuration and its rules, read once at start: a mistake there is one line
    now rather than a failure in every job."""
    from bot.registry import ConfigError, Registry
    from bot.rules import RuleError

    try:
        Registry.from_file(settings.config or None).close()
        inventory.rule_table(settings)
    except (ConfigError, RuleError, OSError) as exc:
        raise SettingsError(f"PULLABLE_CONFIG={settings.config}: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pullable worker``: consume until SIGINT/SIGTERM."""
    del argv  # everything comes from the environment, as for the web process
    settings = Settings.from_env()
    settings.require_app()
    check_operator_config(settings)
    logs.setup(settings.python_log_level, settings.log_format, settings.secrets())
    os.environ["PULLABLE_DATA_DIR"] = str(settings.data_dir)  # the registry cache: the same, absolute
    metrics.share_across_processes(settings.data_dir)
    if settings.metrics_port:
        metrics.serve_http(settings.host, settings.metrics_port)
        log.info("worker metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
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
    where = "redis" if settings.redis_url else f"sqlite: {settings.data_dir / 'pullable.db'}"
    log.info("worker %d consuming (%s)", os.getpid(), where)
    try:
        consumer.run()
    finally:
        stop.set()
        metrics.process_exited(os.getpid())
    return 0
