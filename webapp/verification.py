"""Domain: what the continue page shows, session tokens, completion and restart.

The decision table (PRODUCT.md): no inquiry -> create one; `created` -> boot without a token;
`pending`/`expired` -> reuse a stored live token or `resume` once; anything else -> its status
page (what each status means is in statuses.py). Every function owns its transaction. Persona
errors other than "not found" and "conflict" propagate (PersonaUnavailableError becomes the 503 page in one handler).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import cast

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from . import metrics, services
from .addresses import normalize_address
from .clock import utcnow
from .extensions import commit_keeping_loaded, db
from .models import NOT_LOADED, Inquiry, User
from .persona import (
    CreatedInquiry,
    PersonaConflictError,
    PersonaInquiry,
    PersonaNotFoundError,
    PersonaRequestError,
    PersonaSessionLimitError,
    PersonaUnavailableError,
)
from .statuses import (
    CLOSED_REASON_BY_STATUS,
    CLOSED_TO_RESUMING,
    PAGE_STATE_BY_STATUS,
    PERSONA_MAY_STILL_CHANGE,
    RESUMABLE,
    ClosedReason,
    InquiryStatus,
    PageState,
    apply_status_if_newer,
)

log = logging.getLogger(__name__)

# Translated labels for step names we know (the emulator's). A template's step names are its
# own (PERSONA_TEMPLATE_STEPS); one without a label here is counted, not named.
STEP_LABELS = {
    "select_id_type": _l("Choose your ID type"),
    "document_front": _l("Take a photo of your ID"),
    "selfie": _l("Take a selfie"),
}
# Every status our page has an answer for (Persona's `filter[status]`; a status it adds later
# is not listed, so such an inquiry is not recovered).
RECOVERABLE_STATUSES = tuple(
    status.value for status in InquiryStatus if status not in (InquiryStatus.REDACTED, InquiryStatus.MISSING)
)
# A stored token must outlive the page load by this much to be reused.
TOKEN_REUSE_MARGIN = timedelta(seconds=60)


@dataclass
class VerifyPage:
    """What `/verify` shows: a `state` and, for `continue`, what the client boots with."""

    state: PageState
    inquiry: Inquiry | None = None
    session_token: str | None = None
    reason: ClosedReason | None = None  # why a `closed` page is closed
    wait_seconds: int | None = None  # waiting: the estimate shown, after which the page goes on

    @property
    def can_restart(self) -> bool:
        return self.inquiry is not None and (self.reason == "template_changed" or may_restart(self.inquiry))

    @property
    def steps_left(self) -> int | None:
        """Steps left in the template's flow (PERSONA_TEMPLATE_STEPS), counting the next one;
        None when the next step is not one of them (another template, or none configured)."""
        steps: list[str] = current_app.config["PERSONA_TEMPLATE_STEPS"]
        step = self.inquiry.next_step_name if self.inquiry else None
        if step is None or step not in steps:
            return None
        return len(steps) - steps.index(step)

    @property
    def next_step_label(self) -> str | None:
        """The next step's translated label, when it is a counted step we have a label for."""
        if self.steps_left is None or self.inquiry is None:
            return None
        label = STEP_LABELS.get(self.inquiry.next_step_name or "")
        return str(label) if label is not None else None


def get_current_inquiry(user: User) -> Inquiry | None:
    """The user's newest inquiry. The request's first ask for the signed-in user is answered
    from what the user loader read with the login session (one round trip less on a reload),
    unless the request made one before asking (start_inquiry and recover_inquiry forget what the
    loader read); later asks read it again."""
    loaded = user.newest_inquiry_at_load
    if loaded is not NOT_LOADED:
        user.newest_inquiry_at_load = NOT_LOADED
        return cast(Inquiry | None, loaded)
    return db.session.scalar(select(Inquiry).where(Inquiry.user_id == user.id).order_by(Inquiry.id.desc()).limit(1))


