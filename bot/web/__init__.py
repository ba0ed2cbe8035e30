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
import re
from collections.abc import Sequence
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from bot import metrics
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
            job = q.accept(delivery, event, action, payload, signed)
        except Exception:
            log.exception("could not record delivery %s", delivery)
            return answer(event, "error", 503, error="queue unavailable; redeliver later")
        if job is None:
            return answer(event, "duplicate", 200)
        return answer(event, "accepted", 202, job=job.id)

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        try:
            q.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
            return jsonify(ok=False, error=f"queue unreachable: {type(exc).__name__}"), 503
        return jsonify(ok=True), 200

    @app.get("/metrics")
    def metrics_view() -> Response:
        return Response(metrics.render(q.journal.counts), mimetype="text/plain; version=0.0.4")

    from bot.web.setup import blueprint

    app.register_blueprint(blueprint)
    return app


def serve(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pullable serve``: gunicorn on HOST:PORT (default 127.0.0.1:3000)."""
    from gunicorn.app.base import BaseApplication

    from bot.web.worker import THREADS, WORKERS

    del argv
    settings = Settings.from_env()
    settings.require_webhook_secret()  # fail here, not in a forked gunicorn worker

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{settings.host}:{settings.port}")
            self.cfg.set("workers", WORKERS)
            self.cfg.set("threads", THREADS)  # slow clients each hold one, for a bounded time
            self.cfg.set("worker_class", "bot.web.worker.IntakeWorker")
            self.cfg.set("loglevel", settings.log_level if settings.log_level != "trace" else "debug")

        def load(self) -> Flask:
            return create_app(settings)

    _Server().run()
    return 0
