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
# LOG_LEVEL words (Probot's, plus Python's) -> Python logging level names (gunicorn knows these too)
LOG_LEVELS = {
    "fatal": "critical", "critical": "critical", "error": "error", "warn": "warning",
    "warning": "warning", "info": "info", "debug": "debug", "trace": "debug",
}  # fmt: skip
LOG_FORMATS = ("text", "json")


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/pullable``, else ``~/.local/share/pullable``: absolute, so a web process
    and a worker started in different directories share one queue (and the registry cache)."""
    e = os.environ if env is None else env
    base = e.get("XDG_DATA_HOME") or ""
    if not base or not Path(base).is_absolute():
        home = e.get("HOME") or str(Path.home())
        base = str(Path(home) / ".local" / "share")
    return Path(base) / "pullable"


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
    log_format: str = "text"
    data_dir: Path = Path("data")  # from_env: PULLABLE_DATA_DIR, else default_data_dir()
    public_url: str = ""  # where GitHub reaches this App (PULLABLE_PUBLIC_URL); "" = as requested
    trusted_proxies: int = 0  # reverse proxies in front whose X-Forwarded-* headers are believed
    stall_after: float = 300.0  # jobs due this long with no worker heartbeat: /healthz says 503
    report_only: bool = False  # scan and keep the dashboard, open no pull requests
    metrics_port: int = 0  # a worker's own /metrics port (workers on other machines than the web)
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
            log_level=_choice(get("LOG_LEVEL", "info").lower(), "LOG_LEVEL", tuple(LOG_LEVELS)),
            log_format=_choice(get("LOG_FORMAT", "text").lower(), "LOG_FORMAT", LOG_FORMATS),
            data_dir=_data_dir(get("PULLABLE_DATA_DIR"), e),
            public_url=_public_url(get("PULLABLE_PUBLIC_URL")),
            trusted_proxies=number("PULLABLE_TRUSTED_PROXIES", "0"),
            stall_after=number("PULLABLE_STALL_AFTER", "300", float),
            report_only=_flag(get("PULLABLE_REPORT_ONLY"), "PULLABLE_REPORT_ONLY"),
            metrics_port=number("PULLABLE_METRICS_PORT", "0"),
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

    @property
    def python_log_level(self) -> str:
        """The level as Python's logging (and gunicorn) names it: ``warn`` -> ``WARNING``."""
        return LOG_LEVELS.get(self.log_level, "info").upper()

    def require_app(self) -> None:
        """What a worker (and a web process taking deliveries) needs to act as the App: APP_ID
        and a readable private key. One clear line instead of a traceback in every job."""
        if not self.app_id:
            raise SettingsError("APP_ID is not set (create the App on /setup, then set APP_ID, PRIVATE_KEY)")
        if not self.app_id.isdigit():
            raise SettingsError(f"APP_ID={self.app_id!r} is not the App's numeric id")
        try:
            pem = self.private_key_pem()
        except OSError as exc:
            where = self.private_key_path
            raise SettingsError(f"PRIVATE_KEY_PATH={where}: cannot read it: {exc.strerror}") from None
        if not pem.strip():
            raise SettingsError("PRIVATE_KEY (or PRIVATE_KEY_PATH) is not set: the App's key is needed")
        import jwt

        try:  # what the App does with it: sign its JWT (PyJWT, with cryptography underneath)
            jwt.encode({"iss": self.app_id}, pem, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError):
            raise SettingsError(
                "PRIVATE_KEY is not the App's PEM private key (-----BEGIN ... PRIVATE KEY-----)"
            ) from None

    def secrets(self) -> list[str]:
        """Values no log line may show (the logging filter redacts them)."""
        out = [self.webhook_secret, self.private_key, self.private_key.replace("\\n", "\n")]
        return [s for s in out if len(s) >= 8]

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


def _choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SettingsError(f"{name}={value!r} is not one of: {', '.join(allowed)}")
    return value


def _flag(value: str, name: str) -> bool:
    v = value.lower()
    if v in ("", "0", "false", "no", "off"):
        return False
    if v in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name}={value!r} is not true or false")


def _data_dir(value: str, env: Mapping[str, str]) -> Path:
    """An explicit PULLABLE_DATA_DIR is made absolute at once (so a ``cd`` later changes
    nothing); unset, the per-user default."""
    return Path(value).expanduser().absolute() if value else default_data_dir(env)


def _public_url(value: str) -> str:
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(
            f"PULLABLE_PUBLIC_URL={value!r} is not an http(s) URL such as https://pullable.example.com"
        )
    return value.rstrip("/")
