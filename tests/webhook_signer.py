"""Builds and signs Persona-style webhook deliveries for tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime, timedelta

# The secret the test apps are configured with, and the emulator signs with.
WEBHOOK_SECRET = "wbhsec_test_secret"


def event_body(
    name: str, inquiry_id: str, *, at: datetime | None = None, event_id: str | None = None, status: str | None = None
) -> bytes:
    at = at or datetime.now(UTC)
    document = {
        "data": {
            "type": "event",
            "id": event_id or "evt_" + secrets.token_hex(8),
            "attributes": {
                "name": name,
                "created-at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "payload": {
                    "data": {
                        "type": "inquiry",
                        "id": inquiry_id,
                        "attributes": {"status": status or name.split(".")[-1]},
                    }
                },
            },
        }
    }
    return json.dumps(document).encode()


def signature(body: bytes, secret: str, t: int | None = None) -> str:
    t = int(time.time()) if t is None else t
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
