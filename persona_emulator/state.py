"""The emulator's world: inquiries, sessions, events, idempotency records and the clock.

One lock guards everything; every change is written to a JSON file so the state survives
restarts. Times are unix seconds on the emulator clock (`Store.now()`), which control calls
can move forward to make inquiries expire.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import secrets
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import jwt

from .config import EmulatorConfig

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


class Store:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._initial_config = copy.deepcopy(config)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.requests: deque[dict] = deque(maxlen=2000)
        self.faults: list[dict] = []
        self.rate_window: tuple[int, int] = (0, 0)  # (minute, count)
        self._reset_data()
        self.load()

    # -- persistence -------------------------------------------------------------------------
    def _reset_data(self) -> None:
        self.data: dict[str, Any] = {
            "clock_offset": 0.0,
            "inquiries": {},
            "sessions": {},
            "events": [],
            "deliveries": [],
            "idempotency": {},
            "webhooks_paused": False,
        }

    def load(self) -> None:
        path = self.config.state_file
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                self.data.update(json.load(fh))

    def save(self) -> None:
        path = self.config.state_file
        if not path:
            return
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.data, fh)
        os.replace(tmp, path)

    def reset(self) -> None:
        """Empty state, no faults, no request log, and the settings it started with."""
        with self.lock:
            for name in self.config.__dataclass_fields__:
                setattr(self.config, name, copy.deepcopy(getattr(self._initial_config, name)))
            self._reset_data()
            self.requests.clear()
            self.faults.clear()
            self.save()

    # -- clock -------------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.data["clock_offset"]

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.data["clock_offset"] += seconds
            self.sweep_expiry()
            self.save()

    # -- inquiries ---------------------------------------------------------------------------
    def inquiry(self, inquiry_id: str) -> dict:
        inq = self.data["inquiries"].get(inquiry_id)
        if inq is None:
            raise StateError(404, "Record not found", f"Could not find inquiry {inquiry_id!r}")
        self._expire_if_due(inq)
        return inq

    def create_inquiry(self, attrs: dict) -> dict:
        now = self.now()
        template = (
            attrs.get("inquiry-template-id") or attrs.get("template-id") or attrs.get("inquiry-template-version-id")
        )
        if not template:
            raise StateError(422, "Must specify a template", "inquiry-template-id or template-id is required")
        fields = attrs.get("fields") or {}
        if not isinstance(fields, dict):
            raise StateError(400, "Bad request", "fields must be an object")
        inq = {
            "id": new_id("inq_"),
            "status": "created",
            "reference_id": attrs.get("reference-id"),
            "template_id": str(template),
            "note": attrs.get("note"),
            "fields": {k: {"type": "string", "value": v} for k, v in fields.items()},
            "created_at": now,
            "updated_at": now,
            "started_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "expires_at": now + self.config.expiry_after_create_seconds,
            "decisioned_at": None,
            "marked_for_review_at": None,
            "redacted_at": None,
            "step_index": 0,
        }
        self.data["inquiries"][inq["id"]] = inq
        self.emit(inq, "inquiry.created")
        return inq

    def set_status(self, inq: dict, status: str) -> None:
        """Move an inquiry to `status`, stamping its timestamps and emitting the webhook event."""
        now = self.now()
        inq["status"] = status
        inq["updated_at"] = now
        stamp = STATUS_TIMESTAMPS.get(status)
        if stamp and (stamp != "started_at" or inq["started_at"] is None):
            inq[stamp] = now
        if status == "expired":
            self._kill_sessions(inq["id"])
        event = STATUS_EVENTS.get(status)
        if event:
            self.emit(inq, event)

    def _expire_if_due(self, inq: dict) -> None:
        if inq["status"] in {"created", "pending"} and inq["expires_at"] <= self.now():
            self.set_status(inq, "expired")
            self.save()

    def sweep_expiry(self) -> None:
        with self.lock:
            for inq in list(self.data["inquiries"].values()):
                self._expire_if_due(inq)

    def list_inquiries(self, reference_id: str | None, statuses: list[str] | None, size: int) -> list[dict]:
        found = []
        for inq in self.data["inquiries"].values():
            self._expire_if_due(inq)
            if reference_id is not None and inq["reference_id"] != reference_id:
                continue
            if statuses and inq["status"] not in statuses:
                continue
            found.append(inq)
        found.sort(key=lambda i: i["created_at"], reverse=True)
        return found[:size]

    def advance_step(self, inq: dict) -> None:
        if inq["status"] == "created":
            self.set_status(inq, "pending")
        inq["step_index"] = min(inq["step_index"] + 1, len(STEPS) - 1)
        inq["updated_at"] = self.now()

    # -- sessions ----------------------------------------------------------------------------
    def resume(self, inq: dict) -> str:
        """Persona's resume: reuse a valid unused session, else open one. Returns its token."""
        allowed = {"pending", "expired"} | ({"created"} if self.config.resume_allows_created else set())
        if inq["status"] not in allowed or inq["redacted_at"]:
            raise StateError(
                409,
                "Conflict",
                f"Inquiry cannot be resumed while it is {inq['status']}",
            )
        if inq["status"] == "expired":
            # Expired -> pending, with a new expiry; entering pending emits inquiry.started.
            inq["expires_at"] = self.now() + self.config.expiry_after_resume_seconds
            self.set_status(inq, "pending")
        for session in self.data["sessions"].values():
            if session["inquiry_id"] == inq["id"] and session["used_at"] is None and self._session_alive(session):
                return self._token(session)
        return self._token(self.open_session(inq))

    def open_session(self, inq: dict) -> dict:
        count = sum(1 for s in self.data["sessions"].values() if s["inquiry_id"] == inq["id"])
        if count >= self.config.max_sessions_per_inquiry:
            raise StateError(
                self.config.session_cap_status,
                "Session limit reached",
                f"Inquiry already has {count} sessions",
            )
        session = {
            "id": new_id("iqse_"),
            "inquiry_id": inq["id"],
            "created_at": self.now(),
            # A session dies when its inquiry did at the moment it was made (FACTS.md §1).
            "expires_at": inq["expires_at"],
            "used_at": None,
            "revoked_at": None,
        }
        self.data["sessions"][session["id"]] = session
        return session

    def _session_alive(self, session: dict) -> bool:
        return session["revoked_at"] is None and session["expires_at"] > self.now()

    def _token(self, session: dict) -> str:
        claims = {
            "sub": session["id"],
            "aud": "persona-verify",
            "iss": "persona-emulator",
            "iat": int(session["created_at"]),
            "exp": int(session["expires_at"]),
            "jti": secrets.token_hex(8),
            "inquiry_id": session["inquiry_id"],
        }
        return jwt.encode(claims, self.config.token_secret, algorithm="HS256")

    def session_for_token(self, inquiry_id: str, token: str | None) -> dict | None:
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
        session = self.data["sessions"].get(claims.get("sub"))
        if session is None or session["inquiry_id"] != inquiry_id or not self._session_alive(session):
            return None
        return session

    def _kill_sessions(self, inquiry_id: str) -> int:
        killed = 0
        for session in self.data["sessions"].values():
            if session["inquiry_id"] == inquiry_id and session["revoked_at"] is None:
                session["revoked_at"] = self.now()
                killed += 1
        return killed

    def kill_sessions(self, inquiry_id: str) -> int:
        with self.lock:
            self.inquiry(inquiry_id)
            killed = self._kill_sessions(inquiry_id)
            self.save()
            return killed

    def session_count(self, inquiry_id: str) -> int:
        return sum(1 for s in self.data["sessions"].values() if s["inquiry_id"] == inquiry_id)

    # -- idempotency -------------------------------------------------------------------------
    @staticmethod
    def body_digest(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()

    # -- events and deliveries ---------------------------------------------------------------
    def emit(self, inq: dict, name: str) -> dict:
        event = {
            "id": new_id("evt_"),
            "name": name,
            "created_at": self.now(),
            "inquiry": serialize_inquiry(inq, self),
        }
        self.data["events"].append(event)
        for url in self.config.webhook_urls:
            self.data["deliveries"].append(self.new_delivery(event["id"], url))
        self.changed.notify_all()
        return event

    def new_delivery(self, event_id: str, url: str) -> dict:
        return {
            "id": new_id("whd_"),
            "event_id": event_id,
            "url": url,
            "state": "held" if self.data["webhooks_paused"] else "pending",
            "attempts": [],
            "first_attempted_at": None,
            "next_attempt_at": time.time(),
        }

    def event(self, event_id: str) -> dict:
        for event in self.data["events"]:
            if event["id"] == event_id:
                return event
        raise StateError(404, "Record not found", f"Could not find event {event_id!r}")


def serialize_inquiry(inq: dict, store: Store) -> dict:
    """The inquiry as Persona's JSON:API object (kebab-case attributes)."""
    step = STEPS[inq["step_index"]] if inq["status"] in RESUMABLE else None
    previous = STEPS[inq["step_index"] - 1] if inq["step_index"] > 0 else None
    return {
        "type": "inquiry",
        "id": inq["id"],
        "attributes": {
            "status": inq["status"],
            "reference-id": inq["reference_id"],
            "note": inq["note"],
            "behaviors": {},
            "tags": [],
            "creator": "API",
            "reviewer-comment": None,
            "created-at": iso(inq["created_at"]),
            "updated-at": iso(inq["updated_at"]),
            "started-at": iso(inq["started_at"]),
            "expires-at": iso(inq["expires_at"]),
            "completed-at": iso(inq["completed_at"]),
            "failed-at": iso(inq["failed_at"]),
            "marked-for-review-at": iso(inq["marked_for_review_at"]),
            "decisioned-at": iso(inq["decisioned_at"]),
            "expired-at": iso(inq["expired_at"]),
            "redacted-at": iso(inq["redacted_at"]),
            "previous-step-name": previous,
            "next-step-name": step,
            "fields": inq["fields"],
        },
        "relationships": {
            "inquiry-template": {"data": {"type": "inquiry-template", "id": inq["template_id"]}},
            "sessions": {
                "data": [
                    {"type": "inquiry-session", "id": s["id"]}
                    for s in store.data["sessions"].values()
                    if s["inquiry_id"] == inq["id"]
                ]
            },
        },
    }
