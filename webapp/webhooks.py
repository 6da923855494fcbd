"""Domain: Persona webhooks. Check the signature, store the event, apply it in event-time order.

Persona delivers at least once, in no guaranteed order, for about two days (FACTS.md §5).
So: an event row is committed before we answer 2xx; a unique event id makes duplicates
one row; a status is stored only when its event is newer than the last one applied to that
inquiry (statuses.apply_status_if_newer); and applying is claimed atomically, so it happens once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from . import metrics
from .clock import utcnow
from .extensions import db, execute_for_rowcount
from .models import Inquiry, WebhookEvent
from .persona import parse_time
from .statuses import (
    MAY_FOLLOW_A_DECISION,
    PAGE_STATE_BY_STATUS,
    STANDING_DECISIONS,
    STATUS_BY_EVENT,
    StatusSource,
    apply_status_if_newer,
)

log = logging.getLogger(__name__)

MAX_HEADER_LENGTH = 8192
HEX = frozenset(string.hexdigits)
# What we keep of a subject inquiry's attributes: what `_apply_status` reads, nothing personal
# (real payloads carry names, birthdates, addresses in `fields`).
KEPT_ATTRIBUTES = ("status", "expires-at", "next-step-name", "redacted-at")
TRANSITIONED = "inquiry.transitioned"
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class WebhookRefusedError(Exception):
    """A delivery we do not store; `status` and `code` say how to answer it."""

    status = 400
    code = "refused"


class BodyTooLargeError(WebhookRefusedError):
    """The body is larger than PERSONA_WEBHOOK_MAX_BYTES."""

    status, code = 413, "too_large"


class NotJsonError(WebhookRefusedError):
    """The body is not declared as JSON."""

    status, code = 415, "not_json"


class WebhookNotConfiguredError(WebhookRefusedError):
    """No webhook secret is configured: nothing can be verified (an operator must set one)."""

    status, code = 503, "not_configured"


class InvalidSignatureError(WebhookRefusedError):
    """The request is not proven to come from Persona."""

    code = "invalid_signature"


class MalformedSignatureHeaderError(InvalidSignatureError):
    """`Persona-Signature` is not a list of `t=<unix>,v1=<hex>` sets."""


class InvalidEventError(WebhookRefusedError):
    """A signed body that is not a Persona event we can store."""

    code = "invalid_event"


def read_body(content_type: str, declared_length: int | None, stream: IO[bytes], limit: int) -> bytes:
    """The raw body (the signature covers these exact bytes), at most `limit` bytes.
    Raises NotJsonError or BodyTooLargeError."""
    if declared_length is not None and declared_length > limit:
        raise BodyTooLargeError(f"{declared_length} bytes declared")
    if content_type != "application/json":
        raise NotJsonError(content_type[:80])
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise BodyTooLargeError("more than the limit sent")
    return body


@dataclass(frozen=True)
class ParsedEvent:
    event_id: str
    name: str
    created_at: datetime | None
    inquiry_id: str | None
    attributes: dict


def parse_signature_header(header: str | None) -> list[tuple[int, str]]:
    """The (timestamp, hex digest) sets. Raises MalformedSignatureHeaderError."""
    if not header or len(header) > MAX_HEADER_LENGTH:
        raise MalformedSignatureHeaderError("missing or oversized")
    sets = []
    for part in header.split(" "):
        fields: dict[str, str] = {}
        for item in part.split(","):
            key, sep, value = item.partition("=")
            if not sep or key not in ("t", "v1") or key in fields:
                raise MalformedSignatureHeaderError("unexpected field")
            fields[key] = value
        t, v1 = fields.get("t", ""), fields.get("v1", "")
        if not (t.isascii() and t.isdigit() and len(t) <= 12):
            raise MalformedSignatureHeaderError("t is not a unix time")
        if len(v1) != 64 or not set(v1) <= HEX:
            raise MalformedSignatureHeaderError("v1 is not a SHA-256 hex digest")
        sets.append((int(t), v1.lower()))
    return sets


def verify_signature(
    header: str | None, body: bytes, secrets: list[str], *, now: float, tolerance_seconds: int
) -> None:
    """Accept when any set is inside the time window and matches any secret. Raises otherwise."""
    if not secrets:
        raise InvalidSignatureError("no webhook secret configured")
    sets = parse_signature_header(header)
    matched = False
    for timestamp, digest in sets:
        if abs(now - timestamp) > tolerance_seconds:
            continue
        message = f"{timestamp}.".encode() + body
        for secret in secrets:
            expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
            # Compare every candidate (constant time, on bytes); no early exit on a match.
            matched |= hmac.compare_digest(expected.encode(), digest.encode())
    if not matched:
        raise InvalidSignatureError("no matching signature in the time window")


def kebab_key(key: str) -> str:
    """A key in any of Persona's key inflections (`created-at`, `createdAt`, `created_at`) in
    the kebab case this module reads. A webhook's bodies follow the inflection set on the webhook
    (KI), not the `Key-Inflection` header our API calls send."""
    return _CAMEL_HUMP.sub("-", key).replace("_", "-").lower()


def kebab_keys(value: Any) -> Any:
    """An object's own keys in kebab case (values and deeper objects untouched); not an object: as is."""
    if not isinstance(value, dict):
        return value
    return {kebab_key(key) if isinstance(key, str) else key: item for key, item in value.items()}


