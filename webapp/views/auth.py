"""Sign-up, sign-in and sign-out."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user
from werkzeug.wrappers import Response

from .. import accounts, recovery
from ..addresses import InvalidAddressError, mask_address, normalize_address
from ..extensions import limiter
from ..forms import ChangePasswordForm, LoginForm, SignupForm
from ..route_policy import unconfirmed_allowed, verification_scope
from ..security import is_safe_next

bp = Blueprint("auth", __name__)


def _login_account_key() -> str:
    """The per-account limiter key: the normalised address typed in (known or not, so the
    limit itself says nothing about which accounts exist)."""
    try:
        return "login-account:" + normalize_address(request.form.get("email", ""))
    except InvalidAddressError:
        return "login-account:-"


def _login_failed(response: Response) -> bool:
    return response.status_code == 200  # a refused sign-in shows the form again; success is 303


@bp.route("/login", methods=["GET", "POST"])
@unconfirmed_allowed
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_ACCOUNT_FAILURE_LIMIT"],
    methods=["POST"],
    key_func=_login_account_key,
    deduct_when=_login_failed,
    scope="login-account",
)
def login() -> str | Response:
    """The sign-in form; on success, where `next` points (same site only) or /verify."""
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            target = form.next.data if is_safe_next(form.next.data) else url_for("verify.show")
            accounts.sign_in(user)
            return redirect(target, code=303)
        form.password.errors.append(_("Email or password is incorrect."))
    return render_template("auth/login.html", form=form)


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def signup() -> str | Response:
    """Create an account and mail its confirmation link. The answer is "check your email"
    whether or not the address had an account (its owner gets a notice instead)."""
    form = SignupForm()
    if form.validate_on_submit():
        email = form.email.data or ""
        recovery.sign_up(email, form.password.data or "")
        return render_template("auth/signup_sent.html", masked=mask_address(email))
    return render_template("auth/signup.html", form=form)


def _signed_out(message: str) -> Response:
    logout_user()
    session.clear()
    flash(message)
    response = redirect(url_for("auth.login"), code=303)
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


@bp.post("/logout")
@login_required
@verification_scope
@unconfirmed_allowed
def logout() -> Response:
    """Sign out everywhere this cookie was: the server-side session is revoked."""
    accounts.end_login_session(current_user)
    return _signed_out(_("You are signed out."))


def _account_page(password_form: ChangePasswordForm) -> str:
    return render_template(
        "auth/account.html",
        password_form=password_form,
        sessions=accounts.live_login_sessions(current_user),
        this_session_id=current_user.login_session.id,
    )


@bp.get("/account")
@login_required
def account() -> str:
    """Where this account is signed in, the way to end all of it, and a password change."""
    return _account_page(ChangePasswordForm())


@bp.post("/account/password")
@login_required
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"])
def change_password() -> str | Response:
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if accounts.change_password(current_user, form.current_password.data or "", form.password.data or ""):
            flash(
                _(
                    "Your password is changed. Every other device is signed out, "
                    "and links we emailed you no longer work."
                )
            )
            return redirect(url_for("auth.account"), code=303)
        form.current_password.errors = [_("That is not your current password.")]
    return _account_page(form)


@bp.post("/account/sign-out-everywhere")
@login_required
def sign_out_everywhere() -> Response:
    """Lost phone, shared computer: every session ends and every emailed link dies."""
    accounts.sign_out_everywhere(current_user)
    return _signed_out(_("You are signed out on every device, and the links we emailed you no longer work."))