def page_for_status(inquiry: Inquiry) -> VerifyPage:
    """The page for an inquiry's local status, without a session token (0 Persona calls)."""
    if inquiry.status not in PAGE_STATE_BY_STATUS:
        log.warning("inquiry %s has a status we do not know: %r", inquiry.persona_id, inquiry.status)
        return VerifyPage("closed", inquiry, reason="unknown_status")
    status = InquiryStatus(inquiry.status)
    return VerifyPage(PAGE_STATE_BY_STATUS[status], inquiry, reason=CLOSED_REASON_BY_STATUS.get(status))


class InquiryNotFoundError(Exception):
    """The inquiry named in the request is not this person's current one."""


def start_or_resume_verification(user: User, requested_inquiry: str | None = None) -> VerifyPage:
    """Decide the continue page for `user`: creates or resumes at Persona only when needed.

    `requested_inquiry` (from a link) must be the user's current inquiry, else
    InquiryNotFoundError, before any Persona call.
    """
    inquiry = get_current_inquiry(user)
    if requested_inquiry is not None and (inquiry is None or requested_inquiry != inquiry.persona_id):
        raise InquiryNotFoundError(requested_inquiry[:80])
    if inquiry is None:
        inquiry = recover_inquiry(user) or start_inquiry(user)
    if inquiry.status == InquiryStatus.CREATED:
        # Opens without a token (RES), or with the one its create brought (auto-create-inquiry-session).
        return VerifyPage("continue", inquiry, session_token=_stored_token(inquiry))
    if inquiry.status in (InquiryStatus.PENDING, InquiryStatus.EXPIRED):
        token = _stored_token(inquiry)
        if token is not None:
            metrics.SESSION_TOKENS.labels("reused").inc()
            return VerifyPage("continue", inquiry, session_token=token)
        return _mint_token(user, inquiry)
    return page_for_status(inquiry)


def refresh_session_token(user: User) -> VerifyPage:
    """The client said its token is dead: drop it, and mint a new one if Persona allows."""
    inquiry = get_current_inquiry(user)
    if inquiry is None:
        return VerifyPage("closed", reason="missing")
    inquiry.drop_session_token()
    db.session.commit()
    if inquiry.status in CLOSED_TO_RESUMING:
        return page_for_status(inquiry)
    return _mint_token(user, inquiry)


def check_completion(user: User) -> VerifyPage:
    """The flow said it finished: read the real status from Persona (never the browser's) and
    store it. Returns the page for it."""
    inquiry = get_current_inquiry(user)
    if inquiry is None:
        return VerifyPage("closed", reason="missing")
    if not read_from_persona(inquiry):
        return VerifyPage("closed", inquiry, reason="missing")
    return page_for_status(inquiry)


def may_restart(inquiry: Inquiry) -> bool:
    """Policy: a new inquiry for these statuses, or when this one has used up its sessions."""
    return inquiry.status in current_app.config["VERIFY_RESTART_STATUSES"] or (
        inquiry.status in RESUMABLE and _sessions_used_up(inquiry)
    )


def _sessions_used_up(inquiry: Inquiry) -> bool:
    """Persona's cap on sessions per inquiry is reached, as far as Persona's own count (its
    `sessions` relationship, at our latest read) says: resume reuses unused sessions (so our
    mints over-count) and the flow opens some itself (so they under-count). Before any read,
    the tokens we minted stand in."""
    used = inquiry.persona_sessions if inquiry.persona_sessions is not None else inquiry.tokens_minted
    return used >= current_app.config["PERSONA_SESSIONS_PER_INQUIRY"]


def restart_verification(user: User) -> bool:
    """Start a new inquiry when policy allows it for the current one."""
    inquiry = get_current_inquiry(user)
    if inquiry is None or not (may_restart(inquiry) or (inquiry.status in RESUMABLE and _offered_new_start(inquiry))):
        return False
    inquiry.drop_session_token()
    db.session.commit()
    start_inquiry(user)
    log.info("user %s started a new verification after %s", user.public_id, inquiry.status)
    return True


