"""The mail outbox: an email is a row written in the transaction that makes what it carries.

A request (or a periodic task) adds an `OutboxEmail` row and commits it together with, say, the
recovery link in it. Once that transaction has committed, the row's id, and only its id, goes to
a Celery worker (`webapp.tasks.deliver_email`) when the app context ends. The worker claims the
row with one conditional UPDATE (so of two deliveries of the same task exactly one sends),
sends it, and marks it sent in another. What goes wrong on the way is recorded on the row:
attempts, the last error (a class name or SMTP code), and when to try again. `sweep()` (every
minute, from beat) hands rows that nobody finished back to the workers, so a crash anywhere
(web process, worker, Redis emptied) still ends in a delivery once things are back.

The one window left is the one every mail system has: a worker killed after the mail server
took the message and before the row says so. That message is sent again, once.
"""

from __future__ import annotations

import email
import email.policy
import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage

from flask import Flask, current_app, g, has_app_context
from sqlalchemy import event, func, or_, select, update
from sqlalchemy.orm import Session

from . import services
from .extensions import db, execute_for_rowcount
from .mail import MailError, deliver_message, mask_email
from .models import OutboxEmail, OutboxStatus, utcnow

log = logging.getLogger(__name__)

_NEW_ROWS = "outbox_new_rows"  # Session.info: rows flushed in the open transaction
_READY_IDS = "_outbox_ready_ids"  # flask.g: ids committed, to hand to the workers


def add_email(to: str, template: str, message: EmailMessage) -> OutboxEmail:
    """Queue a rendered message, in the current transaction (the caller commits)."""
    row = OutboxEmail(template=template, to_address=to, message_ciphertext=_cipher().encrypt(message.as_string()))
    row.request_id = _request_id()
    db.session.add(row)
    return row


def add_request(to: str, template: str) -> OutboxEmail:
    """Queue an email that the worker prepares (`PREPARERS[template]`) before sending: for work
    that must take the same time in the request whatever its outcome (the caller commits)."""
    row = OutboxEmail(template=template, to_address=to, message_ciphertext=None, request_id=_request_id())
    db.session.add(row)
    return row


def _request_id() -> str:
    return (g.get("request_id", "-") if has_app_context() else "-")[:32]


def _cipher():
    return current_app.extensions["token_cipher"]


# -- handing committed rows to the workers -----------------------------------------------------
def init_app(app: Flask) -> None:
    """Hand rows to the workers once their transaction has committed, when the context ends."""
    app.teardown_appcontext(_dispatch_ready)


@event.listens_for(Session, "after_flush")
def _remember_new_rows(session: Session, _flush_context) -> None:
    rows = [obj for obj in session.new if isinstance(obj, OutboxEmail)]
    if rows:
        session.info.setdefault(_NEW_ROWS, []).extend(row.id for row in rows)


@event.listens_for(Session, "after_commit")
def _rows_committed(session: Session) -> None:
    ids = session.info.pop(_NEW_ROWS, [])
    if ids and has_app_context():
        g.setdefault(_READY_IDS, []).extend(ids)


@event.listens_for(Session, "after_rollback")
def _rows_rolled_back(session: Session) -> None:
    session.info.pop(_NEW_ROWS, None)


def _dispatch_ready(_exc: BaseException | None = None) -> None:
    ids = g.pop(_READY_IDS, [])
    for outbox_id in ids:
        dispatch(outbox_id)
    if ids:
        db.session.remove()  # an eager delivery (no broker) used the session after the request's


def dispatch(outbox_id: int) -> bool:
    """Give one row to a worker. False if the broker is unreachable: the row waits for the sweep."""
    task = services.celery().tasks["outbox.deliver"]
    try:
        task.apply_async((outbox_id,))
    except Exception as exc:  # kombu raises several kinds; the row is safe in the database either way
        log.warning("outbox %s not handed to a worker (%s); the sweep will", outbox_id, type(exc).__name__)
        return False
    return True


# -- delivering one row ------------------------------------------------------------------------
@dataclass
class Prepared:
    """What a preparer made of a request row: the email to send."""

    template: str
    message: EmailMessage


@dataclass
class Outcome:
    """What one delivery attempt did. `retry_in_seconds` is set when it should be tried again."""

    status: str
    retry_in_seconds: float | None = None


def deliver(outbox_id: int) -> Outcome | None:
    """Claim the row, prepare it if needed, send it, record the result (commits).

    None when there was nothing to do: the row is sent, final, or another worker holds it."""
    if not _claim(outbox_id):
        return None
    row = db.session.get(OutboxEmail, outbox_id)
    if row is None:
        return None
    g.request_id = row.request_id
    if row.message_ciphertext is None:
        try:
            if not _prepare(row):
                return Outcome(OutboxStatus.DROPPED)
        except MailError as exc:  # an address we do not accept: nothing to try again
            db.session.rollback()
            row = db.session.get(OutboxEmail, outbox_id)
            return _record_failure(row, exc) if row is not None else None
    plain = _cipher().decrypt(row.message_ciphertext or "")
    if plain is None:
        return _record_failure(row, MailError("message does not decrypt (key changed?)", permanent=True))
    message = email.message_from_string(plain, policy=email.policy.default)
    try:
        deliver_message(message, row.to_address or "")  # type: ignore[arg-type]
    except MailError as exc:
        return _record_failure(row, exc)
    execute_for_rowcount(
        update(OutboxEmail)
        .where(OutboxEmail.id == outbox_id, OutboxEmail.status == OutboxStatus.SENDING)
        .values(status=OutboxStatus.SENT, sent_at=utcnow(), message_ciphertext=None, last_error=None)
    )
    db.session.commit()
    log.info(
        "email %r %s sent to %s (attempt %d)", row.template, outbox_id, mask_email(row.to_address or ""), row.attempts
    )
    return Outcome(OutboxStatus.SENT)


