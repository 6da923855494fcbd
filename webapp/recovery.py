"""Domain: recovery links ("continue on another device") and reminders.

A link is 256 random bits in the URL; only its SHA-256 is stored, bound to one user and
their inquiry, with an expiry. GET never uses it. One conditional UPDATE uses it, so of many
concurrent redemptions exactly one wins. It dies once the inquiry is final or the account
is disabled. Every email goes through the outbox (webapp.outbox), written in the transaction
that makes its link. "Send me a link" writes the same one row whether or not the address has an
account and leaves the rest to a worker, so it answers in the same time either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from . import accounts, outbox, services
from .clock import utcnow
from .extensions import db, execute_for_rowcount
from .i18n import account_locale
from .mail import build_message, mask_email, send_email
from .models import Inquiry, RecoveryLink, ReminderSent, User
from .security import hash_token, new_token
from .statuses import LINKS_LEAD_NOWHERE, RESUMABLE
from .verification import get_current_inquiry

log = logging.getLogger(__name__)

TOKEN_LENGTH = 43  # secrets.token_urlsafe(32)
SENDS_PER_HOUR = 3  # per address: more requests get the same answer and no email


class LinkProblem:
    """Why a link can't be used (all shown with the same page, except OTHER_ACCOUNT)."""

    INVALID = "invalid"
    OTHER_ACCOUNT = "other_account"


class LinkPurpose(StrEnum):
    """What an emailed link is for. `/r` accepts only CONTINUE links; another purpose (an email
    confirmation, say) is never accepted in its place."""

    CONTINUE = "continue"


@dataclass
class LinkCheck:
    link: RecoveryLink | None
    problem: str | None


# -- links -----------------------------------------------------------------------------------
def issue_link(
    user: User, inquiry: Inquiry | None, purpose: LinkPurpose = LinkPurpose.CONTINUE, locale: str | None = None
) -> str:
    """A new link URL for `user` (commits), for an email in `locale`. The raw token exists only
    in the returned URL."""
    url = _add_link(user, inquiry, purpose, locale)
    db.session.commit()
    return url


def _add_link(
    user: User, inquiry: Inquiry | None, purpose: LinkPurpose = LinkPurpose.CONTINUE, locale: str | None = None
) -> str:
    """A new link in the current transaction (the caller commits); its URL."""
    token = new_token()
    ttl = current_app.config["RECOVERY_LINK_TTL_SECONDS"]
    db.session.add(
        RecoveryLink(
            token_hash=hash_token(token),
            user_id=user.id,
            inquiry_id=inquiry.id if inquiry else None,
            purpose=purpose,
            locale=locale,
            expires_at=utcnow() + timedelta(seconds=ttl),
        )
    )
    return f"{current_app.config['PUBLIC_BASE_URL']}/r/{token}"


def link_locale(token_hash: str | None) -> str | None:
    """The language of the email a link was sent in (reads only; uses nothing)."""
    if not token_hash:
        return None
    return db.session.scalar(select(RecoveryLink.locale).where(RecoveryLink.token_hash == token_hash))


def looks_like_token(token: str) -> bool:
    return len(token) == TOKEN_LENGTH and all(c.isalnum() or c in "-_" for c in token)


