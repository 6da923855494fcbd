"""Forms (Flask-WTF): every form carries the CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

# Deliverability is proven by mail, not by a validator: just the shape of an address.
EMAIL_SHAPE = Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message="Enter an email address like name@example.com.")


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=200)])
    next = HiddenField()


def new_password_fields(label: str = "Password") -> tuple[PasswordField, PasswordField]:
    """A new password and its repetition (fields named `password` and `confirm`)."""
    length = Length(min=10, max=200, message="Use at least 10 characters (200 at most).")
    return (
        PasswordField(
            label,
            description="At least 10 characters.",
            validators=[DataRequired(f"Enter a {label.lower()}."), length],
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
    email = EmailField("Email", validators=[DataRequired("Enter your email address."), EMAIL_SHAPE, Length(max=254)])
    password, confirm = new_password_fields()


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password."), Length(max=200)]
    )
    password, confirm = new_password_fields("New password")


class EmailForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."), Length(max=254)])
