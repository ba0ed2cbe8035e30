"""``GET /setup``: the manifest form built from app.yml, and the code exchange against a loopback
stand-in for ``POST /app-manifests/{code}/conversions``."""

from __future__ import annotations

import html
import json
import re
import stat
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.settings import Settings
from bot.web import create_app
from tests.support.webhooks import settings_for

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\ndef==\n-----END RSA PRIVATE KEY-----\n"


@pytest.fixture
def github(tmp_path: Path) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A loopback server answering the manifest conversion as GitHub documents it."""
    calls: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls.append((self.path, self.headers.get("Authorization", "")))
            m = re.fullmatch(r"/api/v3/app-manifests/([^/]+)/conversions", self.path)
            if not m or m.group(1) != "good-code":
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps({
                "id": 4242, "slug": "pullable-test", "name": "Pullable <test>", "client_id": "Iv1.abc",
                "client_secret": "cs-123", "webhook_secret": "whs-456-" + "x" * 24, "pem": PEM,
                "html_url": "https://github.example/apps/pullable-test", "owner": {"login": "octo"},
            }).encode()  # fmt: skip
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v3", calls
    finally:
        server.shutdown()
        server.server_close()


def _settings(tmp_path: Path, api: str, **kw: str) -> Settings:
    return replace(settings_for(tmp_path / "data", app_id=""), github_api_url=api, **kw)


def _token(settings_or_client) -> str:
    """The one-time setup token the web process wrote (and logged) at start."""
    app = settings_or_client.application
    return (app.extensions["pullable.settings"].data_dir / "setup-token").read_text().strip()


def _get_setup(client):
    return client.get(f"/setup?token={_token(client)}")


def _form(text: str) -> tuple[str, dict]:
    action = html.unescape(re.search(r"<form action='([^']+)'", text).group(1))
    manifest = json.loads(html.unescape(re.search(r"name='manifest' value='([^']+)'", text).group(1)))
    return action, manifest


def test_setup_page_posts_the_manifest_from_app_yml(tmp_path: Path):
    settings = _settings(tmp_path, "https://ghe.example/api/v3", gh_org="acme")
    client = create_app(settings).test_client()
    r = client.get(f"/setup?token={_token(client)}", base_url="https://pullable.example")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    action, manifest = _form(r.text)
    assert re.fullmatch(
        r"https://ghe\.example/organizations/acme/settings/apps/new\?state=[\w-]{20,}", action
    )
    assert manifest["hook_attributes"] == {
        "url": "https://pullable.example/api/github/webhooks",
        "active": True,
    }
    assert manifest["redirect_url"] == "https://pullable.example/setup/callback"
    assert manifest["default_permissions"] == {
        "contents": "write", "pull_requests": "write", "issues": "write", "checks": "write",
        "metadata": "read", "workflows": "write",
    }  # fmt: skip
    assert set(manifest["default_events"]) == {"push", "pull_request", "issue_comment"}
    assert manifest["public"] is False and manifest["name"] and manifest["url"]


def test_callback_exchanges_the_code_and_shows_the_credentials(tmp_path: Path, github):
    api, calls = github
    client = create_app(_settings(tmp_path, api)).test_client()
    action, _ = _form(_get_setup(client).text)
    state = action.split("state=")[1]
    r = client.get(f"/setup/callback?code=good-code&state={state}")
    assert r.status_code == 200, r.text
    assert calls == [("/api/v3/app-manifests/good-code/conversions", "")]  # no credentials sent
    text = html.unescape(r.text)
    assert 'APP_ID="4242"' in text and 'WEBHOOK_SECRET="whs-456-' in text
    assert 'PRIVATE_KEY="-----BEGIN RSA PRIVATE KEY-----\\nMIIEabc\\ndef==\\n' in text
    assert "https://github.example/apps/pullable-test/installations/new" in text
    assert "Pullable &lt;test&gt;" in r.text  # names from GitHub are escaped
    saved = tmp_path / "data" / "github-app.env"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and 'APP_ID="4242"' in saved.read_text()
    # the state is single-use
    assert client.get(f"/setup/callback?code=good-code&state={state}").status_code == 400


@pytest.mark.parametrize(
    "query", ["code=good-code&state=forged", "code=good-code", "code=../x&state={state}"]
)
def test_callback_refuses_a_bad_state_or_code(tmp_path: Path, github, query: str):
    api, calls = github
    client = create_app(_settings(tmp_path, api)).test_client()
    state = _form(_get_setup(client).text)[0].split("state=")[1]
    assert client.get("/setup/callback?" + query.format(state=state)).status_code == 400
    assert calls == []


def test_github_refusing_the_code_is_reported(tmp_path: Path, github):
    api, _ = github
    client = create_app(_settings(tmp_path, api)).test_client()
    state = _form(_get_setup(client).text)[0].split("state=")[1]
    assert client.get(f"/setup/callback?code=expired&state={state}").status_code == 502


def test_setup_needs_the_token_from_the_log_and_a_stranger_changes_nothing(tmp_path: Path, github, caplog):
    """Anyone who can reach the server while APP_ID is unset could otherwise register an App of
    their own through it (and have its credentials saved here) or keep replacing the operator's
    one-time state with every GET."""
    api, calls = github
    with caplog.at_level("WARNING"):
        client = create_app(_settings(tmp_path, api)).test_client()
    token = _token(client)
    assert f"/setup?token={token}" in caplog.text  # the operator finds the link in the log
    state = _form(_get_setup(client).text)[0].split("state=")[1]
    for stranger in ("/setup", "/setup?token=", "/setup?token=guess", f"/setup?token={token[:-1]}"):
        assert client.get(stranger).status_code == 403
    again = _form(_get_setup(client).text)[0].split("state=")[1]
    assert again == state  # a GET does not replace the state the operator is using
    assert client.get(f"/setup/callback?code=good-code&state={state}").status_code == 200
    assert client.get(f"/setup?token={token}").status_code == 403  # single use: done
    assert calls == [("/api/v3/app-manifests/good-code/conversions", "")]


def test_the_token_is_shared_by_every_worker_process(tmp_path: Path):
    settings = _settings(tmp_path, "https://ghe.example/api/v3")
    first, second = create_app(settings).test_client(), create_app(settings).test_client()
    assert _token(first) == _token(second)
    assert second.get(f"/setup?token={_token(first)}").status_code == 200


def test_setup_is_closed_once_the_app_exists(tmp_path: Path, github):
    api, calls = github
    client = create_app(_settings(tmp_path, api, app_id="4242")).test_client()
    assert client.get("/setup").status_code == 404
    assert client.get("/setup/callback?code=good-code&state=x").status_code == 404
    assert calls == []


def test_the_public_url_setting_builds_the_apps_urls_and_the_page_shows_it(tmp_path: Path):
    settings = _settings(tmp_path, "https://api.github.com", public_url="https://pullable.example.com")
    client = create_app(settings).test_client()
    r = client.get(f"/setup?token={_token(client)}", base_url="http://127.0.0.1:3000")
    _, manifest = _form(r.text)
    assert manifest["hook_attributes"]["url"] == "https://pullable.example.com/api/github/webhooks"
    assert manifest["redirect_url"] == "https://pullable.example.com/setup/callback"
    assert "127.0.0.1" not in json.dumps(manifest)
    assert "Public URL: <code>https://pullable.example.com</code>" in r.text


def test_the_page_says_who_owns_the_app_and_offers_an_organisation(tmp_path: Path):
    client = create_app(_settings(tmp_path, "https://api.github.com")).test_client()
    t = _token(client)
    personal = client.get(f"/setup?token={t}")
    action, _ = _form(personal.text)
    assert action.startswith("https://github.com/settings/apps/new?state=")
    assert "your personal account" in personal.text and "only on your own account" in personal.text
    assert "<form action='/setup' method='get'>" in personal.text and "name='org'" in personal.text
    chosen = client.get(f"/setup?token={t}&org=octo-org")
    action, manifest = _form(chosen.text)
    assert action.startswith("https://github.com/organizations/octo-org/settings/apps/new?state=")
    assert "the organisation <b>octo-org</b>" in chosen.text and manifest["public"] is False
    assert client.get(f"/setup?token={t}&org=../evil").status_code == 400
    # GH_ORG preselects the organisation; the page can still go back to the personal account
    org = create_app(_settings(tmp_path, "https://api.github.com", gh_org="acme")).test_client()
    assert "/organizations/acme/" in _form(org.get(f"/setup?token={_token(org)}").text)[0]
    back = org.get(f"/setup?token={_token(org)}&org=").text
    assert _form(back)[0].startswith("https://github.com/settings/apps/new")
