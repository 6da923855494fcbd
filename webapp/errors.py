"""One registry of error handlers: every error is a calm page (or JSON), never a traceback.

Every JSON error has one shape: `{"error": {"status": 503, "code": "unavailable", "message": "..."}}`
(`code` is stable for programs, `message` is for people); `json_error` builds it."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response

from .extensions import db, login_manager
from .persona import PersonaBusyError, PersonaError
from .route_policy import wants_json
from .verification import VerifyPage

log = logging.getLogger(__name__)

MESSAGES = {
    400: (_l("Something was wrong with that request"), _l("Please go back, reload the page and try again.")),
    401: (_l("Please sign in"), _l("You need to sign in to see this page.")),
    403: (_l("Not allowed"), _l("You can't do that here.")),
    404: (_l("Page not found"), _l("Check the address, or go back to the start.")),
    405: (_l("Not allowed"), _l("That page can't be used this way.")),
    409: (_l("That can't be done now"), _l("Your verification is not in a state that allows this.")),
    413: (_l("Too large"), _l("What was sent is larger than we accept.")),
    415: (_l("Unsupported content"), _l("That content type is not accepted here.")),
    429: (_l("Too many attempts"), _l("Please wait a few minutes and try again.")),
    500: (_l("Something went wrong on our side"), _l("We have been told. Please try again in a moment.")),
}


def json_error(status: int, message: str, code: str | None = None, **details: Any) -> Response:
    """The one JSON error shape. `code` defaults to the status's name (`not_found`); `details`
    add fields a client acts on (e.g. `retryAfter`)."""
    code = code or HTTP_STATUS_CODES.get(status, "error").lower().replace(" ", "_").replace("-", "_")
    response = jsonify({"error": {"status": status, "code": code, "message": message, **details}})
    response.status_code = status
    return response


def _error_response(status: int, title: str, text: str) -> Response:
    title, text = str(title), str(text)
    if wants_json():
        return json_error(status, text)
    html = render_template(
        "errors/error.html", status=status, title=title, text=text, request_id=g.get("request_id", "-")
    )
    return Response(html, status, mimetype="text/html")


def handle_http_error(exc: HTTPException) -> Response:
    if isinstance(exc, SecurityError):
        # A Host we don't serve: no URL can be built for it, so no page either.
        return Response("Bad request: unknown host.\n", 400, mimetype="text/plain")
    status = exc.code or 500
    title, text = MESSAGES.get(status, (exc.name, _l("Please go back and try again.")))
    if isinstance(exc, CSRFError):
        text = _l("This form has expired. Please reload the page and try again.")
    response = _error_response(status, title, text)
    valid_methods = getattr(exc, "valid_methods", None)
    if status == 405 and valid_methods:
        response.headers["Allow"] = ", ".join(valid_methods)
    return response


# The waiting page reloads itself within this many seconds at most, to give a fresh estimate.
LONGEST_WAIT_SHOWN_SECONDS = 120


def handle_persona_busy(exc: PersonaBusyError) -> Response:
    """Over Persona's budget (ours, or its 429): not an outage. A person sees the waiting page,
    which counts down and continues by itself; the page script gets a JSON 503 "busy"."""
    wait = min(exc.retry_after_seconds or 1, LONGEST_WAIT_SHOWN_SECONDS)
    log.info("Persona budget spent: %s waits %d s", request.endpoint, wait)
    response: Response
    if wants_json():
        response = json_error(503, gettext("Please wait a moment."), "busy", retryAfter=wait)
    else:
        html = render_template("verify/status.html", page=VerifyPage("waiting", wait_seconds=wait))
        response = Response(html, 200, mimetype="text/html")
    response.headers["Retry-After"] = str(wait)
    return response


def handle_persona_unavailable(exc: PersonaError) -> Response:
    """Persona is down, slow or refusing our key, or answered something no step expected (a
    400/422, a 404 or 409 where none can be): a fast, honest 503."""
    if isinstance(exc, PersonaBusyError):
        return handle_persona_busy(exc)
    log.warning("Persona unavailable (%s): %s", type(exc).__name__, exc)
    retry_after = getattr(exc, "retry_after_seconds", None) or 30
    response: Response
    if wants_json():
        response = json_error(503, gettext("Verification is temporarily unavailable."), "unavailable")
    else:
        html = render_template("verify/status.html", page=VerifyPage("unavailable"))
        response = Response(html, 503, mimetype="text/html")
    response.headers["Retry-After"] = str(retry_after)
    return response


def handle_unauthorized() -> Response:
    """Flask-Login's answer to a signed-out visitor: JSON 401, or the sign-in page and back."""
    if wants_json():
        return json_error(401, gettext("Please sign in."))
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def handle_unexpected(exc: Exception) -> Response:
    db.session.rollback()
    log.exception("unhandled error (request id %s)", g.get("request_id", "-"))
    return _error_response(500, *MESSAGES[500])


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(PersonaError, handle_persona_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
    login_manager.unauthorized_handler(handle_unauthorized)
