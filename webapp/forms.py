"""Forms (Flask-WTF): every form carries the CSRF token."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

# Deliverability is proven by mail, not by a validator: just the shape of an address.
EMAIL_SHAPE = Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message=_l("Enter an email address like name@example.com."))
# WTForms' own messages ("This field is required.") are English only: ours are translated.
REQUIRED = DataRequired(message=_l("Please fill in this field."))
TOO_LONG = _l("That is longer than we accept.")


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[REQUIRED, Length(max=254, message=TOO_LONG)])
    password = PasswordField(_l("Password"), validators=[REQUIRED, Length(max=200, message=TOO_LONG)])
    next = HiddenField()


def new_password_fields(label: str, repeat_label: str) -> tuple[PasswordField, PasswordField]:
    """A new password and its repetition (fields named `password` and `confirm`)."""
    length = Length(min=10, max=200, message=_l("Use at least 10 characters (200 at most)."))
    return (
        PasswordField(label, description=_l("At least 10 characters."), validators=[REQUIRED, length]),
        PasswordField(
            repeat_label,
            validators=[REQUIRED, EqualTo("password", message=_l("The passwords do not match."))],
        ),
    )


class SignupForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[REQUIRED, EMAIL_SHAPE, Length(max=254, message=TOO_LONG)])
    password, confirm = new_password_fields(_l("Password"), _l("Repeat password"))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[REQUIRED, Length(max=200, message=TOO_LONG)])
    password, confirm = new_password_fields(_l("New password"), _l("Repeat new password"))


class EmailForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[REQUIRED, Length(max=254, message=TOO_LONG)])