def parse_event(body: bytes) -> ParsedEvent:
    """The event in a (signed) body, whatever the webhook's key inflection. Raises InvalidEventError."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidEventError("not JSON") from exc
    data = document.get("data") if isinstance(document, dict) else None
    attrs = kebab_keys(data.get("attributes")) if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(attrs, dict):
        raise InvalidEventError("no data.attributes")
    event_id, name = data.get("id"), attrs.get("name")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 80:
        raise InvalidEventError("bad event id")
    if not isinstance(name, str) or not name or len(name) > 80:
        raise InvalidEventError("bad event name")
    payload = attrs.get("payload")
    subject = payload.get("data") if isinstance(payload, dict) else None
    inquiry_id = subject.get("id") if isinstance(subject, dict) else None
    if not isinstance(inquiry_id, str) or len(inquiry_id) > 80:
        inquiry_id = None
    subject_attrs = kebab_keys(subject.get("attributes")) if isinstance(subject, dict) else None
    return ParsedEvent(
        event_id=event_id,
        name=name,
        created_at=parse_time(attrs.get("created-at")),
        inquiry_id=inquiry_id,
        attributes=subject_attrs if isinstance(subject_attrs, dict) else {},
    )


def receive_event(header: str | None, body: bytes, *, secrets: list[str], now: float, tolerance_seconds: int) -> str:
    """Verify, store (committed) and apply one delivery. Returns what happened.

    Raises a WebhookRefusedError (nothing stored), and lets database errors through so the
    caller answers 5xx and Persona retries.
    """
    if not secrets:
        raise WebhookNotConfiguredError("PERSONA_WEBHOOK_SECRETS is not configured")
    verify_signature(header, body, secrets, now=now, tolerance_seconds=tolerance_seconds)
    event = parse_event(body)
    row, is_new = store_event(event, body)
    if is_new and event.created_at is not None:
        metrics.WEBHOOK_LAG.observe(max(0.0, (utcnow() - event.created_at).total_seconds()))
    outcome = apply_event(row)
    metrics.WEBHOOKS.labels(outcome if is_new else "duplicate").inc()
    log.info(
        "webhook %s %s for %s: %s%s",
        event.event_id,
        event.name,
        event.inquiry_id,
        outcome,
        "" if is_new else " (duplicate delivery)",
    )
    return outcome


def store_event(event: ParsedEvent, body: bytes) -> tuple[WebhookEvent, bool]:
    """Insert the event once (unique event id, no error on a duplicate) and commit."""
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(WebhookEvent)
        .values(
            event_id=event.event_id,
            name=event.name,
            inquiry_persona_id=event.inquiry_id,
            event_created_at=event.created_at,
            payload=kept_payload(event),
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    is_new = execute_for_rowcount(statement) == 1
    db.session.commit()
    row = db.session.execute(select(WebhookEvent).where(WebhookEvent.event_id == event.event_id)).scalar_one()
    return row, is_new


def apply_event(row: WebhookEvent, *, force: bool = False) -> str:
    """Apply a stored event once (or again with `force`); returns the outcome. Commits."""
    now = utcnow()
    if not force:
        claimed = execute_for_rowcount(
            update(WebhookEvent)
            .where(WebhookEvent.id == row.id, WebhookEvent.applied_at.is_(None))
            .values(applied_at=now)
        )
        if claimed == 0:
            db.session.rollback()
            return "already applied"
    outcome = _apply_status(row)
    db.session.execute(update(WebhookEvent).where(WebhookEvent.id == row.id).values(applied_at=now, outcome=outcome))
    db.session.commit()
    return outcome


def _apply_status(row: WebhookEvent) -> str:
    attrs = _subject_attributes(row)
    reported = _reported_status(row, attrs)
    if isinstance(reported, str):
        return reported
    target, source = reported
    found = _inquiry_to_update(row)
    if isinstance(found, str):
        return found
    inquiry, event_at = found
    if target == "redacted":
        purge_payloads(inquiry.persona_id)
    fields: dict = {}
    if "expires-at" in attrs:
        fields["expires_at"] = parse_time(attrs["expires-at"])
    if isinstance(attrs.get("next-step-name"), str | None):
        fields["next_step_name"] = attrs.get("next-step-name")
    if not apply_status_if_newer(inquiry, target, as_of=event_at, source=source, **fields):
        if inquiry.status in STANDING_DECISIONS and target not in MAY_FOLLOW_A_DECISION:
            return "ignored: the inquiry was decided"
        return "ignored: older than the current status"
    return f"status {target}" if source == "event" else f"step {fields.get('next_step_name')} ({target})"


def _reported_status(row: WebhookEvent, attrs: dict) -> tuple[str, StatusSource] | str:
    """The status the event reports and how it ranks (`event`, or `transition` for a step change
    within a status), or the outcome saying why it is not applied."""
    if row.name == TRANSITIONED:
        # EVT: a step change; the inquiry in the payload says its status and `next-step-name`.
        status = attrs.get("status")
        if not isinstance(status, str) or not status:
            return _missing_field(row, "payload.data.attributes.status", "no status")
        if status not in PAGE_STATE_BY_STATUS:
            return "ignored: a status we do not know"
        return status, "transition"
    target = STATUS_BY_EVENT.get(row.name)
    if target is None:
        return "ignored: event not used"
    return target, "event"


def _inquiry_to_update(row: WebhookEvent) -> tuple[Inquiry, datetime] | str:
    """The local inquiry the event is about and the event's time, or the outcome saying why it
    is not applied."""
    if row.inquiry_persona_id is None:
        return _missing_field(row, "payload.data.id", "no inquiry id")
    inquiry = db.session.scalar(select(Inquiry).where(Inquiry.persona_id == row.inquiry_persona_id))
    if inquiry is None:
        return "ignored: unknown inquiry"
    if row.event_created_at is None:
        return _missing_field(row, "created-at", "no event time")
    if row.event_created_at > utcnow() + timedelta(seconds=current_app.config["WEBHOOK_FUTURE_SKEW_SECONDS"]):
        # Applied, it would outrank every true event until that date: stored, never applied.
        return "ignored: event time in the future"
    return inquiry, row.event_created_at


def _missing_field(row: WebhookEvent, field: str, outcome: str) -> str:
    """An event we use, ignored for want of `field` (missing or unreadable, in any inflection):
    said at WARNING and counted, since it may mean Persona's body is not what we read."""
    log.warning("webhook %s %s ignored: field %s missing or unreadable", row.event_id, row.name, field)
    metrics.WEBHOOK_MISSING_FIELD.labels(field).inc()
    return f"ignored: {outcome}"


