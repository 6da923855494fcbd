"""`POST /webhooks/persona`: the only CSRF-exempt route. Answers fast, JSON only."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from .. import webhooks
from ..extensions import csrf, db

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def _answer(status: int, message: str) -> Response:
    response = jsonify({"status": status, "message": message})
    response.status_code = status
    return response


@bp.post("/persona")
@csrf.exempt
def receive() -> Response:
    """Persona's event deliveries: verified, stored, then acknowledged."""
    limit = current_app.config["PERSONA_WEBHOOK_MAX_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        return _answer(413, "body too large")
    if request.mimetype != "application/json":
        return _answer(415, "JSON only")
    body = request.stream.read(limit + 1)  # raw bytes: the signature covers them exactly
    if len(body) > limit:
        return _answer(413, "body too large")
    secrets = current_app.config["PERSONA_WEBHOOK_SECRETS"]
    if not secrets:
        log.error("webhook refused: PERSONA_WEBHOOK_SECRETS is not configured")
        return _answer(503, "not configured")
    try:
        outcome = webhooks.receive_event(
            request.headers.get("Persona-Signature"),
            body,
            secrets=secrets,
            now=time.time(),
            tolerance_seconds=current_app.config["PERSONA_WEBHOOK_TOLERANCE_SECONDS"],
        )
    except webhooks.InvalidSignatureError as exc:
        log.warning("webhook refused: %s", exc)
        return _answer(400, "invalid signature")
    except webhooks.InvalidEventError as exc:
        log.warning("webhook refused: %s", exc)
        return _answer(400, "invalid event")
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("webhook not stored: database error (Persona will retry)")
        return _answer(503, "try again")
    return _answer(200, outcome)