def check_link(token_hash: str | None, signed_in_user_id: int | None) -> LinkCheck:
    """Whether the link (by hash) can be used now, by this browser. Uses nothing up."""
    if not token_hash:
        return LinkCheck(None, LinkProblem.INVALID)
    link = db.session.scalar(
        select(RecoveryLink).where(RecoveryLink.token_hash == token_hash, RecoveryLink.purpose == LinkPurpose.CONTINUE)
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
    current = get_current_inquiry(link.user)
    if link.inquiry_id is not None and (current is None or current.id != link.inquiry_id):
        return False  # a newer inquiry replaced the one this link was for
    return current is None or current.status not in LINKS_LEAD_NOWHERE


def redeem_link(token_hash: str | None, signed_in_user_id: int | None) -> LinkCheck:
    """Use the link: exactly one concurrent caller gets it (one atomic conditional UPDATE)."""
    check = check_link(token_hash, signed_in_user_id)
    if check.problem is not None or check.link is None:
        db.session.rollback()
        return check
    now = utcnow()
    used = execute_for_rowcount(
        update(RecoveryLink)
        .where(
            RecoveryLink.token_hash == token_hash,
            RecoveryLink.purpose == LinkPurpose.CONTINUE,
            RecoveryLink.used_at.is_(None),
            RecoveryLink.revoked_at.is_(None),
            RecoveryLink.expires_at > now,
        )
        .values(used_at=now)
    )
    db.session.commit()
    if used != 1:
        return LinkCheck(None, LinkProblem.INVALID)
    log.info("recovery link used by user %s", check.link.user.public_id)
    return check


def send_link_to_user(user: User) -> bool:
    """Email `user` a fresh link, unless they had SENDS_PER_HOUR already (commits the link and
    its outbox row together). Returns whether one was queued."""
    prepared = _link_email(user)
    if prepared is None:
        db.session.rollback()
        return False
    outbox.add_email(user.email, prepared.template, prepared.message)
    db.session.commit()
    return True


def _link_email(user: User) -> outbox.Prepared | None:
    """A new link (in the current transaction) and the email carrying it, in the person's
    language; None if none is due."""
    if not user.active:
        return None
    hour_ago = utcnow() - timedelta(hours=1)
    recent = (
        db.session.scalar(
            select(func.count(RecoveryLink.id)).where(
                RecoveryLink.user_id == user.id, RecoveryLink.created_at > hour_ago
            )
        )
        or 0
    )
    if recent >= SENDS_PER_HOUR:
        log.info("recovery email to %s skipped: %d sent this hour", mask_email(user.email), recent)
        return None
    inquiry = get_current_inquiry(user)
    if inquiry is not None and inquiry.status in LINKS_LEAD_NOWHERE:
        return None  # nothing left to continue
    locale = account_locale(user)
    url = _add_link(user, inquiry, locale=locale)
    hours = current_app.config["RECOVERY_LINK_TTL_SECONDS"] // 3600
    return outbox.Prepared("recovery", build_message(user.email, "recovery", locale, link=url, valid_hours=hours))


def prepare_link_request(email: str) -> outbox.Prepared | None:
    """For the worker: the link email an address asked for, if it has an account that may have
    one now (the link is in the caller's transaction). None: no email, and nobody is told."""
    user = accounts.get_user_by_email(email)
    return _link_email(user) if user is not None else None


def request_link_for_user(user: User) -> None:
    """ "Email me a link" for a signed-in person: the link and its email commit together; a
    worker sends it (the page answers before the mail is sent)."""
    send_link_to_user(user)


def request_link_for(email: str) -> None:
    """ "Send me a new link": one outbox row and a commit, whether or not the address has an
    account; a worker looks it up and sends (or drops) it."""
    outbox.add_request(accounts.normalize_email(email), "recovery-request")
    db.session.commit()


# -- reminders -------------------------------------------------------------------------------
@dataclass
class Reminder:
    inquiry: Inquiry
    window: str


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="unsubscribe-reminders")


def unsubscribe_url(user: User) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/unsubscribe/{_serializer().dumps(user.public_id)}"


def user_for_unsubscribe(token: str) -> User | None:
    try:
        public_id = _serializer().loads(token)
    except BadSignature:
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
    """Current, resumable, idle inquiries of active, subscribed people, due for a window."""
    now = now or utcnow()
    limit = current_app.config["REMINDER_MAX_PER_INQUIRY"]
    query = (
        select(Inquiry)
        .join(User)
        .where(Inquiry.status.in_(RESUMABLE), User.active.is_(True), User.reminders_opt_out.is_(False))
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
        if send_reminder(reminder):
            sent += 1
            if on_sent is not None:
                on_sent(reminder)
    return ReminderRun(len(due), sent, 0)
