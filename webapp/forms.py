"""Forms (Flask-WTF): every form carries the CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, Field, HiddenField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from .addresses import InvalidAddressError, normalize_address
from .passwords import is_common_password


def strict_address(form: FlaskForm, field: Field) -> None:
    """The one address rule (addresses.py); the field then holds the normalised address."""
    try:
        field.data = normalize_address(field.data or "")
    except InvalidAddressError as exc:
        raise ValidationError(str(exc)) from exc


def not_common(form: FlaskForm, field: Field) -> None:
    if is_common_password(field.data or ""):
        raise ValidationError("This password is one of the most common ones, so it is easy to guess. Choose another.")


def email_field() -> EmailField:
    return EmailField("Email", validators=[DataRequired("Enter your email address."), Length(max=254), strict_address])


class LoginForm(FlaskForm):
    email = email_field()
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=200)])
    next = HiddenField()


def new_password_fields(label: str = "Password") -> tuple[PasswordField, PasswordField]:
    """A new password and its repetition (fields named `password` and `confirm`)."""
    length = Length(min=10, max=200, message="Use at least 10 characters (200 at most).")
    return (
        PasswordField(
            label,
            description="At least 10 characters, and not a common password.",
            validators=[DataRequired(f"Enter a {label.lower()}."), length, not_common],
        ),
        PasswordField(
            f"Repeat {label.lower()}",
            validators=[
                DataRequired(f"Enter the {label.lower()} again."),
                EqualTo("password", message="The passwords do not match."),
            ],
        ),
    )


class SignupForm(FlaskForm):
    email = email_field()
    password, confirm = new_password_fields()


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password."), Length(max=200)]
    )
    password, confirm = new_password_fields("New password")


class NewPasswordForm(FlaskForm):
    """The last step of "Forgot password": the link proved the inbox, this sets the password."""

    password, confirm = new_password_fields("New password")


class EmailForm(FlaskForm):
    email = email_field()
