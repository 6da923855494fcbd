"""Email addresses: the one rule for what we accept, store, compare and send to.

An address enters through a form, the support CLI or an old row. `normalize_address` is the
only gate: `email-validator` parses it (syntax only: no DNS, there is no network to ask), and
anything but a plain `local@domain` is refused: display names and angle brackets
(`0<victim@target.example>`, which SMTP would deliver to the victim), comments, route
addresses, quoted local parts, domain literals, non-ASCII local parts, control characters
and NUL. What comes out is the address in ASCII (IDNA domain), lower-cased: the form we store,
look up and send to, so two spellings of one mailbox are one account.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from flask import current_app, has_app_context

MAX_LENGTH = 254
ASK = "Enter an email address like name@example.com."


class InvalidAddressError(ValueError):
    """Not an address we accept; `str(exc)` is a sentence a person can act on."""


def normalize_address(raw: str) -> str:
    """The stored form of `raw` (ASCII, lower-cased). Raises InvalidAddressError."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_LENGTH:
        raise InvalidAddressError(ASK)
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise InvalidAddressError(f"{ASK} It contains characters that can't be in an address.")
    try:
        parsed = validate_email(
            raw,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_display_name=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_empty_local=False,
            test_environment=_test_domains_allowed(),
        )
    except EmailNotValidError as exc:
        raise InvalidAddressError(f"{ASK} {exc}") from exc
    address = str(parsed.ascii_email).lower()
    if len(address) > MAX_LENGTH:
        raise InvalidAddressError(f"{ASK} That one is too long.")
    return address


def is_valid_address(raw: str) -> bool:
    try:
        normalize_address(raw)
    except InvalidAddressError:
        return False
    return True


def delivery_key(address: str) -> str:
    """The mailbox an address reaches, for counting mail: `name+tag@x` lands in `name@x`
    (sub-addressing, RFC 5233), so tags don't multiply what one inbox receives."""
    local, _, domain = address.lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def mask_address(address: str) -> str:
    """`j•••@example.com`: enough for a person to recognise their account, not to read it."""
    local, sep, domain = address.rpartition("@")
    if not sep or not local:
        return "•••"
    return f"{local[:1]}•••@{domain}"


def _test_domains_allowed() -> bool:
    """`.test` addresses (the demo users of `make run`, the tests) only outside production."""
    return has_app_context() and bool(current_app.config.get("EMAIL_ALLOW_TEST_DOMAINS"))
