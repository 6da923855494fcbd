"""Domain: recovery links ("continue on another device") and reminders.

A link is 256 random bits in the URL; only its SHA-256 is stored, bound to one user and
their inquiry, with an expiry. GET never uses it. One conditional UPDATE uses it, so of many
concurrent redemptions exactly one wins. It dies once the inquiry is final or the account
is disabled. Every email goes through the outbox (webapp.outbox), written in the transaction
that makes its link. "Send me a link", "forgot password" and sign-up write the same one row
whatever the address and leave the rest to a worker, so they answer in the same time either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from . import accounts, i18n, outbox, services
from .addresses import delivery_key
from .clock import utcnow
from .extensions import db, execute_for_rowcount
from .i18n import account_locale, current_locale
from .mail import MailError, build_message, check_deliverable, mask_email, send_email  # noqa: F401 - MailError: callers catch it from here
from .models import Inquiry, LinkPurpose, MailSent, RecoveryLink, ReminderSent, User
from .security import derived_fernet, hash_token, new_token
from .statuses import LINKS_LEAD_NOWHERE, RESUMABLE
from .verification import get_current_inquiry

log = logging.getLogger(__name__)

TOKEN_LENGTH = 43  # secrets.token_urlsafe(32)


class LinkProblem:
    """Why a link can't be used (all shown with the same page, except OTHER_ACCOUNT)."""

    INVALID = "invalid"
    OTHER_ACCOUNT = "other_account"


@dataclass
class LinkCheck:
    link: RecoveryLink | None
    problem: str | None


# -- links -----------------------------------------------------------------------------------
# Where each kind of link lands (the token is taken out of the address bar there).
LINK_PATHS = {
    LinkPurpose.CONTINUE: "/r/",
    LinkPurpose.CONFIRM_EMAIL: "/confirm-email/",
    LinkPurpose.RESET: "/password/reset/",
    LinkPurpose.OPEN_IN_BROWSER: "/open/",
    LinkPurpose.HANDOFF: "/h/",
}


# Links that lead into one inquiry: they die with it (or when a newer one replaces it).
LINKS_TO_AN_INQUIRY = frozenset({LinkPurpose.CONTINUE, LinkPurpose.OPEN_IN_BROWSER, LinkPurpose.HANDOFF})


def link_ttl_seconds(purpose: str) -> int:
    config = current_app.config
    return {
        LinkPurpose.CONTINUE: config["RECOVERY_LINK_TTL_SECONDS"],
        LinkPurpose.CONFIRM_EMAIL: config["CONFIRM_EMAIL_LINK_TTL_SECONDS"],
        LinkPurpose.RESET: config["PASSWORD_RESET_LINK_TTL_SECONDS"],
        LinkPurpose.OPEN_IN_BROWSER: config["OPEN_IN_BROWSER_LINK_TTL_SECONDS"],
        LinkPurpose.HANDOFF: config["HANDOFF_LINK_TTL_SECONDS"],
    }[purpose]


def issue_link(
    user: User, inquiry: Inquiry | None, purpose: str = LinkPurpose.CONTINUE, locale: str | None = None
) -> str:
    """A new link URL for `user` (commits), for an email in `locale`. The raw token exists only
    in the returned URL."""
    url = _add_link(user, inquiry, purpose, locale)
    db.session.commit()
    return url


def _add_link(
    user: User, inquiry: Inquiry | None, purpose: str = LinkPurpose.CONTINUE, locale: str | None = None
) -> str:
    """A new link in the current transaction (the caller commits); its URL."""
    token = new_token()
    db.session.add(
        RecoveryLink(
            token_hash=hash_token(token),
            user_id=user.id,
            inquiry_id=inquiry.id if inquiry else None,
            purpose=purpose,
            locale=locale,
            expires_at=utcnow() + timedelta(seconds=link_ttl_seconds(purpose)),
        )
    )
    return f"{current_app.config['PUBLIC_BASE_URL']}{LINK_PATHS[purpose]}{token}"


