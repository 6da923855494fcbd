"""Steps: `next-step-name` values are each template's own (FACTS §9), so the page counts only
the steps PERSONA_TEMPLATE_STEPS names, and keeps the step current from `inquiry.transitioned`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import select

from tests.builders import make_user
from tests.pages import sign_in
from tests.webhook_signer import WEBHOOK_SECRET, signature
from webapp.extensions import db
from webapp.models import Inquiry

pytestmark = pytest.mark.postgres_too


def stored(app, inquiry_id: str) -> Inquiry:
    with app.app_context():
        row = db.session.scalar(select(Inquiry).where(Inquiry.persona_id == inquiry_id))
        db.session.expunge(row)
        return row


def summary_of(app, email: str = "ada@example.test") -> str:
    """The continue page's "where you are" card for a new person (the app creates the inquiry)."""
    client = app.test_client()
    make_user(app, email)
    sign_in(client, email)
    html = client.get("/verify").get_data(as_text=True)
    start = html.index('aria-label="Where you are"')
    return html[start : html.index("</section>", start)]


def test_the_emulators_steps_are_the_demo_default(app):
    text = summary_of(app)
    assert "3 steps left." in text and "Next: Choose your ID type." in text


def test_with_no_steps_configured_the_page_claims_no_steps(make_app):
    text = summary_of(make_app(PERSONA_TEMPLATE_STEPS=[]))
    assert "step" not in text.lower()  # neither a count nor the emulator's three steps
    assert "Have your ID at hand." in text


def test_another_templates_steps_are_counted_and_named_only_where_we_have_a_label(make_app):
    # The emulator's first step is `select_id_type`: here the second of four in the template.
    text = summary_of(make_app(PERSONA_TEMPLATE_STEPS=["start", "select_id_type", "verification_document", "done"]))
    assert "3 steps left." in text and "Next: Choose your ID type." in text
    text = summary_of(make_app(PERSONA_TEMPLATE_STEPS=["select_id_type", "verification_selfie"]), "bo@example.test")
    assert "2 steps left." in text  # `verification_selfie` has no label of ours: counted only


def flow(emulator, path: str, **body) -> dict:
    """What the emulated flow's page does over HTTP when the person presses a button."""
    answer = requests.post(f"{emulator.origin}/widget/api/{path}", json=body, timeout=5)
    answer.raise_for_status()
    return answer.json()


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_transitioned_webhooks_keep_the_step_current(app, live_server, emulator):
    client = app.test_client()
    make_user(app)
    sign_in(client)
    client.get("/verify")  # the app creates the inquiry: `created`, at the first step
    inquiry_id = emulator.inquiries()[0]["id"]
    token = flow(emulator, "session", inquiryId=inquiry_id)["sessionToken"]
    flow(emulator, "step", inquiryId=inquiry_id, sessionToken=token, action="continue")
    # `inquiry.started` and `inquiry.transitioned` at the same instant, in any order.
    wait_for(lambda: stored(app, inquiry_id).next_step_name == "document_front")
    assert stored(app, inquiry_id).status == "pending"
    flow(emulator, "step", inquiryId=inquiry_id, sessionToken=token, action="continue")
    wait_for(lambda: stored(app, inquiry_id).next_step_name == "selfie")
    assert stored(app, inquiry_id).status == "pending"


def event(name: str, inquiry_id: str, at: str, status: str, step: str | None) -> bytes:
    attributes = {"status": status, "next-step-name": step}
    subject = {"type": "inquiry", "id": inquiry_id, "attributes": attributes}
    document = {"data": {"type": "event", "id": f"evt_{name}_{status}_{step}", "attributes": {}}}
    document["data"]["attributes"] = {"name": name, "created-at": at, "payload": {"data": subject}}
    return json.dumps(document).encode()


def deliver(client, body: bytes) -> str:
    answer = client.post(
        "/webhooks/persona",
        data=body,
        headers={"Content-Type": "application/json", "Persona-Signature": signature(body, WEBHOOK_SECRET)},
    )
    assert answer.status_code == 200
    return answer.get_json()["message"]


@pytest.mark.parametrize("transition_first", [False, True])
def test_a_transition_at_the_same_instant_as_the_start_is_the_later_fact(app, emulator, transition_first):
    from tests.builders import give_inquiry

    inquiry_id = give_inquiry(app, emulator, make_user(app))
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    started = event("inquiry.started", inquiry_id, at, "pending", "select_id_type")
    moved_on = event("inquiry.transitioned", inquiry_id, at, "pending", "document_front")
    client = app.test_client()
    for body in [moved_on, started] if transition_first else [started, moved_on]:
        deliver(client, body)
    row = stored(app, inquiry_id)
    assert (row.status, row.next_step_name) == ("pending", "document_front")


def test_a_transition_never_moves_a_status_back(app, emulator):
    from tests.builders import give_inquiry

    inquiry_id = give_inquiry(app, emulator, make_user(app))
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    client = app.test_client()
    deliver(client, event("inquiry.completed", inquiry_id, at, "completed", None))
    assert deliver(client, event("inquiry.transitioned", inquiry_id, at, "pending", "selfie")).startswith("ignored")
    assert stored(app, inquiry_id).status == "completed"
