"""Log lines of the App: JSON lines carrying delivery, repository and job, secrets removed."""

from __future__ import annotations

import json
import logging

from bot import logs


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise RuntimeError("token ghs_" + "a" * 36)
        except RuntimeError:
            import sys

            info = sys.exc_info()
    return logging.LogRecord("bot.jobs.queue", logging.WARNING, __file__, 1, msg, args, info)


def test_json_lines_carry_the_context_and_redact_secrets():
    secret = "a-webhook-secret-of-40-characters-long!!"
    logs.add_secrets([secret])
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    with logs.context(delivery="d-1", repo="octo-org/demo"), logs.context(job="j-9"):
        jwt = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjEyM30.c2lnbmF0dXJl"
        line = logs.JsonFormatter().format(_record("secret %s key %s jwt %s", secret, pem, jwt, exc=True))
    out = json.loads(line)
    assert (out["delivery"], out["repo"], out["job"]) == ("d-1", "octo-org/demo", "j-9")
    assert out["level"] == "warning"
    assert secret not in line and "MIIEvQ" not in line and "eyJhbGci" not in line and "ghs_aaaa" not in line
    assert out["msg"].count(logs.REDACTED) == 3 and logs.REDACTED in out["exc"]
    # outside the context, no fields
    assert "job" not in json.loads(logs.JsonFormatter().format(_record("plain")))


def test_text_lines_carry_the_context_too():
    with logs.context(job="j-1", repo="o/r"):
        text = logs.TextFormatter().format(_record("hello"))
    assert " repo=o/r job=j-1 hello" in text and "WARNING bot.jobs.queue" in text
