"""Ending a person's sessions at Persona when they sign out everywhere (also a password change or
reset, and a disabled account): a token someone kept (a lost phone, a shared computer) then opens
nothing, not only on our pages but in Persona's flow too (`POST /inquiry-sessions/expire-all`).

The same outbox shape as the mail: `mark_for_ending` sets `persona_sessions_end_due_at` on the
person's open inquiries in the sign-out's own transaction; once it has committed, `dispatch` hands
each row's id to a Celery worker (`persona.end_sessions`), which calls Persona (a background call
in the shared budget) and clears the mark. A busy or unreachable Persona leaves the mark: the task
retries, and `sweep` (beat) hands marks nobody cleared to the workers again, so a crash of any
one process still ends in the call. Ending sessions twice is harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from . import services
from .clock import utcnow
from .extensions import db, execute_for_rowcount
from .models import Inquiry
from .persona import PersonaError, PersonaUnavailableError
from .statuses import InquiryStatus

log = logging.getLogger(__name__)

# Statuses whose sessions may still be alive (an expired inquiry's sessions died with it, FACTS §1).
MAY_HAVE_LIVE_SESSIONS = (InquiryStatus.CREATED, InquiryStatus.PENDING)


def mark_for_ending(user_id: int, now: datetime) -> list[int]:
    """Mark the user's inquiries whose Persona sessions may be alive (the caller commits, then
    calls `dispatch` with the ids returned)."""
    ids = list(
        db.session.scalars(
            select(Inquiry.id).where(Inquiry.user_id == user_id, Inquiry.status.in_(MAY_HAVE_LIVE_SESSIONS))
        )
    )
    if ids:
        db.session.execute(update(Inquiry).where(Inquiry.id.in_(ids)).values(persona_sessions_end_due_at=now))
    return ids


def dispatch(inquiry_ids: list[int]) -> None:
    """Hand committed marks to the workers (without a broker: done here and now). A broker that
    cannot be reached leaves them to the sweep."""
    task = services.celery().tasks["persona.end_sessions"]
    for inquiry_id in inquiry_ids:
        try:
            task.apply_async((inquiry_id,))
        except Exception as exc:  # kombu raises several kinds; the mark is safe in the database
            log.warning("Persona sessions of row %s: not queued (%s), the sweep will", inquiry_id, type(exc).__name__)


def end_sessions(inquiry_id: int) -> str:
    """Ask Persona to end every session of one marked inquiry, then clear the mark (commits).
    Returns what happened: `ended N`, `nothing to do`, `gone` (Persona refused: nothing to end).
    Raises PersonaUnavailableError (PersonaBusyError included) when it should be tried again."""
    row = db.session.get(Inquiry, inquiry_id)
    if row is None or row.persona_sessions_end_due_at is None:
        db.session.commit()
        return "nothing to do"
    due_at, persona_id = row.persona_sessions_end_due_at, row.persona_id
    db.session.commit()
    try:
        ended = services.persona().expire_all_sessions([persona_id])
        outcome = f"ended {ended}"
    except PersonaUnavailableError:
        raise
    except PersonaError as exc:  # 404, 409, 4xx: Persona has nothing of it to end
        outcome = f"gone ({type(exc).__name__})"
    # Only the mark we acted on: a newer sign-out during the call leaves its own for a next run.
    execute_for_rowcount(
        update(Inquiry)
        .where(Inquiry.id == inquiry_id, Inquiry.persona_sessions_end_due_at == due_at)
        .values(persona_sessions_end_due_at=None)
    )
    db.session.commit()
    log.info("Persona sessions of inquiry %s: %s", persona_id, outcome)
    return outcome


def sweep() -> int:
    """Hand marks older than OUTBOX_STALE_SECONDS (their task was lost, or is still failing) to
    the workers again. Returns how many."""
    stale = utcnow() - timedelta(seconds=current_app.config["OUTBOX_STALE_SECONDS"])
    ids = list(db.session.scalars(select(Inquiry.id).where(Inquiry.persona_sessions_end_due_at < stale)))
    db.session.commit()
    dispatch(ids)
    if ids:
        log.info("Persona sessions sweep: %d inquiry(ies) handed to the workers again", len(ids))
    return len(ids)
