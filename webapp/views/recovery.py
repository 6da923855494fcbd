"""Recovery links (`/r/...`), "send me a new link", and unsubscribing from reminders."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from .. import accounts, i18n, recovery
from ..extensions import limiter
from ..forms import EmailForm
from ..models import LinkPurpose
from ..route_policy import verification_scope
from ..security import hash_token

bp = Blueprint("recovery", __name__)
SESSION_KEY = "recovery_link"  # the link's SHA-256: the raw token never leaves the URL it came in
OPEN_IN_BROWSER_SESSION_KEY = "open_in_browser_link"  # the same, for links copied in an app's browser
HANDOFF_SESSION_KEY = "handoff_link"  # the same, for the QR code of "Continue on your phone"


def _signed_in_id() -> int | None:
    return current_user.id if current_user.is_authenticated else None


def _no_referrer(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _refusal(check: recovery.LinkCheck) -> Response:
    if check.problem == recovery.LinkProblem.OTHER_ACCOUNT:
        session.pop(SESSION_KEY, None)
        html = render_template("recovery/other_account.html")
        return _no_referrer(Response(html, 403, mimetype="text/html"))
    html = render_template("recovery/invalid.html", form=EmailForm())
    return _no_referrer(Response(html, 404, mimetype="text/html"))


def _attempt_limit() -> str:
    return current_app.config["RECOVERY_LINK_ATTEMPT_LIMIT"]


def _take_token(token: str, session_key: str, landing_endpoint: str) -> Response:
    session[session_key] = hash_token(token) if recovery.looks_like_token(token) else None
    i18n.open_in_link_language(recovery.link_locale(session[session_key]))
    return _no_referrer(redirect(url_for(landing_endpoint), code=303))


def _show_landing(session_key: str, purpose: str, redeem_endpoint: str) -> Response:
    check = recovery.check_link(session.get(session_key), _signed_in_id(), purpose)
    if check.problem or check.link is None:
        return _refusal(check)
    html = render_template(
        "recovery/landing.html",
        redeem_url=url_for(redeem_endpoint),
        account_email=check.link.user.email,
        purpose=purpose,
    )
    response = _no_referrer(Response(html, mimetype="text/html"))
    # Its button POSTs here over HTTPS, where the CSRF check wants a same-origin Referer; this
    # address carries no token, and other origins still get nothing.
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _redeem(session_key: str, purpose: str) -> Response:
    signed_in = _signed_in_id()
    check = recovery.redeem_link(session.get(session_key), signed_in, purpose)
    if check.problem or check.link is None:
        return _refusal(check)
    if signed_in is None:
        accounts.sign_in(check.link.user, scope="verification")
    else:
        session.pop(session_key, None)
    return _no_referrer(redirect(url_for("verify.show"), code=303))


@bp.get("/r/<token>")
@verification_scope
@limiter.limit(_attempt_limit)
def landing_with_token(token: str) -> Response:
    """Takes the token out of the address bar (into the session) and shows /r. Uses nothing."""
    return _take_token(token, SESSION_KEY, "recovery.landing")


@bp.get("/r")
@verification_scope
def landing() -> Response:
    """One button, "Continue verification": the link is used only when it is pressed."""
    return _show_landing(SESSION_KEY, LinkPurpose.CONTINUE, "recovery.redeem")


@bp.post("/r")
@verification_scope
@limiter.limit(_attempt_limit)
def redeem() -> Response:
    """Use the link: a fresh session limited to verification, then /verify."""
    return _redeem(SESSION_KEY, LinkPurpose.CONTINUE)


@bp.get("/open/<token>")
@verification_scope
@limiter.limit(_attempt_limit)
def open_in_browser_with_token(token: str) -> Response:
    """A link copied in an app's built-in browser, pasted into the phone's own: as /r/<token>."""
    return _take_token(token, OPEN_IN_BROWSER_SESSION_KEY, "recovery.open_in_browser_landing")


@bp.get("/open")
@verification_scope
def open_in_browser_landing() -> Response:
    """One button, "Continue verification" (scanners and previews use nothing up)."""
    return _show_landing(OPEN_IN_BROWSER_SESSION_KEY, LinkPurpose.OPEN_IN_BROWSER, "recovery.open_in_browser")


@bp.post("/open")
@verification_scope
@limiter.limit(_attempt_limit)
def open_in_browser() -> Response:
    """Use the copied link: a fresh session limited to verification, then /verify."""
    return _redeem(OPEN_IN_BROWSER_SESSION_KEY, LinkPurpose.OPEN_IN_BROWSER)


@bp.get("/h/<token>")
@verification_scope
@limiter.limit(_attempt_limit)
def handoff_with_token(token: str) -> Response:
    """The QR code of "Continue on your phone", scanned: as /r/<token>."""
    return _take_token(token, HANDOFF_SESSION_KEY, "recovery.handoff_landing")


@bp.get("/h")
@verification_scope
def handoff_landing() -> Response:
    """Whose verification this is ("Not you?"), and one button, "Continue verification"."""
    return _show_landing(HANDOFF_SESSION_KEY, LinkPurpose.HANDOFF, "recovery.handoff")


@bp.post("/h")
@verification_scope
@limiter.limit(_attempt_limit)
def handoff() -> Response:
    """Use the scanned link: this phone is signed in for verification only, then /verify (the
    computer, polling, sees the link used and steps aside)."""
    return _redeem(HANDOFF_SESSION_KEY, LinkPurpose.HANDOFF)


@bp.route("/recovery/resend", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RECOVERY_SEND_LIMIT_PER_CLIENT"], methods=["POST"])
def resend() -> str:
    """Ask for a new link by email: the same answer whether or not the address has an account."""
    form = EmailForm()
    if form.validate_on_submit():
        recovery.request_link_for(form.email.data or "")
        return render_template("recovery/sent.html")
    return render_template("recovery/resend.html", form=form)


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> str | Response:
    """Stop reminder emails, without signing in (POST only: link scanners change nothing)."""
    user = recovery.user_for_unsubscribe(token)
    if user is None:
        html = render_template("recovery/unsubscribe.html", valid=False, done=False)
        return Response(html, 404, mimetype="text/html")
    done = request.method == "POST"  # the global CSRF check has passed
    if done:
        recovery.set_reminders(user, enabled=False)
    return render_template("recovery/unsubscribe.html", valid=True, done=done)