def _claim(outbox_id: int) -> bool:
    """One conditional UPDATE: queued (or abandoned while sending) becomes ours."""
    now = utcnow()
    stale = now - timedelta(seconds=current_app.config["OUTBOX_STALE_SECONDS"])
    claimed = execute_for_rowcount(
        update(OutboxEmail)
        .where(
            OutboxEmail.id == outbox_id,
            or_(
                OutboxEmail.status == OutboxStatus.QUEUED,
                (OutboxEmail.status == OutboxStatus.SENDING) & (OutboxEmail.claimed_at < stale),
            ),
        )
        .values(status=OutboxStatus.SENDING, claimed_at=now, attempts=OutboxEmail.attempts + 1)
    )
    db.session.commit()
    return claimed == 1


def _prepare(row: OutboxEmail) -> bool:
    """Turn a request row into a message (commits with whatever it made). False: no email."""
    from .recovery import (
        prepare_account_exists_notice,
        prepare_confirmation,
        prepare_link_request,
        prepare_password_reset,
    )

    preparers = {
        "recovery-request": prepare_link_request,
        "reset-request": prepare_password_reset,
        "confirm-request": prepare_confirmation,
        "exists-request": prepare_account_exists_notice,
    }
    prepared = preparers[row.template](row.to_address or "")
    if prepared is None:
        row.status, row.to_address, row.claimed_at = OutboxStatus.DROPPED, None, None
        db.session.commit()
        return False
    row.template = prepared.template
    row.message_ciphertext = _cipher().encrypt(prepared.message.as_string())
    db.session.commit()
    return True


def _record_failure(row: OutboxEmail, exc: MailError) -> Outcome:
    config = current_app.config
    row.last_error = exc.reason[:200]
    if exc.permanent or row.attempts >= config["OUTBOX_MAX_ATTEMPTS"]:
        row.status, row.message_ciphertext = OutboxStatus.FAILED, None
        db.session.commit()
        log.error("email %r %s failed for good after %d attempt(s): %s", row.template, row.id, row.attempts, exc.reason)
        return Outcome(OutboxStatus.FAILED)
    delay = retry_delay_seconds(row.attempts)
    row.status, row.next_attempt_at = OutboxStatus.QUEUED, utcnow() + timedelta(seconds=delay)
    db.session.commit()
    log.warning(
        "email %r %s not sent (attempt %d: %s); next try in %.0f s",
        row.template,
        row.id,
        row.attempts,
        exc.reason,
        delay,
    )
    return Outcome(OutboxStatus.QUEUED, retry_in_seconds=delay)


def retry_delay_seconds(attempts: int) -> float:
    """Exponential backoff with jitter: base * 2^(attempts-1), capped, times 0.5-1.0."""
    config = current_app.config
    ceiling = min(config["OUTBOX_RETRY_CAP_SECONDS"], config["OUTBOX_RETRY_BASE_SECONDS"] * 2 ** (attempts - 1))
    return ceiling * random.uniform(0.5, 1.0)  # nosec B311: spreading retries, not a secret


# -- the sweep ---------------------------------------------------------------------------------
def sweep() -> int:
    """Hand every abandoned open row to the workers again: queued past its retry time (its task
    was lost) or sending for longer than OUTBOX_STALE_SECONDS (its worker died). Returns how many.
    Safe to run twice at once: the claim decides who sends."""
    now = utcnow()
    stale = now - timedelta(seconds=current_app.config["OUTBOX_STALE_SECONDS"])
    ids = db.session.scalars(
        select(OutboxEmail.id).where(
            or_(
                (OutboxEmail.status == OutboxStatus.QUEUED) & (OutboxEmail.next_attempt_at < stale),
                (OutboxEmail.status == OutboxStatus.SENDING) & (OutboxEmail.claimed_at < stale),
            )
        )
    ).all()
    db.session.commit()
    for outbox_id in ids:
        dispatch(outbox_id)
    if ids:
        log.info("outbox sweep: %d email(s) handed to the workers again", len(ids))
    return len(ids)


@dataclass
class Depth:
    """Open rows and how long the oldest has waited (the alerting numbers)."""

    open_rows: int
    oldest_age_seconds: float


def depth() -> Depth:
    open_statuses = (OutboxStatus.QUEUED, OutboxStatus.SENDING)
    count, oldest = db.session.execute(
        select(func.count(OutboxEmail.id), func.min(OutboxEmail.created_at)).where(
            OutboxEmail.status.in_(open_statuses)
        )
    ).one()
    db.session.commit()
    return Depth(count or 0, (utcnow() - oldest).total_seconds() if oldest else 0.0)
