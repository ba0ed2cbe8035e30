"""Settings: what they print (issue 11 item 12): a repr in a log line or a traceback must not
carry the App's secrets."""

from __future__ import annotations

from bot.settings import Settings

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
