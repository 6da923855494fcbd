"""Forms (Flask-WTF): every form carries the CSRF token. Every label and message is translated
(lazily: the form class is built once, its words in each request's language)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, Field, HiddenField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from .addresses import InvalidAddressError, normalize_address
from .passwords import is_common_password

# WTForms' own messages are English only: every validator here says its own, translated.
TOO_LONG = _l("That is longer than we accept.")
EMAIL_MISSING = DataRequired(_l("Enter your email address."))


def strict_address(form: FlaskForm, field: Field) -> None:
    """The one address rule (addresses.py); the field then holds the normalised address."""
    try:
        field.data = normalize_address(field.data or "")
    except InvalidAddressError as exc:  # (its English detail is for logs and the CLI)
        raise ValidationError(_l("Enter an email address like name@example.com.")) from exc


def not_common(form: FlaskForm, field: Field) -> None:
    if is_common_password(field.data or ""):
        raise ValidationError(
            _l("This password is one of the most common ones, so it is easy to guess. Choose another.")
        )


def email_field() -> EmailField:
    return EmailField(_l("Email"), validators=[EMAIL_MISSING, Length(max=254, message=TOO_LONG), strict_address])


class LoginForm(FlaskForm):
    email = email_field()
    password = PasswordField(
        _l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=200, message=TOO_LONG)]
    )
    next = HiddenField()


def new_password_fields(
    label: str, repeat_label: str, missing: str, missing_again: str
) -> tuple[PasswordField, PasswordField]:
    """A new password and its repetition (fields named `password` and `confirm`)."""
    length = Length(min=10, max=200, message=_l("Use at least 10 characters (200 at most)."))
    return (
        PasswordField(
            label,
            description=_l("At least 10 characters, and not a common password."),
            validators=[DataRequired(missing), length, not_common],
        ),
        PasswordField(
            repeat_label,
            validators=[
                DataRequired(missing_again),
                EqualTo("password", message=_l("The passwords do not match.")),
            ],
        ),
    )


class SignupForm(FlaskForm):
    email = email_field()
    password, confirm = new_password_fields(
        _l("Password"), _l("Repeat password"), _l("Enter a password."), _l("Enter the password again.")
    )


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[DataRequired(_l("Enter your current password.")), Length(max=200, message=TOO_LONG)],
    )
    password, confirm = new_password_fields(
        _l("New password"), _l("Repeat new password"), _l("Enter a new password."), _l("Enter the new password again.")
    )


class NewPasswordForm(FlaskForm):
    """The last step of "Forgot password": the link proved the inbox, this sets the password."""

    password, confirm = new_password_fields(
        _l("New password"), _l("Repeat new password"), _l("Enter a new password."), _l("Enter the new password again.")
    )


class EmailForm(FlaskForm):
    email = email_field()
