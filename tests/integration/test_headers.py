"""Security headers, CSP, the self-hosted SDK, CSRF coverage and error pages."""

from __future__ import annotations

import base64
import hashlib
import re

from flask import render_template

from tests.builders import give_inquiry, make_user
from tests.pages import csrf_from, sign_in
from webapp.config import ProductionConfig
from webapp.extensions import csrf
from webapp.verification import VerifyPage


def directives(header: str) -> dict[str, str]:
    return {
        part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else ""
        for part in (p.strip() for p in header.split(";"))
    }


def test_continue_page_csp_and_nonces(app, client, emulator):
    user = make_user(app)
    give_inquiry(app, emulator, user, "pending")
    sign_in(client)
    first, second = client.get("/verify"), client.get("/verify")
    csp = directives(first.headers["Content-Security-Policy"])
    script_src = csp["script-src"]
    assert "'strict-dynamic'" in script_src and "'nonce-" in script_src
    for bad in ("'unsafe-inline'", "'unsafe-eval'", "*"):
        assert bad not in script_src.split()
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["frame-src"] == emulator.origin
    nonce = re.search(r"'nonce-([^']+)'", script_src).group(1)
    assert nonce != re.search(r"'nonce-([^']+)'", second.headers["Content-Security-Policy"]).group(1)
    html = first.get_data(as_text=True)
    scripts = re.findall(r"<script[^>]*>", html)
    assert len(scripts) == 4 and all(f'nonce="{nonce}"' in tag for tag in scripts)


def test_headers_on_every_kind_of_response(make_app, emulator):
    app = make_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom with a secret persona_sandbox_emulator_key")

    client = app.test_client()
    make_user(app)
    for response in (client.get("/"), client.get("/nope"), client.get("/boom"), client.get("/login")):
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert "charset=utf-8" in headers["Content-Type"]
        policy = headers["Permissions-Policy"]
        assert f'camera=(self "{emulator.origin}")' in policy and "geolocation=()" in policy
        assert "Cross-Origin-Embedder-Policy" not in headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    error = client.get("/boom")
    assert error.status_code == 500
    body = error.get_data(as_text=True)
    assert "Reference:" in body and "kaboom" not in body and "Traceback" not in body


def test_production_config_is_strict():
    assert ProductionConfig.SESSION_COOKIE_SECURE and ProductionConfig.HSTS_ENABLED
    assert ProductionConfig.SESSION_COOKIE_NAME.startswith("__Host-")


def test_hsts_when_enabled(make_app):
    client = make_app(HSTS_ENABLED=True).test_client()
    assert client.get("/").headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_the_sdk_is_served_from_our_origin_and_matches_its_pinned_hash(app, client):
    response = client.get(f"/verify/sdk/persona-{app.config['PERSONA_SDK_VERSION']}.js")
    assert response.status_code == 200
    digest = base64.b64encode(hashlib.sha384(response.data).digest()).decode()
    assert digest == app.config["PERSONA_SDK_SHA384"]
    assert "immutable" in response.headers["Cache-Control"]
    assert client.get("/verify/sdk/persona-1.0.0.js").status_code == 404


def test_a_tampered_sdk_file_is_not_served(make_app, tmp_path):
    fake = tmp_path / "persona.js"
    fake.write_text("alert('not persona')")
    app = make_app(PERSONA_SDK_PATH=str(fake))
    assert app.test_client().get(f"/verify/sdk/persona-{app.config['PERSONA_SDK_VERSION']}.js").status_code == 404


def test_the_cdn_mode_loads_the_pinned_file_with_sri_and_allows_only_that_origin(make_app, emulator):
    cdn = "https://cdn.withpersona.com/dist/persona-v5.9.0.js"
    app = make_app(PERSONA_SDK_CDN_URL=cdn, PERSONA_SDK_CDN_INTEGRITY="sha384-pinned")
    client = app.test_client()
    make_user(app)
    sign_in(client)
    page = client.get("/verify")
    html = page.get_data(as_text=True)
    assert re.search(rf'<script[^>]+src="{re.escape(cdn)}"[^>]+integrity="sha384-pinned"', html), html[:2000]
    script_src = next(d for d in page.headers["Content-Security-Policy"].split("; ") if d.startswith("script-src"))
    assert script_src.endswith(" https://cdn.withpersona.com")
    assert client.get(f"/verify/sdk/persona-{app.config['PERSONA_SDK_VERSION']}.js").status_code == 404


def test_token_is_json_escaped_inside_the_data_block(app):
    from webapp.models import Inquiry

    evil = "</script><script>alert(1)</script>"
    with app.test_request_context("/verify"):
        page = VerifyPage("continue", Inquiry(persona_id="inq_abc", status="pending"), session_token=evil)
        html = render_template("verify/continue.html", page=page)
    assert evil not in html
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in html


def test_post_routes_refuse_get_and_only_the_webhook_is_csrf_exempt(app, client):
    rules = list(app.url_map.iter_rules())
    readable = {r.rule for r in rules if r.methods and "GET" in r.methods}
    post_only = [r for r in rules if r.methods and "POST" in r.methods and r.rule not in readable]
    assert post_only
    for rule in post_only:
        if "<" in rule.rule:
            continue
        assert client.get(rule.rule).status_code == 405, rule.rule
    exempt = set(csrf._exempt_views) | set(csrf._exempt_blueprints)
    assert exempt <= {"webapp.views.webhooks.receive"}


def test_cross_site_writes_are_refused_but_webhooks_are_not(app, client):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    refused = client.post(
        "/login",
        data={"csrf_token": token, "email": "a@b.c", "password": "x"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert refused.status_code == 403
    same = client.post(
        "/login",
        data={"csrf_token": token, "email": "a@b.c", "password": "x"},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert same.status_code == 200
    hook = client.post(
        "/webhooks/persona", data=b"{}", headers={"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}
    )
    assert hook.status_code == 400  # judged on its signature, not its origin


def test_production_cookies_are_host_prefixed_secure_httponly_lax(make_app):
    from webapp.config import ProductionConfig

    settings = {k: v for k, v in vars(ProductionConfig).items() if k.isupper() and k != "SQLALCHEMY_DATABASE_URI"}
    settings.update(SECRET_KEY="x" * 40, TESTING=True)
    app = make_app(**settings)
    cookie = app.test_client().get("/login", base_url="https://localhost").headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    assert "Domain" not in cookie
    assert "Strict-Transport-Security" in app.test_client().get("/", base_url="https://localhost").headers