def recover_inquiry(user: User) -> Inquiry | None:
    """The user's newest inquiry at Persona (by `reference-id`), recorded again, when we have
    none on record (a new account, or a database restored from before it was made): Persona
    advises listing by reference id before creating (DUP, PRE), so nobody gets a second
    inquiry (or a second verification) because we forgot the first. Whatever its status, the
    page knows what to show; a redacted one is left behind (None: a new one is due)."""
    read_at = utcnow()
    try:
        found = services.persona().find_inquiries(user.public_id, RECOVERABLE_STATUSES, limit=1)
    except PersonaRequestError as exc:  # a list Persona will not answer must not stop the create
        log.warning("Persona refused the list by reference id (HTTP %s): creating", exc.status)
        return None
    if not found or found[0].redacted or found[0].reference_id != user.public_id:
        return None
    fresh = found[0]
    user.newest_inquiry_at_load = NOT_LOADED  # no longer the newest
    inquiry = Inquiry(
        persona_id=fresh.id,
        user_id=user.id,
        status=fresh.effective_status,
        status_event_at=read_at,
        expires_at=fresh.expires_at,
        next_step_name=fresh.next_step_name,
        persona_sessions=fresh.session_count,
    )
    db.session.add(inquiry)
    try:
        db.session.commit()
    except IntegrityError:  # another tab recorded it first
        db.session.rollback()
        existing = db.session.scalar(select(Inquiry).where(Inquiry.persona_id == fresh.id))
        return existing if existing is not None and existing.user_id == user.id else None
    log.warning("recovered inquiry %s (%s) of user %s from Persona", fresh.id, fresh.status, user.public_id)
    return inquiry


def start_inquiry(user: User, *, with_session: bool | None = None) -> Inquiry:
    """Create the user's next inquiry at Persona and record it, with its first session token
    when `with_session` (default: PERSONA_CREATE_WITH_SESSION).

    The Idempotency-Key names the user's n-th inquiry, so two tabs creating at once get
    the same Persona inquiry and one local row.
    """
    count = len(db.session.scalars(select(Inquiry.id).where(Inquiry.user_id == user.id)).all())
    read_at = utcnow()
    if with_session is None:
        with_session = current_app.config["PERSONA_CREATE_WITH_SESSION"]
    answer = _create_at_persona(user, f"create-inquiry:{user.public_id}:{count + 1}", with_session)
    created = answer.inquiry
    user.newest_inquiry_at_load = NOT_LOADED  # no longer the newest
    inquiry = Inquiry(
        persona_id=created.id,
        user_id=user.id,
        status=created.effective_status,
        status_event_at=read_at,  # a new row: no stored status can be newer
        expires_at=created.expires_at,
        next_step_name=created.next_step_name,
        persona_sessions=created.session_count,
    )
    if answer.session_token:
        # The create opened its first session (one call instead of create + resume).
        inquiry.session_token_ciphertext = services.token_cipher().encrypt(answer.session_token)
        inquiry.session_token_expires_at = created.expires_at or _fallback_expiry()
        inquiry.tokens_minted = 1
        metrics.SESSION_TOKENS.labels("minted").inc()
    db.session.add(inquiry)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = db.session.scalar(select(Inquiry).where(Inquiry.persona_id == created.id))
        if existing is None or existing.user_id != user.id:
            raise
        return existing
    log.info("created inquiry %s for user %s", created.id, user.public_id)
    return inquiry


def _create_at_persona(user: User, idempotency_key: str, with_session: bool) -> CreatedInquiry:
    """Create with what we know prefilled (the email, in PERSONA_EMAIL_FIELD) and, when
    `with_session`, the first session token in the same answer. A template that refuses the
    field (4xx) still gets its inquiry, without it (the setting is logged as wrong)."""
    config = current_app.config
    field = config["PERSONA_EMAIL_FIELD"]
    create = partial(
        services.persona().create_inquiry,
        template_id=config["PERSONA_TEMPLATE_ID"],
        reference_id=user.public_id,
        with_session=with_session,
    )
    if not field:
        return create(idempotency_key=idempotency_key)
    try:
        return create(idempotency_key=idempotency_key, fields={field: user.email})
    except PersonaRequestError as exc:
        log.warning(
            "Persona refused the field PERSONA_EMAIL_FIELD=%r (HTTP %s): creating without it", field, exc.status
        )
        return create(idempotency_key=f"{idempotency_key}:no-fields")


