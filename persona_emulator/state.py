"""The emulator's world: inquiries, sessions, events, deliveries, idempotency records, the clock.

Typed records live in memory, guarded by one lock. Every change happens inside
`with store.write():` (the lock-and-save helper): what a block marks with `store.touch(record)`
is written to the state file shortly after, by the flusher thread (write-behind, only what
changed; see persistence.py). Times are unix seconds on the emulator clock (`Store.now()`), which
control calls can move forward to make inquiries expire.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import jwt

from .config import EmulatorConfig
from .persistence import RecordFile

RESUMABLE = {"created", "pending", "expired"}
FINAL = {"completed", "failed", "approved", "declined", "needs_review"}
STATUS_EVENTS = {
    "created": "inquiry.created",
    "pending": "inquiry.started",
    "completed": "inquiry.completed",
    "failed": "inquiry.failed",
    "expired": "inquiry.expired",
    "approved": "inquiry.approved",
    "declined": "inquiry.declined",
    "needs_review": "inquiry.marked-for-review",
}
STATUS_TIMESTAMPS = {
    "pending": "started_at",
    "completed": "completed_at",
    "failed": "failed_at",
    "expired": "expired_at",
    "needs_review": "marked_for_review_at",
    "approved": "decisioned_at",
    "declined": "decisioned_at",
}
# The fake flow's steps; "Continue" moves one step on, "Submit" on the last completes.
STEPS = ("select_id_type", "document_front", "selfie")


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StateError(Exception):
    """A request the emulated Persona refuses: carries the HTTP status and Persona-style text."""

    def __init__(self, status: int, title: str, details: str = "") -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.details = details


# -- records -----------------------------------------------------------------------------------
@dataclass
class Inquiry:
    KIND: ClassVar[str] = "inquiry"
    id: str
    template_id: str
    created_at: float
    expires_at: float
    status: str = "created"
    reference_id: str | None = None
    note: str | None = None
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    updated_at: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    failed_at: float | None = None
    expired_at: float | None = None
    decisioned_at: float | None = None
    marked_for_review_at: float | None = None
    redacted_at: float | None = None
    step_index: int = 0
    account_id: str | None = None
    # Expiry intervals this inquiry was created with (settings, or the create-time overrides).
    expiry_after_create_seconds: int = 86_400
    expiry_after_start_seconds: int = 86_400
    expiry_after_resume_seconds: int = 86_400
    # The template's latest published version when the inquiry was made (RES: an inquiry stays
    # on the version it was created with).
    template_version_id: str = ""


@dataclass
class Template:
    """An inquiry template's published versions, oldest first: made on first use with one
    version; the control API publishes more (`POST /_emulator/templates/<id>/publish`)."""

    KIND: ClassVar[str] = "template"
    id: str
    versions: list[str] = field(default_factory=list)

    @property
    def latest_published_version_id(self) -> str:
        return self.versions[-1]


@dataclass
class Session:
    KIND: ClassVar[str] = "session"
    id: str
    inquiry_id: str
    created_at: float
    # A session dies when its inquiry did at the moment it was made (FACTS.md §1).
    expires_at: float
    # Until first used, its token also dies at this time (24 h after minting, RES).
    unused_until: float = float("inf")
    used_at: float | None = None  # the `started-at` of Persona's inquiry-session
    revoked_at: float | None = None  # expired early: by the API, the inquiry's expiry, or control
    canceled_at: float | None = None
    # How this device was reached from another one (Persona's `device-handoff-method`): set on
    # a session opened by a one-time link the flow made for "Continue on another device".
    device_handoff_method: str | None = None

    def status(self, now: float) -> str:
        """`active`, `expired` or `canceled` at `now`."""
        if self.canceled_at is not None:
            return "canceled"
        if self.revoked_at is not None or self.expires_at <= now:
            return "expired"
        if self.used_at is None and self.unused_until <= now:
            return "expired"
        return "active"


@dataclass
class OneTimeLink:
    """A one-time link (OTL): opens the inquiry once, on any device, in a new session. Made by
    the API (generate-one-time-link) or by the flow's "Continue on another device" (`method`
    set: the session it opens records it as its `device-handoff-method`)."""

    KIND: ClassVar[str] = "one-time-link"
    id: str  # the code in `/verify?code=…`
    inquiry_id: str
    created_at: float
    expires_at: float
    method: str | None = None
    used_at: float | None = None
    session_id: str | None = None  # the session it opened


@dataclass
class Event:
    KIND: ClassVar[str] = "event"
    id: str
    name: str
    created_at: float
    inquiry_id: str = ""
    # The event's subject as the API showed it when the event happened (an inquiry, or an
    # inquiry-session for the inquiry-session.* events).
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Delivery:
    KIND: ClassVar[str] = "delivery"
    id: str
    event_id: str
    url: str
    state: str  # pending | held | sending | delivered | failed
    next_attempt_at: float  # wall clock: deliveries run in real time, not on the emulator clock
    attempts: list[dict[str, Any]] = field(default_factory=list)
    first_attempted_at: int | None = None


@dataclass
class IdempotencyRecord:
    KIND: ClassVar[str] = "idempotency"
    id: str  # "<api key digest>:<Idempotency-Key>"
    fingerprint: str
    status: int
    body: str
    at: float


@dataclass
class Settings:
    """What else survives a restart: the clock's offset and whether webhooks are held."""

    KIND: ClassVar[str] = "settings"
    id: str = "store"
    clock_offset: float = 0.0
    webhooks_paused: bool = False


