"""``GET /setup``: create the GitHub App from ``app.yml`` through GitHub's manifest flow, as Probot
does. Only served while ``APP_ID`` is unset, so a running App never shows or makes credentials.

While it is unset, anyone who reaches the server could otherwise use the page: register an App of
their own whose credentials we would then save, or replace the operator's state with every GET.
So the page needs a one-time token the web process writes to ``{PULLABLE_DATA_DIR}/setup-token``
(shared by every worker process) and logs at start, as ``/setup?token=...``; the state made for it
is kept until used; a successful exchange removes both.

1. ``/setup?token=...`` renders a form that POSTs the manifest to ``{GITHUB_URL}/settings/apps/new``
   (your personal account) or ``{GITHUB_URL}/organizations/<org>/settings/apps/new`` (``GH_ORG``,
   or the organisation chosen on the page) with a one-time ``state``. The App is private
   (``public: false``), and GitHub lets a private App be installed only on the account that owns
   it: to install it on an organisation, it is registered under that organisation. Its URLs come
   from ``PULLABLE_PUBLIC_URL`` (else the request, whose ``X-Forwarded-*`` headers count only
   behind ``PULLABLE_TRUSTED_PROXIES`` proxies);
2. GitHub redirects to ``/setup/callback?code=...&state=...``;
3. the callback exchanges the code (``POST /app-manifests/{code}/conversions``, no auth) and
   shows the values to put in the environment; they are also written to
   ``{PULLABLE_DATA_DIR}/github-app.env`` (mode 0600).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
from importlib import resources
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from markupsafe import escape

from bot.settings import Settings

blueprint = Blueprint("setup", __name__)
log = logging.getLogger(__name__)

_CODE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_ORG = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?")  # GitHub's login rule


def manifest_text() -> str:
    """``app.yml`` in the working directory (Probot's rule), else the one shipped in the package
    (the top-level ``app.yml`` of the source tree links to it)."""
    here = Path.cwd() / "app.yml"
    if here.is_file():
        return here.read_text(encoding="utf-8")
    return resources.files("bot.web").joinpath("app.yml").read_text(encoding="utf-8")


def manifest(settings: Settings, base_url: str) -> dict[str, Any]:
    """The JSON GitHub receives: app.yml with this deployment's URLs filled in."""
    from ruamel.yaml import YAML

    data = dict(YAML(typ="safe", pure=True).load(manifest_text()))
    base = base_url.rstrip("/")
    hook = dict(data.get("hook_attributes") or {})
    hook["url"] = settings.webhook_proxy_url or base + settings.webhook_path
    data["hook_attributes"] = hook
    data["redirect_url"] = base + "/setup/callback"
    data.setdefault("url", base)
    return data


def _settings() -> Settings:
    return current_app.extensions["pullable.settings"]


def _state_file(settings: Settings) -> Path:
    return settings.data_dir / "setup-state"


def _token_file(settings: Settings) -> Path:
    return settings.data_dir / "setup-token"


def _secret_file(path: Path) -> str:
    """The value in ``path``, made once (mode 0600) by whichever process gets there first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = secrets.token_urlsafe(24)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


@blueprint.record_once
def _announce(state: BlueprintSetupState) -> None:
    """While the App is not registered, make the setup token and say where to use it."""
    settings: Settings = state.app.extensions["pullable.settings"]
    if settings.app_id:
        return
    token = _secret_file(_token_file(settings))
    log.warning(
        "Pullable is not registered yet: open /setup?token=%s on this server to create the App", token
    )


def _token_ok(settings: Settings) -> bool:
    path = _token_file(settings)
    expected = path.read_text().strip() if path.is_file() else ""
    given = request.args.get("token", "")
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())


def _page(title: str, body: str, status: int = 200) -> Response:
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body style='font-family:sans-serif;max-width:50em;margin:2em auto'>"
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )
    return Response(html, status=status, mimetype="text/html", headers={"Cache-Control": "no-store"})


def public_url(settings: Settings) -> str:
    """Where GitHub reaches this App: ``PULLABLE_PUBLIC_URL``, else the URL this page was asked
    on (forwarded headers count only from trusted proxies: see ``bot.web._behind_proxies``)."""
    return settings.public_url or request.url_root.rstrip("/")


def new_app_url(settings: Settings, org: str, state: str) -> str:
    """GitHub's manifest-flow form: under the organisation ``org``, or the personal account."""
    owner = f"/organizations/{org}" if org else ""
    return f"{settings.github_url}{owner}/settings/apps/new?state={state}"


@blueprint.get("/setup")
def setup() -> Response:
    settings = _settings()
    if settings.app_id:
        return _page("Pullable is set up", "<p>APP_ID is set; the setup page is closed.</p>", 404)
    if not _token_ok(settings):
        return _page(
            "Setup needs its link",
            "<p>Open the <code>/setup?token=...</code> link from the server's log.</p>",
            403,
        )
    token = request.args.get("token", "")
    org = (request.args.get("org", settings.gh_org)).strip()
    if org and not _ORG.fullmatch(org):
        return _page("Not an organisation name", f"<p>{escape(org)!s} is not a GitHub login.</p>", 400)
    state = _secret_file(_state_file(settings))  # kept until used: another GET does not replace it
    base = public_url(settings)
    m = manifest(settings, base)
    under = f" under {escape(org)}" if org else ""
    if org:
        owner = (
            f"<p>Owner: the organisation <b>{escape(org)}</b>. The App will be installable on"
            f" {escape(org)} (you need to be one of its owners to register it).</p>"
        )
        other = (
            f"<p><a href='/setup?org=&amp;token={escape(token)}'>Register it under your personal"
            " account instead</a></p>"
        )
    else:
        owner = (
            "<p>Owner: <b>your personal account</b>. The App is private (<code>public: false</code>"
            " in app.yml), so GitHub will let you install it only on your own account.</p>"
        )
        other = (
            "<p>To install it on an organisation, register it under that organisation:</p>"
            "<form action='/setup' method='get'>"
            f"<input type='hidden' name='token' value='{escape(token)}'><label>Organisation <input name='org'"
            " pattern='[A-Za-z0-9-]{1,39}' required></label> <button type='submit'>Use this"
            " organisation</button></form>"
        )
    body = (
        "<p>Register Pullable as a GitHub App from <code>app.yml</code>. GitHub will send you back"
        " here with the App's credentials.</p>"
        f"<p>Public URL: <code>{escape(base)}</code> (webhooks to"
        f" <code>{escape(m['hook_attributes']['url'])}</code>)."
        + ("" if settings.public_url else " Not what GitHub can reach? Set <code>PULLABLE_PUBLIC_URL</code>.")
        + "</p>"
        + owner
        + f"<form action='{escape(new_app_url(settings, org, state))}' method='post'>"
        f"<input type='hidden' name='manifest' value='{escape(json.dumps(m))}'>"
        f"<button type='submit'>Register GitHub App{under}</button></form>" + other
    )
    return _page("Set up Pullable", body)


@blueprint.get("/setup/callback")
def callback() -> Response:
    import httpx

    settings = _settings()
    if settings.app_id:
        return _page("Pullable is set up", "<p>APP_ID is set; the setup page is closed.</p>", 404)
    code, state = request.args.get("code", ""), request.args.get("state", "")
    sf = _state_file(settings)
    expected = sf.read_text() if sf.is_file() else ""
    if (
        not expected
        or not hmac.compare_digest(expected.encode(), state.encode())
        or not _CODE.fullmatch(code)
    ):
        return _page("Setup link expired", "<p>Start again from <a href='/setup'>/setup</a>.</p>", 400)
    url = f"{settings.github_api_url}/app-manifests/{code}/conversions"
    try:
        r = httpx.post(url, headers={"Accept": "application/vnd.github+json"}, timeout=30)
    except httpx.HTTPError as exc:
        return _page("GitHub did not answer", f"<p>{escape(type(exc).__name__)}</p>", 502)
    if r.status_code != 201:
        return _page("GitHub refused the code", f"<p>HTTP {r.status_code}. Start again.</p>", 502)
    for used in (sf, _token_file(settings)):  # single use: setup is done
        used.unlink(missing_ok=True)
    app = r.json()
    values = {
        "APP_ID": str(app["id"]),
        "WEBHOOK_SECRET": app["webhook_secret"],
        "PRIVATE_KEY": app["pem"].strip().replace("\n", "\\n"),
        "GITHUB_CLIENT_ID": app.get("client_id", ""),
        "GITHUB_CLIENT_SECRET": app.get("client_secret", ""),
    }
    env_text = "".join(f'{k}="{v}"\n' for k, v in values.items())
    saved = settings.data_dir / "github-app.env"
    fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(env_text)
    install = f"{app.get('html_url', '')}/installations/new"
    body = (
        f"<p>GitHub created the App <b>{escape(app.get('name', ''))}</b>. Put these values in the"
        f" environment of the web and worker processes (also saved to <code>{escape(str(saved))}</code>),"
        " restart, then install it:</p>"
        f"<pre>{escape(env_text)}</pre>"
        f"<p><a href='{escape(install)}'>Install the App on your repositories</a></p>"
    )
    return _page("Pullable is registered", body)