def inquiries_to_sync(email: str | None = None) -> list[Inquiry]:
    """Each person's current inquiry whose local status Persona may have moved on from."""
    query = select(Inquiry).join(User).where(Inquiry.status.in_(PERSONA_MAY_STILL_CHANGE))
    if email:
        query = query.where(User.email == normalize_address(email))
    newest = {}
    for inquiry in db.session.scalars(query.order_by(Inquiry.id)):
        newest[inquiry.user_id] = inquiry
    return [i for i in newest.values() if get_current_inquiry(i.user) is i]


def sync_inquiry(inquiry: Inquiry) -> tuple[str, str]:
    """Read the inquiry from Persona and store its status. Returns (old, new) statuses."""
    old = inquiry.status
    read_from_persona(inquiry)
    return old, inquiry.status


def read_from_persona(inquiry: Inquiry) -> bool:
    """GET the inquiry and store its status as of the moment the read began (commits, then
    reloads `inquiry`). False when Persona doesn't know the inquiry: two reads in a row said 404
    (one 404 can be a glitch); it is then marked missing, and the sync backstop looks again.

    At most one read per inquiry per PERSONA_COALESCE_SECONDS, shared by concurrent requests
    in every instance (two tabs, a double click, a script): the others use its stored result."""
    hold = current_app.config["PERSONA_COALESCE_SECONDS"]
    with services.coalescer().turn(f"persona-read:{inquiry.persona_id}", hold) as ours:
        if not ours:
            db.session.refresh(inquiry)
            return inquiry.status != InquiryStatus.MISSING
        read_at = utcnow()
        try:
            fresh = _get_confirming_404(inquiry.persona_id)
        except PersonaNotFoundError:
            _mark_missing(inquiry)
            return False
        _store_read(inquiry, fresh, read_at)
        db.session.commit()
        db.session.refresh(inquiry)
        return True


def _get_confirming_404(persona_id: str) -> PersonaInquiry:
    """GET the inquiry; a 404 counts only when a second read says 404 too."""
    try:
        return services.persona().get_inquiry(persona_id)
    except PersonaNotFoundError:
        log.info("Persona said 404 for inquiry %s: reading it once more", persona_id)
    return services.persona().get_inquiry(persona_id)


def _store_read(inquiry: Inquiry, fresh: PersonaInquiry, read_at: datetime) -> None:
    if fresh.session_count is not None:  # sessions are never removed: the larger count is the newer
        db.session.execute(
            update(Inquiry)
            .where(
                Inquiry.id == inquiry.id,
                or_(Inquiry.persona_sessions.is_(None), Inquiry.persona_sessions < fresh.session_count),
            )
            .values(persona_sessions=fresh.session_count)
        )
    apply_status_if_newer(
        inquiry,
        fresh.effective_status,
        as_of=read_at,
        source="read",
        expires_at=fresh.expires_at,
        next_step_name=fresh.next_step_name,
    )


def _stored_token(inquiry: Inquiry) -> str | None:
    if not inquiry.session_token_ciphertext or inquiry.session_token_expires_at is None:
        return None
    if inquiry.session_token_expires_at <= utcnow() + TOKEN_REUSE_MARGIN:
        return None
    return services.token_cipher().decrypt(inquiry.session_token_ciphertext)


def _mint_token(user: User, inquiry: Inquiry) -> VerifyPage:
    if _sessions_used_up(inquiry):
        # Persona caps sessions per inquiry (25): at its count, do not ask for more.
        log.warning(
            "inquiry %s has used its sessions (%s at Persona, %d minted by us): offering a new start",
            inquiry.persona_id,
            inquiry.persona_sessions,
            inquiry.tokens_minted,
        )
        return VerifyPage("closed", inquiry, reason="session_limit")
    # Two tabs or a double click at once: one resume, the other uses the token it stored.
    hold = current_app.config["PERSONA_PAGE_DEADLINE_SECONDS"]
    with services.coalescer().turn(f"persona-resume:{inquiry.persona_id}", hold, keep_seconds=0) as ours:
        if not ours:
            db.session.refresh(inquiry)
            token = _stored_token(inquiry)
            if token is not None:
                return VerifyPage("continue", inquiry, session_token=token)
        return _resume_at_persona(user, inquiry)


