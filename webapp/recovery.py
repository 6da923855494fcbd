"""Domain: recovery links ("continue on another device") and reminders.

A link is 256 random bits in the URL; only its SHA-256 is stored, bound to one user and
their inquiry, with an expiry. GET never uses it. One conditional UPDATE uses it, so of many
concurrent redemptions exactly one wins. It dies once the inquiry is final or the account
is disabled. Sending happens in the background, so "send me a link" answers in the same time
whether or not the address has an account.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken
from flask import Flask, current_app, g, has_app_context
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from . import accounts, i18n, services
from .addresses import delivery_key
from .clock import utcnow
from .extensions import db, execute_for_rowcount
from .i18n import account_locale, current_locale
from .mail import MailError, mask_email, send_email
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


# -- background sending ----------------------------------------------------------------------
class Background:
    """A small worker pool for mail, so requests never wait on SMTP (and timing leaks nothing)."""

    def __init__(self, app: Flask, workers: int = 2) -> None:
        self._app = app
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mail")
        self._futures: set[Future] = set()
        self._lock = threading.Lock()

    def submit(self, fn, *args) -> None:
        request_id = g.get("request_id", "-") if has_app_context() else "-"

        def run() -> None:
            with self._app.app_context():
                g.request_id = request_id  # its log lines name the request that queued it
                try:
                    fn(*args)
                except Exception:  # a background job has nobody to tell but the log
                    log.exception("background job %s failed", getattr(fn, "__name__", fn))
                finally:
                    db.session.remove()

        future = self._pool.submit(run)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._futures.discard(future)

    def join(self, timeout: float = 10.0) -> None:
        """Wait for queued jobs (tests, CLI)."""
        with self._lock:
            pending = list(self._futures)
        for future in pending:
            future.result(timeout=timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Finish every queued job, then stop the workers (an app that is going away)."""
        self.join(timeout)
        self._pool.shutdown(wait=True)


# -- links -----------------------------------------------------------------------------------
# Where each kind of link lands (the token is taken out of the address bar there).
LINK_PATHS = {
    LinkPurpose.CONTINUE: "/r/",
    LinkPurpose.CONFIRM_EMAIL: "/confirm-email/",
    LinkPurpose.RESET: "/password/reset/",
    LinkPurpose.OPEN_IN_BROWSER: "/open/",
}


def link_ttl_seconds(purpose: str) -> int:
    config = current_app.config
    return {
        LinkPurpose.CONTINUE: config["RECOVERY_LINK_TTL_SECONDS"],
        LinkPurpose.CONFIRM_EMAIL: config["CONFIRM_EMAIL_LINK_TTL_SECONDS"],
        LinkPurpose.RESET: config["PASSWORD_RESET_LINK_TTL_SECONDS"],
        LinkPurpose.OPEN_IN_BROWSER: config["OPEN_IN_BROWSER_LINK_TTL_SECONDS"],
    }[purpose]


def issue_link(
    user: User, inquiry: Inquiry | None, purpose: str = LinkPurpose.CONTINUE, locale: str | None = None
) -> str:
    """A new link URL for `user` (commits), for an email in `locale`. The raw token exists only
    in the returned URL."""
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
    db.session.commit()
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
    if link.purpose not in (LinkPurpose.CONTINUE, LinkPurpose.OPEN_IN_BROWSER):
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


def send_capped(address: str, template: str, **context) -> bool:
    """Send through `send_email` unless the mailbox `address` reaches had MAIL_PER_ADDRESS_PER_HOUR
    messages this hour (counted by delivery key, so `name+tag@x` counts as `name@x`). Returns
    whether it was sent. Raises MailError."""
    if mail_cap_reached(address):
        log.info("email %r to %s skipped: that mailbox had its share this hour", template, mask_email(address))
        return False
    db.session.add(MailSent(delivery_key=delivery_key(address), template=template))
    db.session.commit()
    send_email(address, template, **context)
    return True


def send_link_to_user(user: User) -> bool:
    """Email `user` a fresh link to continue, unless the account is disabled, its address is
    not confirmed, the verification is over, or the mailbox had its hourly share. Returns
    whether it was sent."""
    if not user.active or not user.email_confirmed:
        return False
    inquiry = get_current_inquiry(user)
    if inquiry is not None and inquiry.status in LINKS_LEAD_NOWHERE:
        return False  # nothing left to continue
    if mail_cap_reached(user.email):
        return False
    locale = account_locale(user)
    url = issue_link(user, inquiry, locale=locale)
    hours = current_app.config["RECOVERY_LINK_TTL_SECONDS"] // 3600
    return send_capped(user.email, "recovery", locale=locale, link=url, valid_hours=hours)


