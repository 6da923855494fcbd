"""Inquiry statuses: the one vocabulary, what each status means here, and the one way a status
Persona reports is stored.

"What happens when Persona says `needs_review`?" Read down this file. It is SUBMITTED: the
person has done their part and a reviewer decides. So the continue page shows `review`
(PAGE_STATE_BY_STATUS); the stored session token is dropped (DROPS_SESSION_TOKEN); emailed
links die and no new ones are sent (LINKS_LEAD_NOWHERE); no reminder goes out (only RESUMABLE
inquiries get one); and `flask inquiries sync` still asks Persona about it, because a decision
will follow (PERSONA_MAY_STILL_CHANGE). Which webhook event says so is STATUS_BY_EVENT.
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum
from typing import Literal

from sqlalchemy import and_, or_, update

from .accounts import revoke_recovery_links
from .clock import utcnow
from .extensions import execute_for_rowcount
from .models import Inquiry, LinkPurpose

log = logging.getLogger(__name__)


class InquiryStatus(StrEnum):
    """An inquiry's status as we store it: Persona's own (FACTS.md, "Statuses, events and
    transitions") plus two that say what Persona's answers mean for our record."""

    CREATED = "created"
    PENDING = "pending"
    EXPIRED = "expired"
    COMPLETED = "completed"
    NEEDS_REVIEW = "needs_review"
    APPROVED = "approved"
    DECLINED = "declined"
    FAILED = "failed"
    REDACTED = "redacted"  # Persona deleted its data (`redacted-at` set, or `inquiry.redacted`)
    MISSING = "missing"  # ours: Persona answers 404 for it


S = InquiryStatus

# The flow can open: boot without a token (created) or `resume` for one (pending, expired).
RESUMABLE = frozenset({S.CREATED, S.PENDING, S.EXPIRED})
# The person has done their part; Persona's checks or a reviewer will decide.
SUBMITTED = frozenset({S.COMPLETED, S.NEEDS_REVIEW})
# An outcome: this inquiry ends here (`failed` too: a new start is the way on).
DECIDED = frozenset({S.APPROVED, S.DECLINED, S.FAILED})
# Nothing is left for the person to do in this inquiry.
FINISHED = SUBMITTED | DECIDED
# Everything but RESUMABLE: no session token is minted for these.
CLOSED_TO_RESUMING = FINISHED | {S.REDACTED, S.MISSING}
# Persona may move these on without us hearing of it if a webhook was lost: `inquiries sync`.
# (and MISSING, in case Persona's 404s were wrong after all).
PERSONA_MAY_STILL_CHANGE = RESUMABLE | SUBMITTED | {S.MISSING}
# A stored session token is useless after these: Persona expires an inquiry's sessions when
# the inquiry expires (FACTS.md §1), and a closed inquiry opens no flow at all.
DROPS_SESSION_TOKEN = CLOSED_TO_RESUMING | {S.EXPIRED}
# An emailed link would land on a page with nothing to continue: unused links are revoked when
# the inquiry reaches one of these, and none are sent. (MISSING is not here: its page offers a
# new start, which a link may lead to.)
LINKS_LEAD_NOWHERE = FINISHED | {S.REDACTED}
# A decision stands: Persona never marks a decided inquiry for review (FACTS.md), so a later
# event may only reverse it (a manual review) or redact it; anything else is refused.
STANDING_DECISIONS = frozenset({S.APPROVED, S.DECLINED})
MAY_FOLLOW_A_DECISION = STANDING_DECISIONS | {S.REDACTED}

# The event names Persona sends, and the status each one means (FACTS.md §5).
STATUS_BY_EVENT: dict[str, InquiryStatus] = {
    "inquiry.created": S.CREATED,
    "inquiry.started": S.PENDING,
    "inquiry.completed": S.COMPLETED,
    "inquiry.failed": S.FAILED,
    "inquiry.expired": S.EXPIRED,
    "inquiry.approved": S.APPROVED,
    "inquiry.declined": S.DECLINED,
    "inquiry.marked-for-review": S.NEEDS_REVIEW,
    "inquiry.redacted": S.REDACTED,
}

# What `/verify` shows (its `data-verification-state`), and why a `closed` page is closed.
PageState = Literal[
    "continue", "processing", "review", "approved", "declined", "failed", "closed", "unavailable", "waiting"
]
ClosedReason = Literal["missing", "redacted", "unknown_status", "not_yours", "session_limit", "template_changed"]

PAGE_STATE_BY_STATUS: dict[InquiryStatus, PageState] = {
    S.CREATED: "continue",
    S.PENDING: "continue",
    S.EXPIRED: "continue",
    S.COMPLETED: "processing",
    S.NEEDS_REVIEW: "review",
    S.APPROVED: "approved",
    S.DECLINED: "declined",
    S.FAILED: "failed",
    S.REDACTED: "closed",
    S.MISSING: "closed",
}
CLOSED_REASON_BY_STATUS: dict[InquiryStatus, ClosedReason] = {S.REDACTED: "redacted", S.MISSING: "missing"}

# Where a status came from decides how a tie in time is broken (see `apply_status_if_newer`):
# an event that sets a status, an API read, or `inquiry.transitioned` (a step change).
StatusSource = Literal["event", "read", "transition"]

_KEEP = object()  # "this report says nothing about the field": leave it as stored


def apply_status_if_newer(
    inquiry: Inquiry,
    status: str,
    *,
    as_of: datetime,
    source: StatusSource,
    expires_at: datetime | None | object = _KEEP,
    next_step_name: str | None | object = _KEEP,
) -> bool:
    """Store what Persona reported about `inquiry` as of `as_of`, unless a newer report is
    stored already. Returns whether it was stored. The one way a status changes, for webhook
    events and API reads alike.

    One conditional UPDATE decides, so a late webhook or a read that was in flight while a
    webhook was applied never moves the inquiry back. Ties: an *event* carries Persona's time,
    and two events at the same instant cannot be ordered, so the one stored first stays (`<`:
    a replayed event changes nothing). A *read* is stamped with our clock when it began; a read
    begun in the same tick as the stored one knows at least as much, so it wins (`<=`). A
    *transition* (a step change within a status) at the same instant as the stored report is
    the later fact (Persona starts an inquiry and moves it a step on at once) as long as it
    leaves the status as stored; otherwise it ranks as an event.

    An event never moves a STANDING_DECISION anywhere but MAY_FOLLOW_A_DECISION (a read may:
    it is Persona's word now).

    When the new status is in DROPS_SESSION_TOKEN the stored token goes with it; when it is in
    LINKS_LEAD_NOWHERE the person's unused emailed links are revoked.

    Works on the row, not on `inquiry`, which it leaves as it was: the caller commits, and
    reloads `inquiry` (`db.session.refresh`) before reading it again.
    """
    values: dict[str, object] = {"status": status, "status_event_at": as_of, "updated_at": utcnow()}
    if expires_at is not _KEEP:
        values["expires_at"] = expires_at
    if next_step_name is not _KEEP:
        values["next_step_name"] = next_step_name
    if status in DROPS_SESSION_TOKEN:
        values.update(session_token_ciphertext=None, session_token_expires_at=None)
    if source == "read":
        newer = Inquiry.status_event_at <= as_of
    elif source == "transition":
        newer = or_(Inquiry.status_event_at < as_of, and_(Inquiry.status_event_at == as_of, Inquiry.status == status))
    else:
        newer = Inquiry.status_event_at < as_of
    # An event may not move a decision anywhere else (a read is Persona's word now: it may).
    decided = (
        [Inquiry.status.not_in(STANDING_DECISIONS)] if source != "read" and status not in MAY_FOLLOW_A_DECISION else []
    )
    stored = execute_for_rowcount(
        update(Inquiry)
        .where(Inquiry.id == inquiry.id, or_(Inquiry.status_event_at.is_(None), newer), *decided)
        .values(**values)
    )
    if not stored:
        log.info("inquiry %s: kept the stored status, newer than a %s of %s", inquiry.persona_id, source, status)
        return False
    if status != inquiry.status:
        log.info("inquiry %s: %s -> %s (%s)", inquiry.persona_id, inquiry.status, status, source)
    if status in LINKS_LEAD_NOWHERE:
        revoke_recovery_links(inquiry.user_id, utcnow(), LinkPurpose.CONTINUE)
    return True
