"""The continue-verification page, its JSON calls, "email me a link", and the Persona SDK file."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

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
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from .. import accounts, device, handoff, recovery, services, verification
from ..budget import Priority
from ..extensions import limiter
from ..mail import mask_email
from ..persona import calls_for
from ..route_policy import json_only, verification_scope, wants_json
from ..verification import VerifyPage

bp = Blueprint("verify", __name__, url_prefix="/verify")


def _per_user() -> str:
    return f"user:{current_user.public_id}" if current_user.is_authenticated else "anonymous"


def person_waiting(view: Callable[..., Any]) -> Callable[..., Any]:
    """The view's Persona calls are a signed-in person's: interactive priority in the shared
    budget, their own per-person limit, and the page's deadline across all of them."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with calls_for(
            Priority.INTERACTIVE,
            person=f"user:{current_user.public_id}",
            deadline_seconds=current_app.config["PERSONA_PAGE_DEADLINE_SECONDS"],
        ):
            return view(*args, **kwargs)

    return wrapper


# Set by "Continue here anyway": this browser's session no longer asks to leave the app.
CONTINUE_IN_APP_SESSION_KEY = "continue_in_app_browser"


def render_verify_page(page: VerifyPage, status: int = 200) -> tuple[str, int]:
    template = "verify/continue.html" if page.state == "continue" else "verify/status.html"
    in_app_browser = None
    if page.state == "continue" and not session.get(CONTINUE_IN_APP_SESSION_KEY):
        in_app_browser = device.detect_in_app_browser(request.user_agent.string)
    return render_template(template, page=page, in_app_browser=in_app_browser), status


def _private(response: Response) -> Response:
    """An answer that carries a link token: never cached, never sent on as a referrer."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.context_processor
def sign_in_clock() -> dict[str, int]:
    """For the page script's warning before an idle sign-in ends: how long this one has left,
    and after how many idle minutes it ends (0 and 0 when nobody is signed in)."""
    row = current_user.login_session if current_user.is_authenticated else None
    if row is None:
        return {"signed_in_seconds_left": 0, "idle_minutes": 0}
    return {"signed_in_seconds_left": accounts.seconds_left(current_user), "idle_minutes": row.idle_seconds // 60}


def _json_answer(page: VerifyPage) -> Response:
    if page.state == "continue" and page.inquiry is not None:
        return jsonify({"inquiryId": page.inquiry.persona_id, "sessionToken": page.session_token})
    return jsonify({"redirect": url_for("verify.show")})


@bp.get("")
@login_required
@verification_scope
@person_waiting
def show() -> tuple[str, int]:
    """Your verification: the Persona flow opens here, or the page for where you stand."""
    try:
        page = verification.start_or_resume_verification(current_user, request.args.get("inquiry"))
    except verification.InquiryNotFoundError:
        abort(404)
    return render_verify_page(page)


@bp.post("/session-token")
@login_required
@verification_scope
@json_only
@limiter.limit(lambda: current_app.config["VERIFY_TOKEN_REFRESH_LIMIT"], key_func=_per_user)
@person_waiting
def session_token() -> Response:
    """JSON: a fresh session token after the flow said "Session expired", or where to go."""
    return _json_answer(verification.refresh_session_token(current_user))


@bp.post("/complete")
@login_required
@verification_scope
@json_only
@limiter.limit(lambda: current_app.config["VERIFY_COMPLETE_LIMIT"], key_func=_per_user)
@person_waiting
def complete() -> Response:
    """JSON: the flow finished; the server asks Persona for the real status."""
    verification.check_completion(current_user)
    return jsonify({"redirect": url_for("verify.show")})


@bp.post("/keep-alive")
@login_required
@verification_scope
@json_only
def keep_alive() -> Response:
    """JSON: the page script says the person is still here (the flow is open, or they chose to
    stay signed in). Loading the user counted as activity; the answer says how long the sign-in
    now lasts."""
    return jsonify({"expiresInSeconds": accounts.seconds_left(current_user)})


@bp.post("/open-in-browser-link")
@login_required
@verification_scope
@limiter.limit(lambda: current_app.config["OPEN_IN_BROWSER_LINK_LIMIT"], key_func=_per_user)
def open_in_browser_link() -> Response:
    """ "Copy link" in an app's built-in browser: a fresh single-use link for the phone's own
    browser (JSON for the page script; without it, a page that shows the link to copy)."""
    url = recovery.issue_open_in_browser_link(current_user)
    if wants_json():
        return _private(jsonify({"url": url}))
    minutes = current_app.config["OPEN_IN_BROWSER_LINK_TTL_SECONDS"] // 60
    html = render_template("verify/open_in_browser.html", link=url, minutes=minutes)
    return _private(Response(html, mimetype="text/html"))


@bp.post("/handoff-link")
@login_required
@verification_scope
@limiter.limit(lambda: current_app.config["HANDOFF_LINK_LIMIT"], key_func=_per_user)
def handoff_link() -> Response:
    """ "Continue on your phone": a fresh single-use link and its QR code (JSON for the page
    script, which asks again every HANDOFF_ROTATE_SECONDS; without it, a page with both)."""
    try:
        link = handoff.issue_handoff_link(current_user, _("QR code: scan it with your phone's camera"))
    except handoff.NothingToHandOffError:
        if wants_json():
            return jsonify({"redirect": url_for("verify.show")})
        return redirect(url_for("verify.show"), code=303)
    if wants_json():
        return _private(jsonify({"url": link.url, "qrSvg": link.qr_svg, "issuedAt": link.issued_at_ms}))
    minutes = current_app.config["HANDOFF_LINK_TTL_SECONDS"] // 60
    html = render_template("verify/handoff.html", link=link, minutes=minutes)
    return _private(Response(html, mimetype="text/html"))


@bp.get("/handoff-status")
@login_required
@verification_scope
@json_only
@limiter.limit(lambda: current_app.config["HANDOFF_STATUS_LIMIT"], key_func=_per_user)
def handoff_status() -> Response:
    """JSON, polled by the computer while it shows the QR code or "Continue on your phone…":
    `waiting`, `on_phone` (a phone opened the link), or where to go (the result is ready)."""
    since = request.args.get("since", "")
    if not since.isdigit() or len(since) > 13:  # 13 digits: up to the year 2286
        return Response('{"error": "since: milliseconds since 1970 expected"}', 400, mimetype="application/json")
    state = handoff.handoff_status(current_user, int(since))
    if state == handoff.HandoffState.FINISHED:
        return jsonify({"state": state, "redirect": url_for("verify.show")})
    return jsonify({"state": state})


@bp.post("/continue-here")
@login_required
@verification_scope
def continue_here() -> Response:
    """ "Continue here anyway": open the flow in the app's built-in browser after all."""
    session[CONTINUE_IN_APP_SESSION_KEY] = True
    return redirect(url_for("verify.show"), code=303)


@bp.get("/received")
@verification_scope
def received() -> str | Response:
    """The flow finished but this browser was no longer signed in: the details arrived anyway.
    Someone signed in (again) goes to their verification page, which knows more."""
    if current_user.is_authenticated:
        return redirect(url_for("verify.show"))
    return render_template("verify/received.html")


@bp.post("/restart")
@login_required
@verification_scope
@limiter.limit(lambda: current_app.config["VERIFY_RESTART_LIMIT"], key_func=_per_user)
@person_waiting
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
    flash(
        ngettext(
            "We've sent a link to %(address)s. It works once, for %(num)d hour.",
            "We've sent a link to %(address)s. It works once, for %(num)d hours.",
            hours,
            address=masked,
        )
    )
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