Record = Inquiry | Session | Event | Delivery | IdempotencyRecord | Settings | Template | OneTimeLink
RECORD_TYPES: dict[str, type[Record]] = {
    t.KIND: t for t in (Inquiry, Session, Event, Delivery, IdempotencyRecord, Settings, Template, OneTimeLink)
}


def _from_row(cls: type[Record], row: dict[str, Any]) -> Record:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in row.items() if k in names})


# -- the store ---------------------------------------------------------------------------------
class Store:
    FLUSH_INTERVAL_SECONDS = 0.2

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._initial_config = copy.deepcopy(config)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.requests: deque[dict[str, Any]] = deque(maxlen=config.request_log_size)
        self.faults: list[dict[str, Any]] = []
        self.flow_loads: deque[dict[str, Any]] = deque(maxlen=200)  # the SDK parameters each /widget had
        self.rate_window: tuple[int, int] = (0, 0)  # (minute, count)
        self._dirty: dict[tuple[str, str], Record | None] = {}
        self._wipe = False
        self._flush_lock = threading.Lock()
        self._file = RecordFile(config.state_file) if config.state_file else None
        self._stopped = threading.Event()
        self._flusher: threading.Thread | None = None
        self._empty()
        self._load()

    def _empty(self) -> None:
        self.settings = Settings()
        self.inquiries: dict[str, Inquiry] = {}
        self._by_reference: dict[str, list[Inquiry]] = {}  # reference id -> its inquiries, oldest first
        self.sessions: dict[str, Session] = {}
        self._sessions_of: dict[str, list[Session]] = {}
        self.events: dict[str, Event] = {}
        self.deliveries: dict[str, Delivery] = {}
        self.open_deliveries: dict[str, Delivery] = {}  # not yet delivered or failed
        self.idempotency: dict[str, IdempotencyRecord] = {}
        self.templates: dict[str, Template] = {}
        self.one_time_links: dict[str, OneTimeLink] = {}

    # -- the lock-and-save helper and persistence ---------------------------------------------
    @contextmanager
    def write(self) -> Iterator[Store]:
        """Hold the lock for a change; what the block `touch`es is saved shortly after."""
        with self.lock:
            yield self
            if self._dirty:
                self.changed.notify_all()

    def touch(self, record: Record) -> None:
        """Mark a record changed (or new): the flusher writes it. Call with the lock held."""
        self._dirty[(record.KIND, record.id)] = record

    def _forget(self, record: Record) -> None:
        self._dirty[(record.KIND, record.id)] = None

    def _load(self) -> None:
        if self._file is None:
            return
        for kind, row in self._file.load():
            cls = RECORD_TYPES.get(kind)
            if cls is not None:
                self._add_loaded(_from_row(cls, row))
        for delivery in self.open_deliveries.values():
            if delivery.state == "sending":  # interrupted by a restart: send again
                delivery.state = "pending"

    def _add_loaded(self, record: Record) -> None:
        if isinstance(record, Settings):
            self.settings = record
        elif isinstance(record, Inquiry):
            self._add_inquiry(record)
        elif isinstance(record, Session):
            self._add_session(record)
        elif isinstance(record, Event):
            self.events[record.id] = record
        elif isinstance(record, Delivery):
            self._add_delivery(record)
        elif isinstance(record, Template):
            self.templates[record.id] = record
        elif isinstance(record, OneTimeLink):
            self.one_time_links[record.id] = record
        else:
            self.idempotency[record.id] = record

    def flush(self) -> None:
        """Write what changed since the last flush, in one transaction (no-op without a file)."""
        with self._flush_lock:
            with self.lock:
                dirty, wipe = self._dirty, self._wipe
                self._dirty, self._wipe = {}, False
                upserts = [
                    (kind, key, json.dumps(dataclasses.asdict(record)))
                    for (kind, key), record in dirty.items()
                    if record is not None
                ]
            deletes = [key for key, record in dirty.items() if record is None]
            if self._file is not None and (upserts or deletes or wipe):
                self._file.write(upserts, deletes, wipe)

    def start(self) -> None:
        """Start the flusher thread (the app does; a store used without it flushes on close)."""
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_loop, name="persona-emulator-flusher", daemon=True)
            self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stopped.wait(self.FLUSH_INTERVAL_SECONDS):
            self.flush()

    def close(self) -> None:
        """Stop the flusher and write what is left."""
        self._stopped.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    def reset(self) -> None:
        """Empty state, no faults, no request log, and the settings it started with."""
        with self.write():
            for name in self.config.__dataclass_fields__:
                setattr(self.config, name, copy.deepcopy(getattr(self._initial_config, name)))
            self._empty()
            self._dirty = {}
            self._wipe = True
            self.requests.clear()
            self.flow_loads.clear()
            self.faults.clear()
            self.rate_window = (0, 0)  # a test that set a rate limit leaves no calls counted
        self.flush()

    # -- clock -------------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.settings.clock_offset

    def advance(self, seconds: float) -> None:
        with self.write():
            self.settings.clock_offset += seconds
            self.touch(self.settings)
            self.sweep_expiry()

    # -- inquiries ---------------------------------------------------------------------------
    def inquiry(self, inquiry_id: str) -> Inquiry:
        inq = self.inquiries.get(inquiry_id)
        if inq is None:
            raise StateError(404, "Record not found", f"Could not find inquiry {inquiry_id!r}")
        self._expire_if_due(inq)
        return inq

    def create_inquiry(self, attrs: dict[str, Any], meta: dict[str, Any] | None = None) -> Inquiry:
        """A new `created` inquiry (POST /inquiries): template, reference id, fields, note, and
        the per-inquiry expiry overrides (attributes or meta, kebab or snake case)."""
        meta = meta or {}
        now = self.now()
        template = (
            attrs.get("inquiry-template-id") or attrs.get("template-id") or attrs.get("inquiry-template-version-id")
        )
        if not template:
            raise StateError(422, "Must specify a template", "inquiry-template-id or template-id is required")
        fields = attrs.get("fields") or {}
        if not isinstance(fields, dict):
            raise StateError(400, "Bad request", "fields must be an object")
        create = _interval(attrs, meta, "create") or self.config.expiry_after_create_seconds
        start = _interval(attrs, meta, "start") or self.config.expiry_after_start_seconds or create
        resume = _interval(attrs, meta, "resume") or self.config.expiry_after_resume_seconds
        reference_id = attrs.get("reference-id") or meta.get("auto-create-account-reference-id")
        inq = Inquiry(
            id=new_id("inq_"),
            template_id=str(template),
            reference_id=str(reference_id) if reference_id is not None else None,
            note=attrs.get("note"),
            fields={k: {"type": "string", "value": v} for k, v in fields.items()},
            created_at=now,
            updated_at=now,
            expires_at=now + create,
            account_id=str(attrs.get("account-id") or self._account_for(reference_id)),
            expiry_after_create_seconds=create,
            expiry_after_start_seconds=start,
            expiry_after_resume_seconds=resume,
            template_version_id=self.template(str(template)).latest_published_version_id,
        )
        self._add_inquiry(inq)
        self.touch(inq)
        self.emit(inq, "inquiry.created")
        return inq

    def template(self, template_id: str) -> Template:
        """The template (made, with one published version, on first use). Call with the lock held."""
        template = self.templates.get(template_id)
        if template is None:
            template = Template(id=template_id, versions=[new_id("itmplv_")])
            self.templates[template_id] = template
            self.touch(template)
        return template

    def publish_template_version(self, template_id: str) -> Template:
        """A new published version of the template: inquiries made from now on use it."""
        template = self.template(template_id)
        template.versions.append(new_id("itmplv_"))
        self.touch(template)
        return template

    def _add_inquiry(self, inq: Inquiry) -> None:
        self.inquiries[inq.id] = inq
        if inq.reference_id is not None:
            self._by_reference.setdefault(inq.reference_id, []).append(inq)

    def _account_for(self, reference_id: Any) -> str:
        """The account an inquiry joins: one per reference id (DUP, REF), else a new one."""
        for inq in self._by_reference.get(str(reference_id), []) if reference_id is not None else []:
            if inq.account_id:
                return inq.account_id
        return new_id("act_")

    def set_status(self, inq: Inquiry, status: str) -> None:
        """Move an inquiry to `status`, stamping its timestamps and emitting the webhook event.
        Entering `pending` from `created` (the start) restarts its expiry (EXP)."""
        now = self.now()
        previous = inq.status
        inq.status = status
        inq.updated_at = now
        stamp = STATUS_TIMESTAMPS.get(status)
        if stamp and (stamp != "started_at" or inq.started_at is None):
            setattr(inq, stamp, now)
        if status == "pending" and previous == "created" and self.config.expiry_restarts_at_start:
            inq.expires_at = now + inq.expiry_after_start_seconds
        if status == "expired":
            self._end_sessions(inq.id, canceled=False)
        self.touch(inq)
        event = STATUS_EVENTS.get(status)
        if event:
            self.emit(inq, event)

    def redact(self, inq: Inquiry) -> None:
        """Redaction (DELETE /inquiries/{id}): PII gone, live sessions canceled, inquiry.redacted."""
        if inq.redacted_at is not None:
            return
        inq.redacted_at = inq.updated_at = self.now()
        inq.fields = {}
        inq.note = None
        self._end_sessions(inq.id, canceled=True)
        self.touch(inq)
        self.emit(inq, "inquiry.redacted")

    def _expire_if_due(self, inq: Inquiry) -> None:
        if inq.status in {"created", "pending"} and inq.expires_at <= self.now():
            self.set_status(inq, "expired")

    def sweep_expiry(self) -> None:
        """Expire what is due and prune old idempotency keys (each second, and as the clock moves)."""
        with self.write():
            for inq in list(self.inquiries.values()):
                self._expire_if_due(inq)
            self.prune_idempotency()

    def newest_inquiries(self, reference_ids: list[str] | None = None) -> list[Inquiry]:
        """Every inquiry (or those of these reference ids), newest first, expiring the due ones
        on the way as a read does."""
        if reference_ids is None:
            found = list(self.inquiries.values())
        else:
            found = [inq for ref in dict.fromkeys(reference_ids) for inq in self._by_reference.get(ref, [])]
        for inq in found:
            self._expire_if_due(inq)
        return sorted(found, key=lambda i: i.created_at, reverse=True)

    def advance_step(self, inq: Inquiry) -> None:
        """The flow moves one step on: `pending` on the first, and `inquiry.transitioned`."""
        if inq.status == "created":
            self.set_status(inq, "pending")
        inq.step_index = min(inq.step_index + 1, len(STEPS) - 1)
        inq.updated_at = self.now()
        self.touch(inq)
        self.emit(inq, "inquiry.transitioned")

    def one_time_link(self, inq: Inquiry, origin: str, method: str | None = None) -> dict[str, str]:
        """`meta` of generate-one-time-link; refused for an expired (until resumed) or finished
        inquiry (OTL). The link dies with the inquiry (FACTS.md §1) and works once."""
        if inq.status not in {"created", "pending"} or inq.redacted_at:
            raise StateError(409, "Conflict", f"Cannot generate a one-time link while the inquiry is {inq.status}")
        code = secrets.token_urlsafe(24)
        link = OneTimeLink(code, inq.id, self.now(), inq.expires_at, method=method)
        self.one_time_links[code] = link
        self.touch(link)
        return {"one-time-link": f"{origin}/verify?code={code}", "one-time-link-short": f"{origin}/v/{code[:10]}"}

    def open_one_time_link(self, code: str) -> tuple[Inquiry, Session]:
        """Open a one-time link on a device: a new session for its inquiry (recording the link's
        handoff method), once. StateError when it is unknown, used, or its inquiry is over."""
        link = self.one_time_links.get(code)
        if link is None or link.used_at is not None:
            raise StateError(404, "Record not found", "This link is not valid")
        inq = self.inquiry(link.inquiry_id)  # expires it if due
        if inq.status not in {"created", "pending"} or inq.redacted_at or link.expires_at <= self.now():
            raise StateError(409, "Conflict", f"This link cannot be used while the inquiry is {inq.status}")
        session = self.open_session(inq)
        session.device_handoff_method = link.method
        link.used_at = self.now()
        link.session_id = session.id
        self.touch(link)
        self.mark_used(session)
        return inq, session

    def handoff_link_opened(self, inquiry_id: str, code: str) -> bool:
        """Whether the flow's own handoff link `code` (of this inquiry) was opened on another device."""
        link = self.one_time_links.get(code)
        return link is not None and link.inquiry_id == inquiry_id and link.used_at is not None

    # -- sessions ----------------------------------------------------------------------------
    def _add_session(self, session: Session) -> None:
        self.sessions[session.id] = session
        self._sessions_of.setdefault(session.inquiry_id, []).append(session)

    def sessions_of(self, inquiry_id: str) -> list[Session]:
        return self._sessions_of.get(inquiry_id, [])

    def session(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise StateError(404, "Record not found", f"Could not find inquiry session {session_id!r}")
        self.inquiry(session.inquiry_id)  # its inquiry may be due to expire, and its sessions with it
        return session

    def resume(self, inq: Inquiry) -> str:
        """Persona's resume: reuse a valid unused session, else open one. Returns its token."""
        allowed = {"pending", "expired"} | ({"created"} if self.config.resume_allows_created else set())
        if inq.status not in allowed or inq.redacted_at:
            raise StateError(409, "Conflict", f"Inquiry cannot be resumed while it is {inq.status}")
        if inq.status == "expired":
            # Expired -> pending, with a new expiry; entering pending emits inquiry.started.
            inq.expires_at = self.now() + inq.expiry_after_resume_seconds
            self.set_status(inq, "pending")
        return self.token(self.unused_or_new_session(inq))

    def unused_or_new_session(self, inq: Inquiry) -> Session:
        """A live session nobody has used yet, else a new one (counted against the cap)."""
        for session in self.sessions_of(inq.id):
            if session.used_at is None and self._session_alive(session):
                return session
        return self.open_session(inq)

    def open_session(self, inq: Inquiry) -> Session:
        count = len(self.sessions_of(inq.id))
        if count >= self.config.max_sessions_per_inquiry:
            raise StateError(
                self.config.session_cap_status, "Session limit reached", f"Inquiry already has {count} sessions"
            )
        now = self.now()
        session = Session(
            id=new_id("iqse_"),
            inquiry_id=inq.id,
            created_at=now,
            expires_at=inq.expires_at,
            unused_until=now + self.config.unused_session_token_seconds,
        )
        self._add_session(session)
        self.touch(session)
        self.touch(inq)  # its `sessions` relationship changed
        return session

    def _session_alive(self, session: Session) -> bool:
        return session.status(self.now()) == "active"

    def mark_used(self, session: Session) -> None:
        """A flow opened with this session: it is started (and lives on until its expiry)."""
        if session.used_at is None:
            session.used_at = self.now()
            self.touch(session)
            self.emit_session(session, "inquiry-session.started")

    def token(self, session: Session) -> str:
        claims = {
            "sub": session.id,
            "aud": "persona-verify",
            "iss": "persona-emulator",
            "iat": int(session.created_at),
            "exp": int(session.expires_at),
            "jti": secrets.token_hex(8),
            "inquiry_id": session.inquiry_id,
        }
        return jwt.encode(claims, self.config.token_secret, algorithm="HS256")

    def session_for_token(self, inquiry_id: str, token: str | None) -> Session | None:
        """The live session a token opens for this inquiry, or None (the "Session expired" case)."""
        if not token:
            return None
        try:
            claims = jwt.decode(
                token,
                self.config.token_secret,
                algorithms=["HS256"],
                audience="persona-verify",
                # The emulator clock decides (tests move it), not the wall clock.
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            return None
        session = self.sessions.get(str(claims.get("sub")))
        if session is None or session.inquiry_id != inquiry_id or not self._session_alive(session):
            return None
        return session

    def expire_session(self, session: Session) -> bool:
        """End a live session now (inquiry-session.expired); False if it was no longer live."""
        if not self._session_alive(session):
            return False
        session.revoked_at = self.now()
        self.touch(session)
        self.emit_session(session, "inquiry-session.expired")
        return True

    def _end_sessions(self, inquiry_id: str, *, canceled: bool) -> list[Session]:
        ended = []
        for session in self.sessions_of(inquiry_id):
            if not self._session_alive(session):
                continue
            if canceled:
                session.canceled_at = self.now()
                self.touch(session)
                self.emit_session(session, "inquiry-session.canceled")
            else:
                self.expire_session(session)
            ended.append(session)
        return ended

    def kill_sessions(self, inquiry_id: str) -> int:
        with self.write():
            self.inquiry(inquiry_id)
            return len(self._end_sessions(inquiry_id, canceled=False))

    # -- idempotency -------------------------------------------------------------------------
    @staticmethod
    def body_digest(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()

    def remember(self, record: IdempotencyRecord) -> None:
        """Store the first answer under a key; the oldest go beyond `idempotency_max_records`."""
        self.idempotency[record.id] = record
        self.touch(record)
        while len(self.idempotency) > self.config.idempotency_max_records:
            self._forget(self.idempotency.pop(next(iter(self.idempotency))))

    def remembered(self, key: str) -> IdempotencyRecord | None:
        """The stored answer for a key, unless it is older than the key's lifetime."""
        record = self.idempotency.get(key)
        if record is None or record.at <= self.now() - self.config.idempotency_ttl_seconds:
            return None
        return record

    def prune_idempotency(self) -> None:
        """Drop keys past their lifetime (they are kept in the order they were stored)."""
        cutoff = self.now() - self.config.idempotency_ttl_seconds
        while self.idempotency:
            oldest = next(iter(self.idempotency.values()))
            if oldest.at > cutoff:
                break
            self._forget(self.idempotency.pop(oldest.id))

    # -- events and deliveries ---------------------------------------------------------------
    def emit(self, inq: Inquiry, name: str) -> Event:
        """Record an inquiry event and queue its deliveries to every webhook URL."""
        return self._emit(name, inq.id, serialize_inquiry(inq, self))

    def emit_session(self, session: Session, name: str) -> Event:
        return self._emit(name, session.inquiry_id, serialize_session(session, self))

    def _emit(self, name: str, inquiry_id: str, payload: dict[str, Any]) -> Event:
        event = Event(id=new_id("evt_"), name=name, created_at=self.now(), inquiry_id=inquiry_id, payload=payload)
        self.events[event.id] = event
        self.touch(event)
        for url in self.config.webhook_urls:
            self.add_delivery(event.id, url)
        self.changed.notify_all()
        return event

    def _add_delivery(self, delivery: Delivery) -> None:
        self.deliveries[delivery.id] = delivery
        if delivery.state not in {"delivered", "failed"}:
            self.open_deliveries[delivery.id] = delivery

    def add_delivery(self, event_id: str, url: str) -> Delivery:
        delivery = Delivery(
            id=new_id("whd_"),
            event_id=event_id,
            url=url,
            state="held" if self.settings.webhooks_paused else "pending",
            next_attempt_at=time.time(),
        )
        self._add_delivery(delivery)
        self.touch(delivery)
        return delivery

    def settle(self, delivery: Delivery) -> None:
        """Save a delivery after an attempt; a finished one leaves the open set."""
        if delivery.state in {"delivered", "failed"}:
            self.open_deliveries.pop(delivery.id, None)
        self.touch(delivery)

    def event(self, event_id: str) -> Event:
        event = self.events.get(event_id)
        if event is None:
            raise StateError(404, "Record not found", f"Could not find event {event_id!r}")
        return event

    def pause_webhooks(self, paused: bool) -> None:
        self.settings.webhooks_paused = paused
        self.touch(self.settings)


def _interval(attrs: dict[str, Any], meta: dict[str, Any], which: str) -> int | None:
    """A create-time expiry override (CHG 2024-08-26), in attributes or meta, kebab or snake case."""
    for name in (f"expiration-after-{which}-interval-seconds", f"expiration_after_{which}_interval_seconds"):
        for source in (attrs, meta):
            value = source.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise StateError(400, "Bad request", f"{name} must be a positive number of seconds")
            return value
    return None


def serialize_session(session: Session, store: Store) -> dict[str, Any]:
    """An inquiry session as Persona's JSON:API object (kebab-case attributes)."""
    now = store.now()
    ended = session.revoked_at if session.revoked_at is not None else None
    if ended is None and session.status(now) == "expired":
        ended = session.expires_at if session.used_at is not None else min(session.expires_at, session.unused_until)
    return {
        "type": "inquiry-session",
        "id": session.id,
        "attributes": {
            "status": session.status(now),
            "created-at": iso(session.created_at),
            "started-at": iso(session.used_at),
            "expired-at": iso(ended),
            "canceled-at": iso(session.canceled_at),
            "ip-address": None,
            "user-agent": None,
            "device-handoff-method": session.device_handoff_method,
        },
        "relationships": {"inquiry": {"data": {"type": "inquiry", "id": session.inquiry_id}}},
    }


def serialize_template(template: Template) -> dict[str, Any]:
    """An inquiry template as `included` carries it (`?include=inquiry-template`): its latest
    published version as a relationship (RES, APIR; attribute set assumed)."""
    latest = {"type": "inquiry-template-version", "id": template.latest_published_version_id}
    return {
        "type": "inquiry-template",
        "id": template.id,
        "attributes": {"status": "active"},
        "relationships": {"latest-published-version": {"data": latest}},
    }


def serialize_inquiry(inq: Inquiry, store: Store) -> dict[str, Any]:
    """The inquiry as Persona's JSON:API object (kebab-case attributes)."""
    step = STEPS[inq.step_index] if inq.status in RESUMABLE else None
    previous = STEPS[inq.step_index - 1] if inq.step_index > 0 else None
    return {
        "type": "inquiry",
        "id": inq.id,
        "attributes": {
            "status": inq.status,
            "reference-id": inq.reference_id,
            "note": inq.note,
            "behaviors": {},
            "tags": [],
            "creator": "API",
            "reviewer-comment": None,
            "created-at": iso(inq.created_at),
            "updated-at": iso(inq.updated_at),
            "started-at": iso(inq.started_at),
            "expires-at": iso(inq.expires_at),
            "completed-at": iso(inq.completed_at),
            "failed-at": iso(inq.failed_at),
            "marked-for-review-at": iso(inq.marked_for_review_at),
            "decisioned-at": iso(inq.decisioned_at),
            "expired-at": iso(inq.expired_at),
            "redacted-at": iso(inq.redacted_at),
            "previous-step-name": previous,
            "next-step-name": step,
            "fields": inq.fields,
        },
        "relationships": {
            "account": {"data": {"type": "account", "id": inq.account_id} if inq.account_id else None},
            "inquiry-template": {"data": {"type": "inquiry-template", "id": inq.template_id}},
            "inquiry-template-version": {
                "data": {"type": "inquiry-template-version", "id": inq.template_version_id}
                if inq.template_version_id
                else None
            },
            "sessions": {"data": [{"type": "inquiry-session", "id": s.id} for s in store.sessions_of(inq.id)]},
        },
    }
