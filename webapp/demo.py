"""Demo data for `make run`: one user per inquiry state, made real in the Persona emulator.

Talks to the emulator's control API (`/_emulator`), so it only runs in emulator mode.
"""

from __future__ import annotations

import logging

import requests
from flask import current_app
from sqlalchemy import delete

from . import accounts, services, verification
from .extensions import db
from .models import Inquiry
from .persona import PersonaNotFoundError

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo-password"  # the published demo accounts (make run)  # nosec B105
# email -> the statuses the emulator walks the inquiry through (None: no inquiry at all)
DEMO_USERS: dict[str, list[str] | None] = {
    "new@demo.test": None,
    "created@demo.test": [],
    "pending@demo.test": ["pending"],
    "expired@demo.test": ["pending", "expired"],
    "completed@demo.test": ["pending", "completed"],
    "review@demo.test": ["pending", "completed", "needs_review"],
    "approved@demo.test": ["pending", "completed", "approved"],
    "declined@demo.test": ["pending", "completed", "declined"],
    "failed@demo.test": ["pending", "failed"],
}


def control_url(path: str) -> str:
    base = current_app.config["PERSONA_API_BASE_URL"].removesuffix("/api/v1")
    return f"{base}/_emulator{path}"


def seed_demo_data() -> list[tuple[str, str]]:
    """Create the demo users and inquiries that are missing; returns (email, what happened)."""
    if not current_app.config["PERSONA_USES_EMULATOR"]:
        raise RuntimeError("demo data needs the Persona emulator (no PERSONA_API_KEY set)")
    report = []
    for email, walk in DEMO_USERS.items():
        user = accounts.get_user_by_email(email) or accounts.create_user(email, DEMO_PASSWORD, confirmed=True)
        accounts.confirm_email(user)  # a demo database from before confirmation existed
        if walk is None:
            report.append((email, "no inquiry"))
            continue
        current = verification.get_current_inquiry(user)
        if current is not None and _known_to_emulator(current):
            report.append((email, f"kept {current.status}"))
            continue
        # The emulator was reset: forget inquiries it no longer knows, start over.
        db.session.execute(delete(Inquiry).where(Inquiry.user_id == user.id))
        db.session.commit()
        # One walked through statuses here was never opened: no session from its create.
        inquiry = verification.start_inquiry(user, with_session=not walk)
        for status in walk:
            response = requests.post(
                control_url(f"/inquiries/{inquiry.persona_id}/status"),
                json={"status": status},
                timeout=5,
            )
            response.raise_for_status()
        verification.read_from_persona(inquiry)
        report.append((email, f"created {inquiry.status}"))
    return report


def _known_to_emulator(inquiry: Inquiry) -> bool:
    try:
        services.persona().get_inquiry(inquiry.persona_id)
    except PersonaNotFoundError:
        return False
    return True
