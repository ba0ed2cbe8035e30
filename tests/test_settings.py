"""The App's settings: one absolute data directory, log levels gunicorn understands, start-up
checks, and an ``.env.example`` that loads in a shell exactly as the README says."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError
from tests.support.artifacts import ROOT
from tests.support.webhooks import app_key


def test_data_dir_defaults_to_one_absolute_directory_wherever_a_process_starts(tmp_path: Path):
    home = tmp_path / "home"
    assert Settings.from_env({"HOME": str(home)}).data_dir == home / ".local" / "share" / "pullable"
    xdg = tmp_path / "xdg"
    assert Settings.from_env({"HOME": str(home), "XDG_DATA_HOME": str(xdg)}).data_dir == xdg / "pullable"


def test_a_relative_data_dir_is_made_absolute_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    d = Settings.from_env({"PULLABLE_DATA_DIR": "data"}).data_dir
    assert d.is_absolute() and d == tmp_path / "data"


@pytest.mark.parametrize(
    ("given", "python"),
    [("warn", "WARNING"), ("fatal", "CRITICAL"), ("trace", "DEBUG"), ("INFO", "INFO"), ("error", "ERROR")],
)
def test_log_levels_are_the_ones_gunicorn_and_logging_know(given: str, python: str):
    assert Settings.from_env({"LOG_LEVEL": given}).python_log_level == python


@pytest.mark.parametrize(
    ("env", "word"),
    [
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"PULLABLE_PUBLIC_URL": "pullable.example.com"}, "PULLABLE_PUBLIC_URL"),
        ({"PULLABLE_REPORT_ONLY": "maybe"}, "PULLABLE_REPORT_ONLY"),
        ({"PULLABLE_TRUSTED_PROXIES": "one"}, "PULLABLE_TRUSTED_PROXIES"),
    ],
)
def test_bad_values_are_one_clear_error(env: dict[str, str], word: str):
    with pytest.raises(SettingsError, match=word):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("env", "word"),
    [
        ({}, "APP_ID is not set"),
        ({"APP_ID": "12"}, "PRIVATE_KEY"),
        ({"APP_ID": "12", "PRIVATE_KEY": "not a key"}, "PEM"),
        ({"APP_ID": "12", "PRIVATE_KEY_PATH": "/nonexistent/key.pem"}, "cannot read"),
        ({"APP_ID": "my-app", "PRIVATE_KEY": "x"}, "numeric"),
    ],
)
def test_the_app_needs_an_id_and_a_real_key(env: dict[str, str], word: str):
    with pytest.raises(SettingsError, match=word):
        Settings.from_env(env).require_app()


def test_a_key_with_escaped_newlines_passes():
    Settings.from_env({"APP_ID": "12", "PRIVATE_KEY": app_key().replace("\n", "\\n")}).require_app()


def test_env_example_loads_in_a_shell_as_the_readme_says(tmp_path: Path):
    """``cp .env.example .env; set -a; . ./.env; set +a`` -- in a directory with files, so an
    unquoted ``*`` would glob-expand -- gives every value as written, and the defaults."""
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    (tmp_path / "a-file").write_text("")
    script = "set -euo pipefail; set -a; . ./.env; set +a; env -0"
    clean = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home")}
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=clean, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode()
    env = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    assert env["PULLABLE_SCHEDULE"] == "17 3 * * *"
    assert env["LOG_LEVEL"] == "info" and env["WEBHOOK_PATH"] == "/api/github/webhooks"
    s = Settings.from_env(env)
    assert s.schedule == "17 3 * * *" and s.data_dir == tmp_path / "home" / ".local" / "share" / "pullable"
    assert s.report_only is False and s.trusted_proxies == 0 and s.log_format == "text"
    assert "PROMETHEUS_MULTIPROC_DIR" not in env  # an empty value would switch prometheus-client on


SECRET = "whsec-0123456789abcdefghij"
KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----"
REDIS = "redis://:redis-password-1@cache.internal:6379/0"


def test_repr_and_str_hide_the_webhook_secret_the_private_key_and_urls_with_passwords():
    s = Settings.from_env({"WEBHOOK_SECRET": SECRET, "PRIVATE_KEY": KEY, "APP_ID": "42", "REDIS_URL": REDIS})
    for shown in (repr(s), str(s), f"{s!r}"):
        assert SECRET not in shown
        assert "BEGIN RSA" not in shown and "MIIEabc" not in shown
        assert "redis-password-1" not in shown
        assert "app_id='42'" in shown  # the rest stays readable
    assert s.webhook_secret == SECRET and s.private_key_pem().startswith("-----BEGIN")