def _offered_new_start(inquiry: Inquiry) -> bool:
    """VERIFY_ON_TEMPLATE_DRIFT is `offer_new_start` and Persona published a newer version of
    the inquiry's template since it was made (RES). One read; False when Persona does not say,
    or does not know the inquiry (resuming then finds out)."""
    if current_app.config["VERIFY_ON_TEMPLATE_DRIFT"] != "offer_new_start":
        return False
    try:
        versions = services.persona().get_template_versions(inquiry.persona_id)
    except PersonaNotFoundError:
        return False
    if versions.drifted:
        log.info(
            "inquiry %s is on template version %s, the latest published is %s: offering a new start",
            inquiry.persona_id,
            versions.inquiry_version_id,
            versions.latest_published_version_id,
        )
    return versions.drifted


def _resume_at_persona(user: User, inquiry: Inquiry) -> VerifyPage:
    if _offered_new_start(inquiry):
        return VerifyPage("closed", inquiry, reason="template_changed")
    read_at = utcnow()
    try:
        resumed = services.persona().resume_inquiry(inquiry.persona_id)
    except PersonaConflictError:
        # Our local status was stale: learn the real one and show its page.
        if not read_from_persona(inquiry):
            return VerifyPage("closed", inquiry, reason="missing")
        return page_for_status(inquiry)
    except PersonaSessionLimitError as exc:
        # Sessions the flow opened after our last read used up the cap: never ask again for
        # this inquiry; the page offers a new start (may_restart).
        log.warning("Persona refused inquiry %s a new session (%s): offering a new start", inquiry.persona_id, exc)
        inquiry.persona_sessions = max(
            inquiry.persona_sessions or 0, current_app.config["PERSONA_SESSIONS_PER_INQUIRY"]
        )
        db.session.commit()
        return VerifyPage("closed", inquiry, reason="session_limit")
    except PersonaNotFoundError:
        # Only a read can tell a glitch from a deleted inquiry.
        if not read_from_persona(inquiry):
            return VerifyPage("closed", inquiry, reason="missing")
        if inquiry.status in RESUMABLE:  # it exists: the resume's 404 was the glitch; try again later
            raise PersonaUnavailableError("resume answered 404 for an inquiry that exists") from None
        return page_for_status(inquiry)
    if resumed.inquiry.reference_id not in (None, user.public_id):
        log.error("inquiry %s does not belong to user %s", inquiry.persona_id, user.public_id)
        return VerifyPage("closed", inquiry, reason="not_yours")
    _store_read(inquiry, resumed.inquiry, read_at)
    db.session.refresh(inquiry)  # before changing it: what the read stored, or a newer status
    inquiry.session_token_ciphertext = services.token_cipher().encrypt(resumed.session_token)
    # A session lives until the inquiry's expiry at the moment it was made (FACTS.md §1).
    inquiry.session_token_expires_at = resumed.inquiry.expires_at or _fallback_expiry()
    inquiry.tokens_minted += 1
    inquiry.last_activity_at = utcnow()
    commit_keeping_loaded()  # the page is rendered from what was just written
    metrics.SESSION_TOKENS.labels("minted").inc()
    log.info("minted session token #%d for inquiry %s", inquiry.tokens_minted, inquiry.persona_id)
    return VerifyPage("continue", inquiry, session_token=resumed.session_token)


def _mark_missing(inquiry: Inquiry) -> VerifyPage:
    log.warning("Persona does not know inquiry %s", inquiry.persona_id)
    inquiry.status = InquiryStatus.MISSING
    inquiry.drop_session_token()
    db.session.commit()
    return VerifyPage("closed", inquiry, reason="missing")


def _fallback_expiry() -> datetime:
    return utcnow() + timedelta(hours=24)
