"""The home page, the language menu, and the liveness and readiness checks."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from .. import accounts, i18n, metrics, services
from ..extensions import db
from ..route_policy import json_only, sessionless, unconfirmed_allowed, verification_scope
from ..security import is_safe_next

bp = Blueprint("main", __name__)
log = logging.getLogger(__name__)


@bp.get("/")
@unconfirmed_allowed
def index() -> str:
    """What this is, with the way in: sign in, or continue verification when signed in."""
    return render_template("index.html", user=current_user)


@bp.post("/language")
@verification_scope
@unconfirmed_allowed
def set_language() -> Response:
    """The language menu (a plain form on every page): back to the same page, in that language."""
    locale = i18n.normalize_locale(request.form.get("locale"))
    if locale is None:
        abort(400)
    if current_user.is_authenticated:
        accounts.set_locale(current_user, locale)
    back = request.form.get("next", "")
    response = redirect(back if is_safe_next(back) else url_for("main.index"), code=303)
    i18n.remember_choice(response, locale)
    return response


@bp.get("/healthz")
@sessionless
@json_only
def health() -> Response:
    """Liveness: the process answers. Touches nothing else, so a database outage does not get
    every worker restarted."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@sessionless
@json_only
def ready() -> Response:
    """Readiness: send people here only if the database answers. Persona's state is reported,
    not required: with Persona down the app still shows every status page and a calm 503."""
    persona = "failing" if services.persona().breaker.is_open else "ok"
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        log.warning("not ready: the database does not answer")
        db.session.rollback()
        response = jsonify({"status": "unavailable", "database": "unavailable", "persona": persona})
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response
    return jsonify({"status": "ok", "database": "ok", "persona": persona})


@bp.get("/metrics")
@sessionless
def prometheus_metrics() -> Response:
    """Prometheus metrics, for the scraper only (a token, or a direct loopback connection)."""
    if not metrics.may_scrape():
        return Response("Not found\n", 404, mimetype="text/plain")
    return Response(metrics.render(), mimetype=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})
