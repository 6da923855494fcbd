"""The continue-verification app. `create_app()` is the table of contents."""

from __future__ import annotations

import os

from flask import Flask
from flask_babel import lazy_gettext
from jinja2 import StrictUndefined
from werkzeug.middleware.proxy_fix import ProxyFix

from . import accounts, cli, errors, i18n, logs, metrics, outbox, route_policy, sdk, security
from .addresses import mask_address
from .budget import Coalescer, Pace, PersonaBudget, shared_state
from .config import CONFIGS, ROOT, Config
from .extensions import csrf, db, limiter, login_manager, migrations
from .persona import PersonaClient
from .recovery import reminders_per_hour
from .statuses import InquiryStatus


def create_app(config_class: type[Config] | None = None) -> Flask:
    config_class = config_class or CONFIGS[os.environ.get("APP_ENV", "development")]
    config_class.check()
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.config.from_object(config_class)
    os.makedirs(app.instance_path, exist_ok=True)
    app.jinja_env.undefined = StrictUndefined
    app.jinja_env.globals["InquiryStatus"] = InquiryStatus
    app.jinja_env.filters["masked"] = mask_address
    if app.config["TRUSTED_PROXY_HOPS"]:
        hops = app.config["TRUSTED_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    # Request ids and log lines first: everything after logs under the request's id.
    logs.init_app(app)

    # Extensions
    db.init_app(app)
    migrations.init_app(app, ROOT / "migrations")
    csrf.init_app(app)
    i18n.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Please sign in to continue your verification.")
    login_manager.user_loader(accounts.load_session_user)

    # Services (read through webapp.services). Persona's budget, coalescing and the reminder
    # pace share one store: Redis at REDIS_URL, or this process without it.
    state, storage_uri = shared_state(app.config["REDIS_URL"])
    app.extensions["persona"] = PersonaClient.from_config(
        app.config, budget=PersonaBudget.from_config(app.config, state, storage_uri)
    )
    app.extensions["coalescer"] = Coalescer(state)
    app.extensions["reminder_pace"] = Pace(storage_uri, "reminders", reminders_per_hour(app.config) // 60)
    app.extensions["persona"].on_exchange = metrics.observe_persona_call
    app.extensions["token_cipher"] = security.TokenCipher(app.config["TOKEN_ENCRYPTION_KEY"], app.config["SECRET_KEY"])
    # Background work: Celery is made when a process first sends a task (services.celery).
    outbox.init_app(app)  # committed emails go to the workers when the app context ends
    sdk.init_app(app)

    # Headers on every answer, and the guards that read each route's policy
    security.init_app(app)
    route_policy.init_app(app)

    from .views import auth, identity, main, recovery, verify, webhooks

    app.register_blueprint(main.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(verify.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(recovery.bp)
    app.register_blueprint(identity.bp)

    errors.register(app)
    cli.register(app)
    return app
