"""The continue-verification app. `create_app()` is the table of contents."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets

from flask import Flask, g, has_app_context, redirect, request, url_for
from flask_login import current_user
from jinja2 import StrictUndefined
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from . import accounts, cli, errors, security
from .addresses import mask_address
from .config import CONFIGS, ROOT, Config
from .extensions import csrf, db, limiter, login_manager, migrate
from .persona import PersonaClient
from .recovery import Background
from .serving import install_werkzeug_filter

log = logging.getLogger(__name__)

# Endpoints a session opened from a recovery link may reach: verification only.
RECOVERY_SCOPE_ENDPOINTS = frozenset(
    {
        "static",
        "verify.show",
        "verify.session_token",
        "verify.complete",
        "verify.restart",
        "verify.sdk",
        "auth.logout",
        "recovery.send_link_from_verify",
        "recovery.landing",
        "recovery.landing_with_token",
        "recovery.redeem",
        "main.health",
        "main.ready",
        "identity.not_you",
    }
)
# Endpoints an account whose address is not confirmed yet may reach: the way to confirm it.
UNCONFIRMED_SCOPE_ENDPOINTS = frozenset(
    {
        "static",
        "main.index",
        "main.health",
        "main.ready",
        "auth.login",
        "auth.logout",
        "identity.confirm_email",
        "identity.confirm_with_token",
        "identity.confirm_email_redeem",
        "identity.confirm_email_resend",
        "identity.not_you",
    }
)


def create_app(config_class: type[Config] | None = None) -> Flask:
    config_class = config_class or CONFIGS[os.environ.get("APP_ENV", "development")]
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.config.from_object(config_class)
    config_class.check()
    os.makedirs(app.instance_path, exist_ok=True)
    app.jinja_env.undefined = StrictUndefined
    if app.config["TRUSTED_PROXY_HOPS"]:
        hops = app.config["TRUSTED_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    configure_logging(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue your verification."
    login_manager.user_loader(accounts.load_session_user)
    login_manager.unauthorized_handler(_unauthorized)

    app.extensions["persona"] = make_persona_client(app)
    app.extensions["token_cipher"] = security.TokenCipher(app.config["TOKEN_ENCRYPTION_KEY"], app.config["SECRET_KEY"])
    app.extensions["persona_sdk_file"] = _checked_sdk_file(app)
    app.extensions["background"] = Background(app)

    security.init_app(app)
    app.before_request(_request_id)
    app.before_request(_limit_recovery_sessions)
    app.before_request(_require_confirmed_email)
    app.after_request(_request_id_header)

    from .views import auth, identity, main, recovery, verify, webhooks

    app.register_blueprint(main.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(verify.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(recovery.bp)
    app.register_blueprint(identity.bp)

    errors.register(app)
    cli.register(app)
    app.jinja_env.globals["sdk_script"] = lambda: sdk_script(app)
    app.jinja_env.filters["masked"] = mask_address
    return app


def make_persona_client(app: Flask) -> PersonaClient:
    c = app.config
    return PersonaClient(
        c["PERSONA_API_BASE_URL"],
        c["PERSONA_API_KEY"] or "persona_sandbox_emulator_key",
        version=c["PERSONA_VERSION"],
        connect_timeout_seconds=c["PERSONA_CONNECT_TIMEOUT_SECONDS"],
        read_timeout_seconds=c["PERSONA_READ_TIMEOUT_SECONDS"],
        max_retries=c["PERSONA_MAX_RETRIES"],
        retry_after_cap_seconds=c["PERSONA_RETRY_AFTER_CAP_SECONDS"],
        unavailable_retry_after_seconds=c["PERSONA_UNAVAILABLE_RETRY_AFTER_SECONDS"],
        breaker_threshold=c["PERSONA_BREAKER_FAILURES"],
        breaker_cooldown_seconds=c["PERSONA_BREAKER_COOLDOWN_SECONDS"],
    )


def _checked_sdk_file(app: Flask) -> str | None:
    """The self-hosted SDK file, only when its SHA-384 is the pinned one."""
    path = app.config["PERSONA_SDK_PATH"]
    if app.config["PERSONA_SDK_CDN_URL"] or not os.path.exists(path):
        if not app.config["PERSONA_SDK_CDN_URL"]:
            log.error("Persona SDK not found at %s: run `npm ci`", path)
        return None
    with open(path, "rb") as fh:
        digest = base64.b64encode(hashlib.sha384(fh.read()).digest()).decode()
    if digest != app.config["PERSONA_SDK_SHA384"]:
        log.error("Persona SDK at %s does not match PERSONA_SDK_SHA384: not serving it", path)
        return None
    return path


def sdk_script(app: Flask) -> dict[str, str]:
    """`src` and `integrity` for the SDK's script tag."""
    if app.config["PERSONA_SDK_CDN_URL"]:
        return {
            "src": app.config["PERSONA_SDK_CDN_URL"],
            "integrity": app.config["PERSONA_SDK_CDN_INTEGRITY"],
            "crossorigin": "anonymous",
        }
    return {
        "src": url_for("verify.sdk", version=app.config["PERSONA_SDK_VERSION"]),
        "integrity": f"sha384-{app.config['PERSONA_SDK_SHA384']}",
        "crossorigin": "anonymous",
    }


class _OneLineFilter(logging.Filter):
    """CR/LF in logged values would forge log lines: escape them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                a.replace("\r", "\\r").replace("\n", "\\n") if isinstance(a, str) else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        return True


class _RequestIdFilter(logging.Filter):
    """Every line says which request it belongs to: the id the person sees on an error page
    and in the X-Request-Id header (a background job carries the id of the request that queued
    it; "-" for the CLI)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_app_context() else "-"
        return True


def configure_logging(app: Flask) -> None:
    root = logging.getLogger("webapp")
    if not root.handlers:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
        root.addHandler(stream)
    for handler in root.handlers:
        for kind in (_OneLineFilter, _RequestIdFilter):
            if not any(isinstance(f, kind) for f in handler.filters):
                handler.addFilter(kind())
    root.setLevel(logging.DEBUG if app.debug else logging.INFO)
    install_werkzeug_filter()


def _unauthorized() -> Response:
    if errors.wants_json():
        response = Response(
            '{"error": {"status": 401, "message": "Please sign in."}}', 401, mimetype="application/json"
        )
        return response
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _request_id() -> None:
    g.request_id = secrets.token_hex(8)


def _request_id_header(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "-")
    return response


# Answer without looking at the session (and so without the database): a load balancer's
# checks carry whatever cookie they have, and the database may be what is down.
SESSIONLESS_ENDPOINTS = frozenset({"main.health", "main.ready", "static"})


def _limit_recovery_sessions() -> Response | None:
    if request.endpoint is None or request.endpoint in SESSIONLESS_ENDPOINTS:
        return None  # no route (404, 405, a foreign Host): nothing to guard
    if (
        current_user.is_authenticated
        and not current_user.has_full_session
        and request.endpoint not in RECOVERY_SCOPE_ENDPOINTS
    ):
        return redirect(url_for("verify.show"))
    return None


def _require_confirmed_email() -> Response | None:
    """Until the address is confirmed, the account sees only the way to confirm it: nothing is
    sent to that address on its behalf, and no verification starts under it."""
    if request.endpoint is None or request.endpoint in SESSIONLESS_ENDPOINTS:
        return None  # no route (404, 405, a foreign Host): nothing to guard
    if (
        current_user.is_authenticated
        and not current_user.email_confirmed
        and request.endpoint not in UNCONFIRMED_SCOPE_ENDPOINTS
    ):
        return redirect(url_for("identity.confirm_email"))
    return None
