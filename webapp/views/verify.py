"""The continue-verification page, its JSON calls, "email me a link", and the Persona SDK file."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from .. import recovery, services, verification
from ..extensions import limiter
from ..mail import mask_email
from ..route_policy import json_only, verification_scope, wants_json
from ..verification import VerifyPage

bp = Blueprint("verify", __name__, url_prefix="/verify")


def _per_user() -> str:
    return f"user:{current_user.public_id}" if current_user.is_authenticated else "anonymous"


def render_verify_page(page: VerifyPage, status: int = 200) -> tuple[str, int]:
    template = "verify/continue.html" if page.state == "continue" else "verify/status.html"
    return render_template(template, page=page), status


def _json_answer(page: VerifyPage) -> Response:
    if page.state == "continue" and page.inquiry is not None:
        return jsonify({"inquiryId": page.inquiry.persona_id, "sessionToken": page.session_token})
    return jsonify({"redirect": url_for("verify.show")})


@bp.get("")
@login_required
@verification_scope
def show() -> tuple[str, int]:
    """Your verification: the Persona flow opens here, or the page for where you stand."""
    try:
        page = verification.show_verification(current_user, request.args.get("inquiry"))
    except verification.InquiryNotFoundError:
        abort(404)
    return render_verify_page(page)


@bp.post("/session-token")
@login_required
@verification_scope
@json_only
@limiter.limit(lambda: current_app.config["VERIFY_TOKEN_REFRESH_LIMIT"], key_func=_per_user)
def session_token() -> Response:
    """JSON: a fresh session token after the flow said "Session expired", or where to go."""
    return _json_answer(verification.refresh_session_token(current_user))


@bp.post("/complete")
@login_required
@verification_scope
@json_only
def complete() -> Response:
    """JSON: the flow finished; the server asks Persona for the real status."""
    verification.check_completion(current_user)
    return jsonify({"redirect": url_for("verify.show")})


@bp.post("/restart")
@login_required
@verification_scope
def restart() -> Response:
    """Start a new verification, when the policy allows it for the current status."""
    if verification.restart_verification(current_user):
        return redirect(url_for("verify.show"), code=303)
    abort(409)


@bp.post("/email-link")
@login_required
@verification_scope
@limiter.limit(lambda: current_app.config["RECOVERY_SEND_LIMIT_PER_CLIENT"])
def email_link() -> Response:
    """ "Email me a link to continue on another device" (JSON for the page script, or a redirect)."""
    recovery.request_link_for_user(current_user)
    masked = mask_email(current_user.email)
    if wants_json():
        return jsonify({"sent": True, "to": masked})
    hours = current_app.config["RECOVERY_LINK_TTL_SECONDS"] // 3600
    flash(f"We've sent a link to {masked}. It works once, for {hours} hours.")
    return redirect(url_for("verify.show"), code=303)


@bp.get("/sdk/persona-<version>.js")
@verification_scope
def sdk(version: str) -> Response:
    """The official Persona SDK from npm, served from our origin (checked against its hash)."""
    if version != current_app.config["PERSONA_SDK_VERSION"]:
        abort(404)
    sdk_file = services.persona_sdk_file()
    if sdk_file is None:
        abort(404)
    response = send_file(sdk_file, mimetype="text/javascript", max_age=31536000)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
