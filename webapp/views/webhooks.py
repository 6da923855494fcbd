"""`POST /webhooks/persona`: the only CSRF-exempt route. Answers fast, JSON only."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from .. import webhooks
from ..errors import json_error
from ..extensions import csrf, db
from ..route_policy import cross_site_allowed, json_only

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.post("/persona")
@csrf.exempt
@cross_site_allowed
@json_only
def receive() -> Response:
    """Persona's event deliveries: verified, stored, then acknowledged."""
    config = current_app.config
    body = webhooks.read_body(
        request.mimetype, request.content_length, request.stream, config["PERSONA_WEBHOOK_MAX_BYTES"]
    )
    outcome = webhooks.receive_event(
        request.headers.get("Persona-Signature"),
        body,
        secrets=config["PERSONA_WEBHOOK_SECRETS"],
        now=time.time(),
        tolerance_seconds=config["PERSONA_WEBHOOK_TOLERANCE_SECONDS"],
    )
    return jsonify({"status": 200, "message": outcome})


@bp.errorhandler(webhooks.WebhookRefusedError)
def refused(exc: webhooks.WebhookRefusedError) -> Response:
    level = logging.ERROR if isinstance(exc, webhooks.WebhookNotConfiguredError) else logging.WARNING
    log.log(level, "webhook refused (%s): %s", exc.code, exc)
    return json_error(exc.status, exc.code.replace("_", " "), exc.code)


@bp.errorhandler(SQLAlchemyError)
def not_stored(exc: SQLAlchemyError) -> Response:
    db.session.rollback()
    log.exception("webhook not stored: database error (Persona will retry)")
    return json_error(503, "try again", "not_stored")
