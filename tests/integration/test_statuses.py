"""One guarded way a status is stored, for webhook events and API reads alike (statuses.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.builders import new_link
from tests.pages import boot_config, csrf_from, sign_in
from tests.webhook_signer import event_body, later, signature
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import Inquiry, RecoveryLink
from webapp.statuses import InquiryStatus, apply_status_if_newer

pytestmark = pytest.mark.postgres_too


def stored(app, persona_id: str) -> Inquiry:
    with app.app_context():
        inquiry = db.session.scalar(select(Inquiry).where(Inquiry.persona_id == persona_id))
        db.session.expunge(inquiry)
        return inquiry


def deliver(client, body: bytes):
    return client.post(
        "/webhooks/persona",
        data=body,
        headers={"Content-Type": "application/json", "Persona-Signature": signature(body, "wbhsec_test_secret")},
    )


def complete(client):
    """What the page script does when the flow says it finished."""
    token = csrf_from(client.get("/verify").get_data(as_text=True))
    return client.post("/verify/complete", headers={"X-CSRFToken": token, "Accept": "application/json"})


def test_an_event_at_the_same_instant_as_the_stored_one_changes_nothing(app, client, inquiry_id):
    at = later(10)
    assert deliver(client, event_body("inquiry.completed", inquiry_id, at=at)).get_json()["message"] == (
        "status completed"
    )
    tie = deliver(client, event_body("inquiry.approved", inquiry_id, at=at))
    assert tie.get_json()["message"] == "ignored: older than the current status"
    assert stored(app, inquiry_id).status == "completed"


def test_a_read_begun_in_the_same_tick_as_the_stored_one_wins(app, inquiry_id):
    as_of = utcnow()
    with app.app_context():
        inquiry = db.session.scalar(select(Inquiry).where(Inquiry.persona_id == inquiry_id))
        assert apply_status_if_newer(inquiry, InquiryStatus.COMPLETED, as_of=as_of, source="read")
        assert apply_status_if_newer(inquiry, InquiryStatus.NEEDS_REVIEW, as_of=as_of, source="read")
        assert not apply_status_if_newer(
            inquiry, InquiryStatus.PENDING, as_of=as_of - timedelta(seconds=1), source="read"
        )
        db.session.commit()
    assert stored(app, inquiry_id).status == "needs_review"


def test_an_api_read_of_expired_drops_the_stored_token_as_the_webhook_does(app, client, person, emulator):
    """Persona expires an inquiry's sessions with it (FACTS.md §1), also when expired early."""
    sign_in(client)
    assert boot_config(client.get("/verify"))["sessionToken"]
    persona_id = emulator.inquiries()[0]["id"]
    emulator.set_status(persona_id, "expired")
    assert complete(client).status_code == 200
    inquiry = stored(app, persona_id)
    assert inquiry.status == "expired" and inquiry.session_token_ciphertext is None


def test_an_api_read_of_a_decision_revokes_emailed_links_as_the_webhook_does(app, client, person, emulator):
    new_link(app, person)
    sign_in(client)
    persona_id = emulator.inquiries()[0]["id"]
    emulator.set_status(persona_id, "completed", "approved")
    assert complete(client).status_code == 200
    with app.app_context():
        assert [link.revoked_at is not None for link in db.session.scalars(select(RecoveryLink))] == [True]