def issue_open_in_browser_link(user: User) -> str:
    """ "Copy link" in an app's built-in browser: a fresh single-use link to the current inquiry,
    short-lived, for the phone's own browser (commits). Earlier unused ones of this kind die, so
    only the link last copied works."""
    db.session.execute(
        update(RecoveryLink)
        .where(
            RecoveryLink.user_id == user.id,
            RecoveryLink.purpose == LinkPurpose.OPEN_IN_BROWSER,
            RecoveryLink.used_at.is_(None),
            RecoveryLink.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return issue_link(user, get_current_inquiry(user), LinkPurpose.OPEN_IN_BROWSER, locale=current_locale())


def link_locale(token_hash: str | None) -> str | None:
    """The language of the email a link was sent in (reads only; uses nothing)."""
    if not token_hash:
        return None
    return db.session.scalar(select(RecoveryLink.locale).where(RecoveryLink.token_hash == token_hash))


def looks_like_token(token: str) -> bool:
    return len(token) == TOKEN_LENGTH and all(c.isalnum() or c in "-_" for c in token)


def check_link(token_hash: str | None, signed_in_user_id: int | None, purpose: str = LinkPurpose.CONTINUE) -> LinkCheck:
    """Whether the link (by hash) can be used now, by this browser, for `purpose` (a link is
    good for its own purpose only). Uses nothing up."""
    if not token_hash:
        return LinkCheck(None, LinkProblem.INVALID)
    link = db.session.scalar(
        select(RecoveryLink).where(RecoveryLink.token_hash == token_hash, RecoveryLink.purpose == purpose)
    )
    if link is None or not _is_usable(link):
        return LinkCheck(None, LinkProblem.INVALID)
    if signed_in_user_id is not None and signed_in_user_id != link.user_id:
        return LinkCheck(link, LinkProblem.OTHER_ACCOUNT)
    return LinkCheck(link, None)


def _is_usable(link: RecoveryLink) -> bool:
    if link.used_at is not None or link.revoked_at is not None or link.expires_at <= utcnow():
        return False
    if not link.user.active:
        return False
    if link.purpose not in LINKS_TO_AN_INQUIRY:
        return True
    current = get_current_inquiry(link.user)
    if link.inquiry_id is not None and (current is None or current.id != link.inquiry_id):
        return False  # a newer inquiry replaced the one this link was for
    return current is None or current.status not in LINKS_LEAD_NOWHERE


def redeem_link(
    token_hash: str | None, signed_in_user_id: int | None, purpose: str = LinkPurpose.CONTINUE
) -> LinkCheck:
    """Use the link: exactly one concurrent caller gets it (one atomic conditional UPDATE)."""
    check = check_link(token_hash, signed_in_user_id, purpose)
    if check.problem is not None or check.link is None:
        db.session.rollback()
        return check
    now = utcnow()
    used = execute_for_rowcount(
        update(RecoveryLink)
        .where(
            RecoveryLink.token_hash == token_hash,
            RecoveryLink.purpose == purpose,
            RecoveryLink.used_at.is_(None),
            RecoveryLink.revoked_at.is_(None),
            RecoveryLink.expires_at > now,
        )
        .values(used_at=now)
    )
    db.session.commit()
    if used != 1:
        return LinkCheck(None, LinkProblem.INVALID)
    log.info("%s link used by user %s", purpose, check.link.user.public_id)
    return check


def _capped_email(address: str, template: str, locale: str | None = None, **context) -> outbox.Prepared | None:
    """The message for `address`, counted against its mailbox's hourly share (MailSent, in the
    current transaction); None when the share is used up. Raises MailError for an address we
    do not accept."""
    if mail_cap_reached(address):
        log.info("email %r to %s skipped: that mailbox had its share this hour", template, mask_email(address))
        return None
    check_deliverable(address, template)  # raises UndeliverableAddressError
    db.session.add(MailSent(delivery_key=delivery_key(address), template=template))
    return outbox.Prepared(template, build_message(address, template, locale, **context))


def _queue(address: str, prepared: outbox.Prepared | None) -> bool:
    """Queue what was prepared, committing it with its link and count; roll back if nothing."""
    if prepared is None:
        db.session.rollback()
        return False
    outbox.add_email(address, prepared.template, prepared.message)
    db.session.commit()
    return True


def send_capped(address: str, template: str, **context) -> bool:
    """Queue an email unless the mailbox `address` reaches had MAIL_PER_ADDRESS_PER_HOUR messages
    this hour (counted by delivery key, so `name+tag@x` counts as `name@x`). Returns whether."""
    return _queue(address, _capped_email(address, template, **context))


def _continue_email(user: User) -> outbox.Prepared | None:
    """A fresh link to continue and its email (in the current transaction), unless the account
    is disabled, its address is not confirmed, the verification is over, or the mailbox had its
    hourly share."""
    if not user.active or not user.email_confirmed:
        return None
    inquiry = get_current_inquiry(user)
    if inquiry is not None and inquiry.status in LINKS_LEAD_NOWHERE:
        return None  # nothing left to continue
    if mail_cap_reached(user.email):
        return None
    locale = account_locale(user)
    url = _add_link(user, inquiry, locale=locale)
    hours = current_app.config["RECOVERY_LINK_TTL_SECONDS"] // 3600
    return _capped_email(user.email, "recovery", locale=locale, link=url, valid_hours=hours)


def send_link_to_user(user: User) -> bool:
    """Email `user` a fresh link to continue (the link, its count and its outbox row commit
    together). Returns whether one was queued."""
    return _queue(user.email, _continue_email(user))


def mail_cap_reached(address: str) -> bool:
    """Whether the mailbox had its hourly share already (checked before making a link)."""
    hour_ago = utcnow() - timedelta(hours=1)
    recent = db.session.scalar(
        select(func.count(MailSent.id)).where(
            MailSent.delivery_key == delivery_key(address), MailSent.sent_at > hour_ago
        )
    )
    return (recent or 0) >= current_app.config["MAIL_PER_ADDRESS_PER_HOUR"]


def prepare_link_request(email: str) -> outbox.Prepared | None:
    """For the worker: the link email an address asked for, if it has an account that may have
    one now (in the caller's transaction). None: no email, and nobody is told."""
    user = accounts.get_user_by_email(email)
    return _continue_email(user) if user is not None else None


def request_link_for_user(user: User) -> None:
    """ "Email me a link" for a signed-in person: queued now, sent by a worker."""
    send_link_to_user(user)


def request_link_for(email: str) -> None:
    """ "Send me a new link": one outbox row and a commit whatever the address; a worker looks
    it up and sends (or drops) it."""
    outbox.add_request(email, "recovery-request")
    db.session.commit()


# -- confirming an address, resetting a password -----------------------------------------
def _confirmation_email(user: User) -> outbox.Prepared | None:
    if user.email_confirmed or not user.active or mail_cap_reached(user.email):
        return None
    locale = account_locale(user)
    url = _add_link(user, None, LinkPurpose.CONFIRM_EMAIL, locale=locale)
    hours = current_app.config["CONFIRM_EMAIL_LINK_TTL_SECONDS"] // 3600
    return _capped_email(user.email, "confirm_email", locale=locale, link=url, valid_hours=hours)


def send_confirmation(user: User) -> bool:
    """Email a new account's address the link that proves it is theirs (capped per mailbox)."""
    return _queue(user.email, _confirmation_email(user))


def _account_exists_email(email: str) -> outbox.Prepared | None:
    base = current_app.config["PUBLIC_BASE_URL"]
    owner = accounts.get_user_by_email(email)  # the mailbox's own account: its language
    return _capped_email(
        email,
        "account_exists",
        locale=account_locale(owner) if owner is not None else None,
        login_url=f"{base}/login",
        forgot_url=f"{base}/password/forgot",
    )


def send_account_exists_notice(email: str) -> bool:
    """Someone signed up with an address that has an account: tell its mailbox (no link that
    signs anyone in), and tell the person at the screen nothing more than a new sign-up."""
    return _queue(email, _account_exists_email(email))


def prepare_password_reset(email: str) -> outbox.Prepared | None:
    """For the worker: a short-lived reset link if the address has an active account (also an
    unconfirmed one: using the link proves the mailbox, and confirms it)."""
    user = accounts.get_user_by_email(email)
    if user is None or not user.active or mail_cap_reached(user.email):
        return None
    locale = account_locale(user)
    url = _add_link(user, None, LinkPurpose.RESET, locale=locale)
    minutes = current_app.config["PASSWORD_RESET_LINK_TTL_SECONDS"] // 60
    return _capped_email(user.email, "reset_link", locale=locale, link=url, valid_minutes=minutes)


def send_password_reset(email: str) -> None:
    """Queue the reset email now (support and tests; the page uses request_password_reset)."""
    user = accounts.get_user_by_email(email)
    if user is not None:
        _queue(user.email, prepare_password_reset(email))


def request_password_reset(email: str) -> None:
    """ "Forgot password": one outbox row and a commit whatever the address; a worker decides."""
    outbox.add_request(email, "reset-request")
    db.session.commit()


def prepare_confirmation(email: str) -> outbox.Prepared | None:
    """For the worker, after a sign-up that made an account: its confirmation link."""
    user = accounts.get_user_by_email(email)
    return _confirmation_email(user) if user is not None else None


def prepare_account_exists_notice(email: str) -> outbox.Prepared | None:
    """For the worker, after a sign-up with an address that had an account: a notice to it."""
    user = accounts.get_user_by_email(email)
    return _account_exists_email(user.email) if user is not None else None


def sign_up(email: str, password: str) -> User | None:
    """Create an unconfirmed account and queue its confirmation link; for an address that has an
    account already, a notice to that mailbox instead. The same answer and the same work either
    way (one outbox row; a worker decides). Returns the new user, or None."""
    try:
        # The browser's language: the confirmation email is written in it.
        user: User | None = accounts.create_user(email, password, locale=i18n.locale_for_new_sign_in(None))
    except accounts.EmailTakenError:
        user = None
    outbox.add_request(email, "confirm-request" if user else "exists-request")
    db.session.commit()
    return user


# -- reminders -------------------------------------------------------------------------------
@dataclass
class Reminder:
    inquiry: Inquiry
    window: str


def _unsubscribe_fernet() -> Fernet:
    return derived_fernet(current_app.config["SECRET_KEY"], b"unsubscribe-reminders")


def unsubscribe_url(user: User) -> str:
    """A link that stops reminders without signing in: the account's id encrypted (not just
    signed, so it can't be read), dated, good for UNSUBSCRIBE_TOKEN_TTL_SECONDS."""
    token = _unsubscribe_fernet().encrypt(user.public_id.encode()).decode()
    return f"{current_app.config['PUBLIC_BASE_URL']}/unsubscribe/{token}"


def user_for_unsubscribe(token: str) -> User | None:
    """The account of a live unsubscribe token, else None (forged, altered or expired)."""
    try:
        public_id = (
            _unsubscribe_fernet()
            .decrypt(token.encode(), ttl=current_app.config["UNSUBSCRIBE_TOKEN_TTL_SECONDS"])
            .decode()
        )
    except (InvalidToken, ValueError):
        return None
    return db.session.scalar(select(User).where(User.public_id == public_id))


def set_reminders(user: User, *, enabled: bool) -> None:
    user.reminders_opt_out = not enabled
    db.session.commit()


def reminder_window(inquiry: Inquiry, now: datetime) -> str | None:
    """Which reminder this inquiry is due for now, if any: before it expires, or once after."""
    config = current_app.config
    if inquiry.expires_at is None:
        return None
    if now - inquiry.last_activity_at < timedelta(seconds=config["REMINDER_IDLE_SECONDS"]):
        return None
    stamp = inquiry.expires_at.strftime("%Y%m%dT%H%M%S")
    before = inquiry.expires_at - timedelta(seconds=config["REMINDER_BEFORE_EXPIRY_SECONDS"])
    if before <= now < inquiry.expires_at:
        return f"before-expiry:{stamp}"
    if inquiry.expires_at <= now < inquiry.expires_at + timedelta(days=7):
        # An expired inquiry can still be resumed: one nudge after it lapsed.
        return f"after-expiry:{stamp}"
    return None


def due_reminders(now: datetime | None = None) -> list[Reminder]:
    """Current, resumable, idle inquiries of active, subscribed people with a confirmed address,
    due for a window."""
    now = now or utcnow()
    limit = current_app.config["REMINDER_MAX_PER_INQUIRY"]
    query = (
        select(Inquiry)
        .join(User)
        .where(
            Inquiry.status.in_(RESUMABLE),
            User.active.is_(True),
            User.reminders_opt_out.is_(False),
            User.email_confirmed_at.is_not(None),
        )
        .order_by(Inquiry.id)
    )
    due = []
    for inquiry in db.session.scalars(query):
        if get_current_inquiry(inquiry.user) is not inquiry:
            continue
        window = reminder_window(inquiry, now)
        if window is None:
            continue
        sent = db.session.scalars(select(ReminderSent.window).where(ReminderSent.inquiry_id == inquiry.id)).all()
        if window in sent or len(sent) >= limit:
            continue
        due.append(Reminder(inquiry, window))
    return due


def send_reminder(reminder: Reminder) -> bool:
    """Claim the window (unique row, so overlapping runs send once) and queue the email, in one
    transaction. Returns whether this run queued it."""
    inquiry = reminder.inquiry
    user = inquiry.user
    locale = account_locale(user)
    db.session.add(ReminderSent(inquiry_id=inquiry.id, window=reminder.window))
    send_email(
        user.email,
        "reminder",
        locale=locale,
        link=_add_link(user, inquiry, locale=locale),
        unsubscribe_url=unsubscribe_url(user),
        expired=reminder.window.startswith("after"),
        expires_at=inquiry.expires_at,
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False  # another run has it
    return True


# -- pacing reminders to Persona's budget -----------------------------------------------------
def reminders_per_hour(config: dict) -> int:
    """How many reminders an hour the Persona budget supports: if every reminded person clicks
    within the hour and each click costs REMINDER_CALLS_PER_CLICK calls, their calls stay within
    REMINDER_BUDGET_SHARE of the budget (the rest is for everyone else)."""
    calls_per_hour = config["PERSONA_BUDGET_CALLS"] * 3600 / config["PERSONA_BUDGET_WINDOW_SECONDS"]
    return int(calls_per_hour * config["REMINDER_BUDGET_SHARE"] / config["REMINDER_CALLS_PER_CLICK"])


@dataclass
class ReminderRun:
    due: int
    sent: int
    deferred: int  # left for the next run: the pace did not allow them within this one


def send_due_reminders(
    *,
    run_seconds: float | None = None,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_sent: Callable[[Reminder], None] | None = None,
) -> ReminderRun:
    """Send what is due, paced: at most reminders_per_hour() / 60 a minute across every process
    (a shared moving window), so the clicks they cause fit Persona's budget. Waits for the
    pace up to `run_seconds` (REMINDER_RUN_SECONDS), then stops: the rest go next run."""
    due = due_reminders(now)
    budget_seconds = current_app.config["REMINDER_RUN_SECONDS"] if run_seconds is None else run_seconds
    ends = time.monotonic() + budget_seconds
    sent = 0
    for index, reminder in enumerate(due):
        while (wait := services.reminder_pace().take()) > 0:
            if time.monotonic() + wait > ends:
                log.info("reminders paced: %d sent, %d left for the next run", sent, len(due) - index)
                return ReminderRun(len(due), sent, len(due) - index)
            sleep(wait)
        try:
            if not send_reminder(reminder):
                continue
        except Exception:  # one person's bad data never stops everyone else's reminder
            db.session.rollback()
            log.exception("reminder for inquiry %s failed", reminder.inquiry.persona_id)
            continue
        sent += 1
        if on_sent is not None:
            on_sent(reminder)
    return ReminderRun(len(due), sent, 0)
