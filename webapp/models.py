"""Database models (SQLAlchemy 2.0, typed). Times are naive UTC from `clock.utcnow()`."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .clock import utcnow
from .extensions import Base


def new_public_id() -> str:
    return "usr_" + secrets.token_hex(12)


# User.newest_inquiry_at_load when the user loader did not read it (or it was used).
NOT_LOADED = object()


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=new_public_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    reminders_opt_out: Mapped[bool] = mapped_column(default=False)
    # The language pages, emails and reminders use (webapp/i18n.py); None until first sign-in.
    locale: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the person used the confirmation (or a password reset) link we mailed to
    # `email`: until then nothing is sent there on their behalf.
    email_confirmed_at: Mapped[datetime | None]

    inquiries: Mapped[list[Inquiry]] = relationship(back_populates="user", order_by="Inquiry.id.desc()", lazy="select")

    # Set by the user loader: the server-side login session this request runs under.
    login_session = None  # type: LoginSession | None
    # Set by the user loader, which reads it in the same query: the newest inquiry as the request
    # began (None: none), for the request's first get_current_inquiry (verification.py).
    newest_inquiry_at_load = NOT_LOADED  # type: Inquiry | None | object

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        """Flask-Login stores this in the cookie: the login session's key, not the user id."""
        if self.login_session is None or not getattr(self.login_session, "key", None):
            raise RuntimeError("get_id() is only meaningful right after start_login_session()")
        return str(self.login_session.key)

    @property
    def email_confirmed(self) -> bool:
        return self.email_confirmed_at is not None

    @property
    def has_full_session(self) -> bool:
        return self.login_session is not None and self.login_session.scope == "full"


class LoginSession(Base):
    """One signed-in browser. Signing out revokes it, so a replayed cookie signs nobody in."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    scope: Mapped[str] = mapped_column(String(20), default="full")  # full | verification
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    idle_seconds: Mapped[int]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
    key = None  # type: str | None  # the raw key: in memory only, never stored


class Inquiry(Base):
    """Our record of one Persona inquiry. `status` follows Persona via API reads and webhooks."""

    __tablename__ = "inquiries"

    id: Mapped[int] = mapped_column(primary_key=True)
    persona_id: Mapped[str] = mapped_column(String(80), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(32))  # an InquiryStatus (statuses.py), or one Persona added
    next_step_name: Mapped[str | None] = mapped_column(String(80))
    expires_at: Mapped[datetime | None]
    # Event time of the newest status we applied: an older webhook never moves it back.
    status_event_at: Mapped[datetime | None]
    session_token_ciphertext: Mapped[str | None] = mapped_column(Text)
    session_token_expires_at: Mapped[datetime | None]
    tokens_minted: Mapped[int] = mapped_column(default=0)
    # Set when Persona must end every session of this inquiry (the person signed out everywhere,
    # changed or reset the password, or was disabled); cleared once it has (persona_sessions.py).
    persona_sessions_end_due_at: Mapped[datetime | None]
    # Sessions Persona lists for it (its `sessions` relationship) at our latest read: the
    # session cap is counted on this, not on the tokens we minted (None: not read yet).
    persona_sessions: Mapped[int | None]
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(back_populates="inquiries")

    def drop_session_token(self) -> None:
        self.session_token_ciphertext = None
        self.session_token_expires_at = None


class WebhookEvent(Base):
    """A Persona event as received: stored (and committed) before it is acknowledged."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    inquiry_persona_id: Mapped[str | None] = mapped_column(String(80), index=True)
    event_created_at: Mapped[datetime | None]
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(40))


class LinkPurpose:
    """What an emailed link is for; a link is only ever accepted for its own purpose."""

    CONTINUE = "continue"  # continue the verification (the recovery link)
    CONFIRM_EMAIL = "confirm_email"  # prove the address of a new account
    RESET = "reset_password"  # choose a new password
    OPEN_IN_BROWSER = "open_in_browser"  # "Copy link" in an app's built-in browser, for the phone's own
    HANDOFF = "handoff"  # the QR code of "Continue on your phone" (webapp/handoff.py)


class RecoveryLink(Base):
    """An emailed link. Only the SHA-256 of its token is kept; one atomic update uses it."""

    __tablename__ = "recovery_links"
    __table_args__ = (Index("ix_recovery_links_user_unused", "user_id", "used_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    inquiry_id: Mapped[int | None] = mapped_column(ForeignKey("inquiries.id"))
    purpose: Mapped[str] = mapped_column(String(20), default=LinkPurpose.CONTINUE)
    locale: Mapped[str | None] = mapped_column(String(10))  # the email's language: the link opens in it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
    inquiry: Mapped[Inquiry | None] = relationship()


class ReminderSent(Base):
    """One reminder per inquiry and window; the unique constraint stops overlapping runs."""

    __tablename__ = "reminders_sent"
    __table_args__ = (UniqueConstraint("inquiry_id", "window", name="uq_reminder_window"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiries.id"))
    window: Mapped[str] = mapped_column(String(40))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class MailSent(Base):
    """One email we sent, by the mailbox it reaches: the per-address cap counts these."""

    __tablename__ = "mail_sent"
    __table_args__ = (Index("ix_mail_sent_key_time", "delivery_key", "sent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_key: Mapped[str] = mapped_column(String(254))
    template: Mapped[str] = mapped_column(String(40))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxStatus:
    """Where an outbox email is. `queued` and `sending` are open; the other three are final."""

    QUEUED = "queued"  # waiting for a worker (first try, or a retry at next_attempt_at)
    SENDING = "sending"  # claimed by a worker at claimed_at
    SENT = "sent"
    FAILED = "failed"  # a permanent refusal, or out of attempts
    DROPPED = "dropped"  # a request that turned out to need no email (e.g. no such account)


class OutboxEmail(Base):
    """One email to send, written in the same transaction as the link it carries.

    The task that sends it carries only `id`. The rendered message is kept encrypted until it
    is sent, then dropped; `last_error` names an error class or SMTP code, never the message."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next_attempt", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template: Mapped[str] = mapped_column(String(40))
    to_address: Mapped[str | None] = mapped_column(String(254))
    message_ciphertext: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    request_id: Mapped[str] = mapped_column(String(32), default="-")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
