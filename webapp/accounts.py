"""Domain: accounts and server-side login sessions (sign-up, sign-in, sign-out)."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app, session
from flask_login import current_user, login_user
from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from . import i18n
from .addresses import InvalidAddressError, normalize_address
from .clock import utcnow
from .extensions import commit_keeping_loaded, db, execute_for_rowcount
from .models import Inquiry, LoginSession, RecoveryLink, User
from .security import hash_token, new_token

# Compared against when the email is unknown, so both branches cost one hash check.
_DUMMY_HASH = generate_password_hash("not-a-real-password-0000")
# Write last_seen_at at most this often: reading a page should not always write.
_TOUCH_SECONDS = 60


class EmailTakenError(Exception):
    """An account with that email exists already."""


def get_user_by_email(email: str) -> User | None:
    """The account of that address (normalised first); None for none or a refused address."""
    try:
        address = normalize_address(email)
    except InvalidAddressError:
        return None
    return db.session.scalar(select(User).where(User.email == address))


def create_user(email: str, password: str, *, confirmed: bool = False, locale: str | None = None) -> User:
    """Create an account, its address unconfirmed unless `confirmed` (demo data, tests), in
    `locale` (its pages and emails). Raises InvalidAddressError or EmailTakenError."""
    user = User(
        email=normalize_address(email),
        password_hash=generate_password_hash(password),
        email_confirmed_at=utcnow() if confirmed else None,
        locale=locale,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise EmailTakenError(email) from exc
    return user


def set_locale(user: User, locale: str) -> None:
    """Store the language this account's pages and emails use."""
    user.locale = locale
    db.session.commit()


def authenticate(email: str, password: str) -> User | None:
    """The active user with that email and password, else None (same cost either way)."""
    user = get_user_by_email(email)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user


def start_login_session(user: User, scope: str = "full") -> LoginSession:
    """Open a server-side session for `user`; its raw key is on `.key` for the cookie only."""
    config = current_app.config
    if scope == "full":
        idle, absolute = config["LOGIN_SESSION_IDLE_SECONDS"], config["LOGIN_SESSION_ABSOLUTE_SECONDS"]
    else:
        idle = config["RECOVERY_SESSION_IDLE_SECONDS"]
        absolute = config["RECOVERY_SESSION_ABSOLUTE_SECONDS"]
    key = new_token()
    now = utcnow()
    row = LoginSession(
        key_hash=hash_token(key),
        user_id=user.id,
        scope=scope,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=absolute),
        idle_seconds=idle,
    )
    db.session.add(row)
    db.session.commit()
    row.key = key
    user.login_session = row
    return row


# Flask session keys that survive signing in: a confirmation link waits for its owner to sign in.
SIGN_IN_KEEPS = ("confirm_email_link",)


def sign_in(user: User, scope: str = "full") -> LoginSession:
    """Sign `user` in on this browser: whatever session the browser had ends on the server too,
    a fresh Flask session (nothing planted before sign-in survives it but SIGN_IN_KEEPS), a new
    server-side login session, and Flask-Login's cookie naming it."""
    if current_user.is_authenticated:
        end_login_session(current_user)
    kept = {key: session[key] for key in SIGN_IN_KEEPS if key in session}
    session.clear()
    session.update(kept)
    row = start_login_session(user, scope)
    if scope == "full":
        # A language chosen on this browser before signing in becomes the account's.
        locale = i18n.locale_for_new_sign_in(user.locale)
        if locale != user.locale:
            set_locale(user, locale)
    login_user(user)
    return row


def _session_user_and_newest_inquiry() -> Select[LoginSession, Inquiry]:
    """One query per request for the login session, its user and the user's newest inquiry,
    which /verify (the page reloaded most) and its handoff poll need next: a round trip costs
    more than the join (PERFORMANCE.md). Built once: building it cost more than running it."""
    theirs = aliased(Inquiry)
    newest = select(func.max(theirs.id)).where(theirs.user_id == LoginSession.user_id).scalar_subquery()
    return (
        select(LoginSession, Inquiry)
        .options(joinedload(LoginSession.user))
        .outerjoin(Inquiry, Inquiry.id == newest)
        .where(LoginSession.key_hash == bindparam("key_hash"))
    )


_SESSION_USER_AND_NEWEST_INQUIRY = _session_user_and_newest_inquiry()


