"""The App's log lines: one per record on stderr, as text or JSON lines (``LOG_FORMAT=json``, as
Probot), each carrying the delivery, repository and job it belongs to, with secrets removed.

Why context variables: a job's log lines come from every layer (GitHub client, registry, writers),
none of which knows the job. The queue and the webhook intake set :data:`DELIVERY`, :data:`REPO`
and :data:`JOB` around their work (:func:`context`); a formatter reads them for every record.
Redaction happens in the formatter, on the whole formatted line (tracebacks included): the App's
own secrets (webhook secret, private key), GitHub tokens and JWTs, PEM blocks.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

DELIVERY: contextvars.ContextVar[str | None] = contextvars.ContextVar("pullable_delivery", default=None)
REPO: contextvars.ContextVar[str | None] = contextvars.ContextVar("pullable_repo", default=None)
JOB: contextvars.ContextVar[str | None] = contextvars.ContextVar("pullable_job", default=None)
REDACTED = "[redacted]"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [pid %(process)d]%(context)s %(message)s"

_SECRETS: set[str] = set()
_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
    re.compile(r"\b(gh[pousr]_|github_pat_)[A-Za-z0-9_]{20,}"),  # GitHub tokens
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"),  # JWTs (the App's)
    re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{16,}"),
)


def add_secrets(values: Iterable[str]) -> None:
    """Values never to show (settings' secrets); short ones are ignored (they would mask words)."""
    _SECRETS.update(v for v in values if len(v) >= 8)


def redact(text: str) -> str:
    for s in sorted(_SECRETS, key=len, reverse=True):
        if s in text:
            text = text.replace(s, REDACTED)
    for p in _PATTERNS:
        text = p.sub(REDACTED, text)
    return text


@contextlib.contextmanager
def context(
    *, delivery: str | None = None, repo: str | None = None, job: str | None = None
) -> Iterator[None]:
    """Tag every log record made inside with these values (unset ones keep the outer value)."""
    tokens = [
        (var, var.set(value))
        for var, value in ((DELIVERY, delivery), (REPO, repo), (JOB, job))
        if value is not None
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def _fields() -> dict[str, str]:
    return {k: v for k, v in (("delivery", DELIVERY.get()), ("repo", REPO.get()), ("job", JOB.get())) if v}


class TextFormatter(logging.Formatter):
    """``time level logger [pid] delivery=... repo=... job=... message``, redacted."""

    def __init__(self, fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        ctx = _fields()
        record.context = "".join(f" {k}={v}" for k, v in ctx.items())
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, pid, msg, delivery/repo/job, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": redact(record.getMessage()),
            **_fields(),
        }
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def setup(level: str, fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    """Root logging for a process of the App: one stderr handler with the chosen format."""
    add_secrets(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())


def gunicorn_config(level: str, fmt: str = "text") -> dict[str, Any]:
    """A ``logconfig_dict`` sending gunicorn's error and access logs through the same formatter."""
    handler = {"class": "logging.StreamHandler", "formatter": "pullable", "stream": "ext://sys.stderr"}
    factory = "bot.logs.JsonFormatter" if fmt == "json" else "bot.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"pullable": {"()": factory}},
        "handlers": {"stderr": handler},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": level.upper(), "handlers": ["stderr"], "propagate": False},
        },
    }
