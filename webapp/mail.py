"""Email: `send_email(to, template, locale=..., **context)` is the only way mail is sent.

It renders the message and writes it to the outbox in the caller's transaction (webapp.outbox);
a Celery worker delivers it once that commits (`deliver_message`).

Each message is written in the recipient's language (subject, text and HTML parts), says so
in `Content-Language` and `<html lang dir>`, and formats its times for that language.

With MAIL_SMTP_HOST set, messages go over SMTP (STARTTLS and login as configured). Without
it (development, `make run`) each message is written as an `.eml` file to MAIL_OUTBOX_DIR.
Logs name the template and a masked recipient, never a link.
"""

from __future__ import annotations

import logging
import os
import smtplib
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app, render_template
from flask_babel import force_locale, lazy_gettext

from .addresses import is_valid_address, normalize_address
from .i18n import DEFAULT_LOCALE, html_lang, normalize_locale

log = logging.getLogger(__name__)

SUBJECTS = {
    "recovery": lazy_gettext("Continue your identity verification"),
    "reminder": lazy_gettext("Your identity verification is waiting for you"),
    "confirm_email": lazy_gettext("Confirm your email address"),
    "account_exists": lazy_gettext("You already have an account"),
    "reset_link": lazy_gettext("Reset your password"),
}


class MailError(Exception):
    """The message could not be handed to the mail server. `permanent`: the server refused it
    (5xx) or it can never go; trying again will not help. Otherwise (4xx, timeouts, no
    connection) it may."""

    def __init__(self, reason: str, *, permanent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def mask_email(address: str) -> str:
    name, _, domain = address.partition("@")
    return f"{name[:1]}***@{domain}" if domain else "***"


def build_message(to: str, template: str, locale: str | None = None, **context) -> EmailMessage:
    """The message for `email/<template>.txt` + `.html`, in `locale` (English if unknown)."""
    locale = normalize_locale(locale) or DEFAULT_LOCALE
    with force_locale(locale):
        return _build_message(to, template, locale, **context)


def _build_message(to: str, template: str, locale: str, **context) -> EmailMessage:
    context.setdefault("product_name", current_app.config["PRODUCT_NAME"])
    context.setdefault("support_email", current_app.config["SUPPORT_EMAIL"])
    message = EmailMessage()
    message["Subject"] = str(SUBJECTS[template])
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="continue-verification.local")
    message["Auto-Submitted"] = "auto-generated"
    if context.get("unsubscribe_url"):
        message["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
    message.set_content(render_template(f"email/{template}.txt", **context))
    message.add_alternative(render_template(f"email/{template}.html", **context), subtype="html")
    message["Content-Language"] = html_lang(locale)  # after the parts: set_content() clears Content-*
    return message


class UndeliverableAddressError(MailError):
    """The stored address is not one we accept (a row from before the strict rule)."""


def check_deliverable(to: str, template: str) -> None:
    """Mail goes to exactly `to`, a stored (normalised) address: anything else is refused,
    never parsed for another recipient. Raises UndeliverableAddressError."""
    if not is_valid_address(to) or normalize_address(to) != to:
        log.error("email %r not sent: %s is not an address we accept", template, mask_email(to))
        raise UndeliverableAddressError(template)


def send_email(to: str, template: str, locale: str | None = None, **context) -> None:
    """Render `email/<template>.txt` + `.html` in `locale` and queue it in the outbox for exactly
    `to` (check_deliverable), in the current transaction: it goes out after the caller commits,
    and not at all if it rolls back. Raises MailError for an address we do not accept."""
    from .outbox import add_email

    check_deliverable(to, template)
    add_email(to, template, build_message(to, template, locale, **context))


def deliver_message(message: EmailMessage, to: str) -> None:
    """Hand one message for `to` (the envelope recipient) to the mail server, or write it to
    the .eml outbox. Raises MailError, `permanent` or not."""
    config = current_app.config
    try:
        if config["MAIL_SMTP_HOST"]:
            _send_smtp(message, to)
        else:
            _write_outbox(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = sorted({code for code, _ in exc.recipients.values()})
        raise MailError(f"recipients refused {codes}", permanent=all(c >= 500 for c in codes)) from exc
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"{type(exc).__name__} {exc.smtp_code}", permanent=exc.smtp_code >= 500) from exc
    except (OSError, smtplib.SMTPServerDisconnected) as exc:
        raise MailError(type(exc).__name__, permanent=False) from exc
    except smtplib.SMTPException as exc:  # e.g. STARTTLS not offered: settings, not luck
        raise MailError(type(exc).__name__, permanent=True) from exc


def _send_smtp(message: EmailMessage, to: str) -> None:
    """Once the server has answered the message with 2xx it is theirs: what goes wrong while
    saying goodbye (QUIT timing out, the connection dropping) must not send it again."""
    config = current_app.config
    smtp = smtplib.SMTP(config["MAIL_SMTP_HOST"], config["MAIL_SMTP_PORT"], timeout=config["MAIL_SMTP_TIMEOUT_SECONDS"])
    try:
        if config["MAIL_SMTP_STARTTLS"]:
            smtp.starttls()
        if config["MAIL_SMTP_USERNAME"]:
            smtp.login(config["MAIL_SMTP_USERNAME"], config["MAIL_SMTP_PASSWORD"])
        smtp.send_message(message, to_addrs=[to])  # the envelope names `to`, not a parsed header
    except BaseException:
        smtp.close()
        raise
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException) as exc:
        log.info("mail server accepted the message; its goodbye failed (%s)", type(exc).__name__)
    finally:
        smtp.close()


def _write_outbox(message: EmailMessage) -> None:
    outbox = current_app.config["MAIL_OUTBOX_DIR"]
    os.makedirs(outbox, exist_ok=True)
    name = uuid.uuid4().hex
    partial = os.path.join(outbox, f".{name}.partial")
    with open(partial, "wb") as fh:
        fh.write(message.as_bytes())
    os.replace(partial, os.path.join(outbox, f"{name}.eml"))  # a reader never sees half a message