def kept_payload(event: ParsedEvent) -> str:
    """The part of an event we store: its id, name, time, inquiry id and KEPT_ATTRIBUTES, in
    the shape `parse_event` reads back."""
    attributes = {name: event.attributes[name] for name in KEPT_ATTRIBUTES if name in event.attributes}
    created_at = event.created_at.isoformat() + "Z" if event.created_at else None
    subject = {"id": event.inquiry_id, "attributes": attributes}
    event_attributes = {"name": event.name, "created-at": created_at, "payload": {"data": subject}}
    return json.dumps({"data": {"id": event.event_id, "attributes": event_attributes}})


def purge_payloads(inquiry_persona_id: str) -> int:
    """Persona redacted the inquiry: forget what its events said (the caller commits)."""
    return execute_for_rowcount(
        update(WebhookEvent).where(WebhookEvent.inquiry_persona_id == inquiry_persona_id).values(payload="{}")
    )


def prune_events(older_than_days: int) -> int:
    """Delete stored events received more than `older_than_days` ago (commits). Persona stops
    redelivering after about two days, so duplicates are still recognised within the period."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    deleted = execute_for_rowcount(delete(WebhookEvent).where(WebhookEvent.received_at < cutoff))
    db.session.commit()
    return deleted


def _subject_attributes(row: WebhookEvent) -> dict:
    try:
        return parse_event(row.payload.encode()).attributes
    except InvalidEventError:
        return {}


def replay_event(event_id: str) -> str | None:
    """Apply a stored event again (its time still decides). None if there is no such event."""
    row = db.session.scalar(select(WebhookEvent).where(WebhookEvent.event_id == event_id))
    if row is None:
        return None
    return apply_event(row, force=True)
