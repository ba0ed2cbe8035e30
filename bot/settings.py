"""The App's settings, read once from the environment (Probot's variable names where they exist).

Everything the web process and the worker need is here, so ``.env.example`` can list it all and a
missing or weak value fails at start-up, not on the first delivery.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MIN_SECRET_CHARS = 20
DEFAULT_API_URL = "https://api.github.com"
DEFAULT_SCHEDULE = "17 3 * * *"  # daily; an odd minute so installations do not all hit GitHub at :00


class SettingsError(RuntimeError):
    """A setting is missing or unsafe; the process must not start."""


@dataclass(frozen=True)
class Settings:
    # secrets are left out of repr: settings end up in log lines and tracebacks
    webhook_secret: str = field(default="", repr=False)
    app_id: str = ""
    private_key: str = field(default="", repr=False)
    private_key_path: str = ""
    github_api_url: str = DEFAULT_API_URL
    gh_org: str = ""
    webhook_path: str = "/api/github/webhooks"
    webhook_proxy_url: str = field(default="", repr=False)  # a smee.io channel: it reads deliveries
    host: str = "127.0.0.1"
    port: int = 3000
    redis_url: str = field(default="", repr=False)  # may carry a password
    log_level: str = "info"
    data_dir: Path = Path("data")
    schedule: str = DEFAULT_SCHEDULE
    config: str = ""
    job_lease: float = 120.0  # seconds a worker holds a job without renewing its lease
    reap_interval: float = 30.0
    worker_threads: int = 2
    max_attempts: int = 5
    retry_base: float = 10.0  # first retry delay; doubles per attempt, capped at 15 minutes
    requeue_after: float = 900.0  # a queued job older than this gets its queue message re-sent
    max_file_bytes: int = 32 << 20  # larger files are reported as skipped (bot.scan.MAX_FILE_BYTES)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the environment (``os.environ`` by default); unknown or empty values keep defaults."""
        e = os.environ if env is None else env

        def get(name: str, default: str = "") -> str:
            return (e.get(name) or default).strip()

        def number(name: str, default: str, kind: type[int] | type[float] = int) -> Any:
            value = get(name, default)
            try:
                return kind(value)
            except ValueError:
                what = "a whole number" if kind is int else "a number"
                raise SettingsError(f"{name}={value!r} is not {what}") from None

        return cls(
            webhook_secret=e.get("WEBHOOK_SECRET", ""),
            app_id=get("APP_ID"),
            private_key=e.get("PRIVATE_KEY", ""),
            private_key_path=get("PRIVATE_KEY_PATH"),
            github_api_url=get("GITHUB_API_URL", DEFAULT_API_URL).rstrip("/"),
            gh_org=get("GH_ORG"),
            webhook_path=get("WEBHOOK_PATH", "/api/github/webhooks"),
            webhook_proxy_url=get("WEBHOOK_PROXY_URL"),
            host=get("HOST", "127.0.0.1"),
            port=number("PORT", "3000"),
            redis_url=get("REDIS_URL"),
            log_level=get("LOG_LEVEL", "info").lower(),
            data_dir=Path(get("PULLABLE_DATA_DIR", "data")),
            schedule=get("PULLABLE_SCHEDULE", DEFAULT_SCHEDULE),
            config=get("PULLABLE_CONFIG"),
            job_lease=number("PULLABLE_JOB_LEASE", "120", float),
            reap_interval=number("PULLABLE_REAP_INTERVAL", "30", float),
            worker_threads=number("PULLABLE_WORKER_THREADS", "2"),
            max_attempts=number("PULLABLE_MAX_ATTEMPTS", "5"),
            retry_base=number("PULLABLE_RETRY_BASE", "10", float),
            requeue_after=number("PULLABLE_REQUEUE_AFTER", "900", float),
            max_file_bytes=number("PULLABLE_MAX_FILE_BYTES", str(32 << 20)),
        )

    def require_webhook_secret(self) -> str:
        """An empty key is a MAC anyone can compute, so a weak secret stops the web process."""
        s = self.webhook_secret
        if len(s) < MIN_SECRET_CHARS or s.strip() != s:
            raise SettingsError(
                f"WEBHOOK_SECRET must be set to at least {MIN_SECRET_CHARS} characters "
                "(use the one GitHub shows for the App; generate with `openssl rand -hex 32`)"
            )
        return s

    @property
    def github_url(self) -> str:
        """The web host for a REST API root: api.github.com -> github.com, GHES /api/v3 -> host."""
        parts = urlsplit(self.github_api_url)
        if parts.netloc == "api.github.com":
            return "https://github.com"
        return f"{parts.scheme}://{parts.netloc}"

    def private_key_pem(self) -> str:
        """PRIVATE_KEY (PEM text, ``\\n`` escapes allowed) wins over PRIVATE_KEY_PATH, as in Probot."""
        if self.private_key:
            return self.private_key.replace("\\n", "\n")
        if self.private_key_path:
            return Path(self.private_key_path).read_text()
        return ""
