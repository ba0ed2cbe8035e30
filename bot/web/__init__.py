"""Intake: verify, de-duplicate, record, answer. Nothing here talks to GitHub or a registry.

GitHub gives up on a delivery after 10 s and never retries by itself, so the request path does only
local work: an HMAC over the raw bytes (before anything is parsed), a size cap that also holds for
chunked bodies (Werkzeug silently truncates those at ``MAX_CONTENT_LENGTH``), one journal write
and one queue write. The worker does the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from bot import logs, metrics
from bot.jobs import app as jobs_app
from bot.jobs.queue import Queue
from bot.jobs.router import Router
from bot.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY = 25 * 1024 * 1024  # GitHub does not send larger payloads
_SIGNATURE = re.compile(rb"sha256=[0-9a-f]{64}")
_DELIVERY = re.compile(r"[A-Za-z0-9-]{1,100}")
_EVENT = re.compile(r"[a-z_]{1,64}")


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """GitHub's ``X-Hub-Signature-256`` check: exact lower-case ``sha256=<hex>``, constant time.
    Odd headers (sha1, upper case, non-ASCII, huge) are simply a mismatch."""
    if not header:
        return False
    got = header.encode("ascii", errors="replace")
    expected = b"sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    return bool(_SIGNATURE.fullmatch(got)) and hmac.compare_digest(expected, got)


def create_app(
    settings: Settings | None = None, queue: Queue | None = None, routes: Router = jobs_app.ROUTER
) -> Flask:
    """The WSGI app (gunicorn: ``'bot.web:create_app()'``). Refuses to build without a strong
    ``WEBHOOK_SECRET``."""
    settings = settings or Settings.from_env()
    secret = settings.require_webhook_secret()
    jobs_app.start()
    q = queue or Queue(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY + 1
    app.extensions["pullable.queue"] = q
    app.extensions["pullable.settings"] = settings
    _behind_proxies(app, settings)

    def answer(event: str, result: str, status: int, **extra: Any) -> tuple[Response, int]:
        metrics.DELIVERIES.labels(event, result).inc()
        return jsonify(result=result, **extra), status

    @app.post(settings.webhook_path)
    def webhook() -> tuple[Response, int]:
        event = request.headers.get("X-GitHub-Event", "")
        event_label = event if _EVENT.fullmatch(event) else "invalid"
        if (request.content_length or 0) > MAX_BODY:
            return answer(event_label, "too_large", 413)
        try:
            body = request.get_data(cache=True)
        except RequestEntityTooLarge:
            return answer(event_label, "too_large", 413)
        if len(body) > MAX_BODY:  # a chunked body cut at MAX_CONTENT_LENGTH
            return answer(event_label, "too_large", 413)
        sig = request.headers.get("X-Hub-Signature-256", "")
        if not signature_ok(secret, body, sig):
            return answer(event_label, "unauthorized", 401)
        if request.mimetype != "application/json":
            return answer(event_label, "unsupported_media_type", 415)
        delivery = request.headers.get("X-GitHub-Delivery", "")
        if not _EVENT.fullmatch(event) or not _DELIVERY.fullmatch(delivery):
            return answer(event_label, "bad_request", 400, error="missing or invalid event/delivery headers")
        if not settings.app_id:  # nothing could act on it: GitHub shows the failure, redeliver later
            return answer(event, "not_set_up", 503, error="APP_ID is not set on this server")
        try:
            payload = json.loads(body)
        except ValueError:
            return answer(event, "bad_request", 400, error="body is not JSON")
        if not isinstance(payload, dict):
            return answer(event, "bad_request", 400, error="body is not a JSON object")
        if event == "ping":
            return answer(event, "pong", 200, zen=str(payload.get("zen", ""))[:200])
        action = payload.get("action") if isinstance(payload.get("action"), str) else None
        if not routes.handles(event, action):
            return answer(event, "ignored", 200)
        # the delivery id header is not signed: a captured body replayed under fresh ids is
        # recognised by what the signature covers
        signed = "signed-" + hashlib.sha256(body + b"\n" + sig.encode()).hexdigest()
        try:
            with logs.context(delivery=delivery):
                job = q.accept(delivery, event, action, payload, signed)
        except Exception:
            log.exception("could not record delivery %s", delivery)
            return answer(event, "error", 503, error="queue unavailable; redeliver later")
        if job is None:
            return answer(event, "duplicate", 200)
        return answer(event, "accepted", 202, job=job.id)

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        body = health(q, settings)
        return jsonify(body), 200 if body["ok"] else 503

    @app.get("/livez")
    def livez() -> tuple[Response, int]:
        """The process answers (a liveness probe: restarting the web would not fix a queue)."""
        return jsonify(ok=True), 200

    @app.get("/metrics")
    def metrics_view() -> Response:
        return Response(
            metrics.render(q.journal.counts, lambda: _queue_figures(q)), mimetype="text/plain; version=0.0.4"
        )

    from bot.web.setup import blueprint

    app.register_blueprint(blueprint)
    return app


def _behind_proxies(app: Flask, settings: Settings) -> None:
    """Believe ``X-Forwarded-*`` only from the ``PULLABLE_TRUSTED_PROXIES`` nearest proxies
    (werkzeug's ProxyFix); with none, a client could otherwise choose the URLs /setup builds."""
    n = settings.trusted_proxies
    if n > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)  # type: ignore[method-assign]