def load_session_user(key: str) -> User | None:
    """The user whose live login session has this key (Flask-Login's user loader)."""
    if not key or len(key) > 200:
        return None
    found = db.session.execute(_SESSION_USER_AND_NEWEST_INQUIRY, {"key_hash": hash_token(key)}).first()
    if found is None:
        return None
    row, inquiry = found
    now = utcnow()
    if row.revoked_at is not None or row.expires_at <= now:
        return None
    if row.last_seen_at + timedelta(seconds=row.idle_seconds) <= now:
        return None
    user = row.user
    if not user.active:
        return None
    if (now - row.last_seen_at).total_seconds() > _TOUCH_SECONDS:
        row.last_seen_at = now
        # What was just read stays loaded: expiring it would read the session, the user and
        # the inquiry again, three round trips on most page views of a returning person.
        commit_keeping_loaded()
    row.key = key
    user.login_session = row
    user.newest_inquiry_at_load = inquiry
    return user


def seconds_left(user: User) -> int:
    """How long the user's current login session still signs this browser in if nothing else
    happens: the sooner of its idle and its absolute end, in whole seconds (0 when none)."""
    row = user.login_session
    if row is None:
        return 0
    now = utcnow()
    idle_end = row.last_seen_at + timedelta(seconds=row.idle_seconds)
    return max(0, int((min(idle_end, row.expires_at) - now).total_seconds()))


def end_login_session(user: User) -> None:
    """Sign out: the session row is revoked, so the old cookie signs nobody in again."""
    row = user.login_session
    if row is not None:
        row.revoked_at = utcnow()
        db.session.commit()


def live_login_sessions(user: User) -> list[LoginSession]:
    """The sessions of `user` that would still sign a browser in (newest first)."""
    now = utcnow()
    rows = db.session.scalars(
        select(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None), LoginSession.expires_at > now)
        .order_by(LoginSession.last_seen_at.desc())
    )
    return [row for row in rows if row.last_seen_at + timedelta(seconds=row.idle_seconds) > now]


def revoke_recovery_links(user_id: int, now: datetime, purpose: str | None = None) -> int:
    """Kill every unused emailed link of a user (of one purpose, or all); the caller commits.
    Returns how many."""
    only = [RecoveryLink.purpose == purpose] if purpose is not None else []
    return execute_for_rowcount(
        update(RecoveryLink)
        .where(
            RecoveryLink.user_id == user_id, RecoveryLink.used_at.is_(None), RecoveryLink.revoked_at.is_(None), *only
        )
        .values(revoked_at=now)
    )


def sign_out_everywhere(user: User, keep: LoginSession | None = None) -> tuple[int, int]:
    """A lost phone, a shared computer: every login session of `user` (but `keep`) ends, every
    link we emailed them dies, the stored Persona session token is dropped, and Persona is asked
    (by a worker, after the commit) to end the sessions of their open inquiries. Returns
    (sessions ended, links revoked)."""
    now = utcnow()
    others = [LoginSession.id != keep.id] if keep is not None else []
    sessions = execute_for_rowcount(
        update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None), *others)
        .values(revoked_at=now)
    )
    links = revoke_recovery_links(user.id, now)
    # The Persona session token we keep for the continue page goes too: no device gets it
    # from us again (the next page view resumes the inquiry with a new one).
    db.session.execute(
        update(Inquiry)
        .where(Inquiry.user_id == user.id, Inquiry.session_token_ciphertext.is_not(None))
        .values(session_token_ciphertext=None, session_token_expires_at=None)
    )
    # And Persona ends the sessions it opened (a token kept elsewhere opens nothing): a worker's job.
    from . import persona_sessions  # it needs statuses.py, which needs this module

    marked = persona_sessions.mark_for_ending(user.id, now)
    db.session.commit()
    persona_sessions.dispatch(marked)
    return sessions, links


def change_password(user: User, current: str, new: str) -> bool:
    """Set a new password if `current` is right. Whoever knew the old one is then signed out:
    every other session ends and emailed links die; this browser stays signed in."""
    if not check_password_hash(user.password_hash, current):
        return False
    user.password_hash = generate_password_hash(new)
    sign_out_everywhere(user, keep=user.login_session)  # commits both
    return True


def confirm_email(user: User) -> None:
    """The person used the link mailed to the account's address: it is theirs (commits)."""
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
        db.session.commit()


def reset_password(user: User, new: str) -> None:
    """ "Forgot password", last step (the link proved the mailbox): a new password, the address
    confirmed, and every session and emailed link of the account ended (commits)."""
    user.password_hash = generate_password_hash(new)
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
    sign_out_everywhere(user)


def set_active(user: User, active: bool) -> None:
    """Disable (signing out everywhere) or re-enable an account."""
    user.active = active
    db.session.commit()
    if not active:
        sign_out_everywhere(user)