def mail_cap_reached(address: str) -> bool:
    """Whether the mailbox had its hourly share already (checked before making a link)."""
    hour_ago = utcnow() - timedelta(hours=1)
    recent = db.session.scalar(
        select(func.count(MailSent.id)).where(
            MailSent.delivery_key == delivery_key(address), MailSent.sent_at > hour_ago
        )
    )
    return (recent or 0) >= current_app.config["MAIL_PER_ADDRESS_PER_HOUR"]


def send_link_to_address(email: str) -> None:
    """The "send me a new link" job: runs in the background, says nothing about the address."""
    user = accounts.get_user_by_email(email)
    if user is None:
        return
    try:
        send_link_to_user(user)
    except MailError:
        pass  # logged in send_email; the person can ask again


def _send_link_to_user_id(user_id: int) -> None:
    """The "email me a link" job (background): the person is read again when it runs."""
    user = db.session.get(User, user_id)
    if user is not None:
        send_link_to_user(user)


def request_link_for_user(user: User) -> None:
    """Queue a link for a signed-in person (the page answers before the mail is sent)."""
    services.background().submit(_send_link_to_user_id, user.id)


def request_link_for(email: str) -> None:
    """Queue a link for an address; the same (fast) path whether or not it has an account."""
    services.background().submit(send_link_to_address, email)


# -- confirming an address, resetting a password -----------------------------------------
def send_confirmation(user: User) -> bool:
    """Email a new account's address the link that proves it is theirs (capped per mailbox)."""
    if user.email_confirmed or not user.active or mail_cap_reached(user.email):
        return False
    locale = account_locale(user)
    url = issue_link(user, None, LinkPurpose.CONFIRM_EMAIL, locale=locale)
    hours = current_app.config["CONFIRM_EMAIL_LINK_TTL_SECONDS"] // 3600
    return send_capped(user.email, "confirm_email", locale=locale, link=url, valid_hours=hours)


def send_account_exists_notice(email: str) -> bool:
    """Someone signed up with an address that has an account: tell its mailbox (no link that
    signs anyone in), and tell the person at the screen nothing more than a new sign-up."""
    base = current_app.config["PUBLIC_BASE_URL"]
    owner = accounts.get_user_by_email(email)  # the mailbox's own account: its language
    return send_capped(
        email,
        "account_exists",
        locale=account_locale(owner) if owner is not None else None,
        login_url=f"{base}/login",
        forgot_url=f"{base}/password/forgot",
    )


def send_password_reset(email: str) -> None:
    """The "forgot password" job: a short-lived link if the address has an active account.
    Also for an unconfirmed address: using the link proves the mailbox, and confirms it."""
    user = accounts.get_user_by_email(email)
    if user is None or not user.active or mail_cap_reached(user.email):
        return
    locale = account_locale(user)
    url = issue_link(user, None, LinkPurpose.RESET, locale=locale)
    minutes = current_app.config["PASSWORD_RESET_LINK_TTL_SECONDS"] // 60
    try:
        send_capped(user.email, "reset_link", locale=locale, link=url, valid_minutes=minutes)
    except MailError:
        pass  # logged in send_email; the person can ask again


def _send_after_signup(user_id: int | None, email: str) -> None:
    try:
        if user_id is None:
            send_account_exists_notice(email)
            return
        user = db.session.get(User, user_id)
        if user is not None:
            send_confirmation(user)
    except MailError:
        pass  # logged in send_email; they can ask for it again from the confirm page


def sign_up(email: str, password: str) -> User | None:
    """Create an unconfirmed account and mail its confirmation link; for an address that has an
    account already, mail that mailbox a notice instead. The same answer and about the same
    time either way (no enumeration). Returns the new user, or None."""
    try:
        # The browser's language: the confirmation email is written in it.
        user: User | None = accounts.create_user(email, password, locale=i18n.locale_for_new_sign_in(None))
    except accounts.EmailTakenError:
        user = None
    services.background().submit(_send_after_signup, user.id if user else None, email)
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
    """Claim the window (unique row, so overlapping runs send once), then send. Returns sent."""
    inquiry = reminder.inquiry
    db.session.add(ReminderSent(inquiry_id=inquiry.id, window=reminder.window))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False  # another run has it
    user = inquiry.user
    locale = account_locale(user)
    try:
        send_email(
            user.email,
            "reminder",
            locale=locale,
            link=issue_link(user, inquiry, locale=locale),
            unsubscribe_url=unsubscribe_url(user),
            expired=reminder.window.startswith("after"),
            expires_at=inquiry.expires_at,
        )
    except MailError:
        db.session.execute(
            delete(ReminderSent).where(ReminderSent.inquiry_id == inquiry.id, ReminderSent.window == reminder.window)
        )
        db.session.commit()  # free the window: the next run tries again
        return False
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