def _queue_figures(q: Queue, now: float | None = None) -> dict[str, float | None]:
    now = time.time() if now is None else now
    waiting, oldest = q.journal.waiting(now)
    beat = q.journal.last_worker_beat()
    age = None if beat is None else max(0.0, now - beat)
    return {"waiting": waiting, "oldest": oldest, "heartbeat_age": age}


def health(q: Queue, settings: Settings, now: float | None = None) -> dict[str, Any]:
    """``/healthz``: the queue answers, and due jobs are not left waiting by absent workers.

    Unhealthy (503) when the queue is unreachable, or when jobs are due and no worker has sent
    a heartbeat for ``PULLABLE_STALL_AFTER`` seconds while the oldest has waited that long:
    a web process and workers that do not share a queue (or no worker at all) show here."""
    try:
        q.ping()
        figures = _queue_figures(q, now)
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        return {"ok": False, "error": f"queue unreachable: {type(exc).__name__}"}
    waiting, oldest, beat = figures["waiting"] or 0, figures["oldest"] or 0.0, figures["heartbeat_age"]
    body: dict[str, Any] = {
        "ok": True, "waiting": int(waiting), "oldest_waiting_seconds": round(oldest, 1),
        "worker_heartbeat_age_seconds": None if beat is None else round(beat, 1),
    }  # fmt: skip
    limit = settings.stall_after
    stalled = waiting > 0 and oldest >= limit and (beat is None or beat >= limit)
    if stalled:
        body["ok"] = False
        seen = (
            "no worker has ever taken jobs from this queue"
            if beat is None
            else (f"no worker heartbeat for {beat:.0f} s")
        )
        body["error"] = f"{int(waiting)} job(s) waiting up to {oldest:.0f} s and {seen}" + (
            "" if settings.redis_url else f" (queue: {settings.data_dir / 'pullable.db'})"
        )
    return body


def serve(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pullable serve``: gunicorn on HOST:PORT (default 127.0.0.1:3000)."""
    from gunicorn.app.base import BaseApplication

    from bot.web.worker import THREADS, WORKERS

    del argv
    settings = Settings.from_env()
    settings.require_webhook_secret()  # fail here, not in a forked gunicorn worker
    logs.setup(settings.python_log_level, settings.log_format, settings.secrets())
    if not settings.app_id:
        log.warning("APP_ID is not set: serving /setup only; webhook deliveries are refused (503)")
    else:
        settings.require_app()
    os.environ["PULLABLE_DATA_DIR"] = str(settings.data_dir)  # the registry cache: the same, absolute
    metrics.share_across_processes(settings.data_dir)

    def child_exit(server: object, worker: Any) -> None:
        metrics.process_exited(worker.pid)

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{settings.host}:{settings.port}")
            self.cfg.set("workers", WORKERS)
            self.cfg.set("threads", THREADS)  # slow clients each hold one, for a bounded time
            self.cfg.set("worker_class", "bot.web.worker.IntakeWorker")
            self.cfg.set("loglevel", settings.python_log_level.lower())
            logging_config = logs.gunicorn_config(settings.python_log_level, settings.log_format)
            self.cfg.set("logconfig_dict", logging_config)
            self.cfg.set("child_exit", child_exit)

        def load(self) -> Flask:
            return create_app(settings)

    _Server().run()
    return 0
