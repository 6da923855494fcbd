"""Whose identity it is: confirming an address, "Forgot password", and "Not you?".

Links work like recovery links (recovery.py): the token leaves the address bar at once (its
hash waits in the session), GET uses nothing, one POST uses the link.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from werkzeug.wrappers import Response

from .. import accounts, recovery
from ..addresses import mask_address
from ..extensions import limiter
from ..forms import EmailForm, NewPasswordForm
from ..models import LinkPurpose
from ..route_policy import unconfirmed_allowed, verification_scope
from ..security import hash_token

bp = Blueprint("identity", __name__)
CONFIRM_KEY = "confirm_email_link"
RESET_KEY = "reset_password_link"


def _attempt_limit() -> str:
    return current_app.config["RECOVERY_LINK_ATTEMPT_LIMIT"]


def _no_referrer(response: Response) -> Response:
    """Pages reached from a link: the link never leaks through Referer or a cache."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _html(template: str, status: int = 200, **context) -> Response:
    return _no_referrer(Response(render_template(template, **context), status, mimetype="text/html"))


# -- confirming the address of a new account -----------------------------------------------
@bp.get("/confirm-email/<token>")
@limiter.limit(_attempt_limit)
@unconfirmed_allowed
def confirm_with_token(token: str) -> Response:
    """Takes the token out of the address bar (into the session); uses nothing."""
    session[CONFIRM_KEY] = hash_token(token) if recovery.looks_like_token(token) else None
    return _no_referrer(redirect(url_for("identity.confirm_email"), code=303))


@bp.get("/confirm-email")
@unconfirmed_allowed
def confirm_email() -> Response:
    """With a link: confirm it (signed in as its account: the mailbox and the password must
    meet in one person, so a victim clicking an attacker's link confirms nothing). Without
    one: the "confirm your email" page an unconfirmed account sees."""
    if CONFIRM_KEY in session:
        check = recovery.check_link(session[CONFIRM_KEY], None, LinkPurpose.CONFIRM_EMAIL)
        if check.problem or check.link is None:
            session.pop(CONFIRM_KEY, None)
            if _already_confirmed():
                return _confirmed()
            return _html("identity/link_invalid.html", 404, what="confirmation")
        owner = check.link.user
        if not current_user.is_authenticated or not current_user.has_full_session:
            return _html(
                "identity/confirm_sign_in.html",
                masked=mask_address(owner.email),
                next=url_for("identity.confirm_email"),
            )
        if current_user.id != owner.id:
            session.pop(CONFIRM_KEY, None)
            return _html("recovery/other_account.html", 403)
        return _html("identity/confirm.html")
    if current_user.is_authenticated and not current_user.email_confirmed:
        return _html("identity/confirm_needed.html")
    return redirect(url_for("verify.show") if current_user.is_authenticated else url_for("auth.login"))


@bp.post("/confirm-email")
@limiter.limit(_attempt_limit)
@unconfirmed_allowed
def confirm_email_redeem() -> Response:
    """Use the confirmation link, signed in as its account."""
    if not current_user.is_authenticated:  # (the CSRF token is checked for every POST)
        return redirect(url_for("identity.confirm_email"), code=303)
    check = recovery.redeem_link(session.pop(CONFIRM_KEY, None), current_user.id, LinkPurpose.CONFIRM_EMAIL)
    if check.problem or check.link is None:
        if _already_confirmed():  # e.g. the answer to the first press was lost, and this is the retry
            return _confirmed()
        return _html("identity/link_invalid.html", 404, what="confirmation")
    accounts.confirm_email(current_user)
    return _confirmed()


def _already_confirmed() -> bool:
    return bool(current_user.is_authenticated and current_user.email_confirmed)


def _confirmed() -> Response:
    flash(_("Thank you: your email address is confirmed."))
    return _no_referrer(redirect(url_for("verify.show"), code=303))


@bp.post("/resend-confirmation")
@limiter.limit(lambda: current_app.config["RECOVERY_SEND_LIMIT_PER_CLIENT"])
@unconfirmed_allowed
def confirm_email_resend() -> Response:
    """Send the confirmation link again (to the account's own address, capped per mailbox)."""
    if current_user.is_authenticated and not current_user.email_confirmed:
        recovery.send_confirmation(current_user)
        flash(_("We've sent a new link to %(address)s.", address=mask_address(current_user.email)))
    return redirect(url_for("identity.confirm_email"), code=303)


# -- forgot password ---------------------------------------------------------------------------
@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RECOVERY_SEND_LIMIT_PER_CLIENT"], methods=["POST"])
def forgot_password() -> str:
    """Ask for a reset link: the same answer whether or not the address has an account."""
    form = EmailForm()
    if form.validate_on_submit():
        recovery.request_password_reset(form.email.data or "")
        minutes = current_app.config["PASSWORD_RESET_LINK_TTL_SECONDS"] // 60
        return render_template("identity/forgot_sent.html", minutes=minutes)
    return render_template("identity/forgot.html", form=form)


@bp.get("/password/reset/<token>")
@limiter.limit(_attempt_limit)
def reset_with_token(token: str) -> Response:
    """Takes the token out of the address bar (into the session); uses nothing."""
    session[RESET_KEY] = hash_token(token) if recovery.looks_like_token(token) else None
    return _no_referrer(redirect(url_for("identity.reset_password"), code=303))


@bp.route("/password/reset", methods=["GET", "POST"])
@limiter.limit(_attempt_limit, methods=["POST"])
def reset_password() -> Response:
    """Choose a new password for the link's account; then every session of it ends."""
    check = recovery.check_link(session.get(RESET_KEY), None, LinkPurpose.RESET)
    if check.problem or check.link is None:
        session.pop(RESET_KEY, None)
        return _html("identity/link_invalid.html", 404, what="reset")
    form = NewPasswordForm()
    masked = mask_address(check.link.user.email)
    if form.validate_on_submit():
        used = recovery.redeem_link(session.pop(RESET_KEY, None), None, LinkPurpose.RESET)
        if used.problem or used.link is None:
            return _html("identity/link_invalid.html", 404, what="reset")
        accounts.reset_password(used.link.user, form.password.data or "")
        logout_user()
        session.clear()
        flash(_("Your password is changed and you are signed out everywhere. Sign in with the new password."))
        return _no_referrer(redirect(url_for("auth.login"), code=303))
    return _html("identity/reset.html", form=form, masked=masked)


# -- not you? ----------------------------------------------------------------------------------
@bp.post("/not-you")
@verification_scope
@unconfirmed_allowed
def not_you() -> Response:
    """The page named someone else's account: sign out (and forget any link), then explain."""
    if current_user.is_authenticated:
        accounts.end_login_session(current_user)
    logout_user()
    session.clear()  # and with it any link this browser was holding
    response = _html("identity/not_you.html")
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response
