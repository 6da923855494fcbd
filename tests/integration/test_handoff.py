"""'Continue on your phone' (issue #14 item 3): the QR code's link is single use, scanner-safe,
bound to the person and the inquiry, rotates (older links die soon after), dies with the
inquiry, and the computer's polling answers from any app instance."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.builders import give_inquiry, make_user
from tests.pages import csrf_from, path_of, sign_in
from tests.webhook_signer import event_body, later, signature
from webapp import clock
from webapp.extensions import db
from webapp.models import LinkPurpose, RecoveryLink

pytestmark = pytest.mark.postgres_too

JSON = {"Accept": "application/json"}


def new_handoff(client) -> dict:
    """Press "Continue on your phone" as the page script does: the JSON answer."""
    page = client.get("/verify")
    answer = client.post(
        "/verify/handoff-link", headers={**JSON, "X-CSRFToken": csrf_from(page.get_data(as_text=True))}
    )
    assert answer.status_code == 200, answer.data
    assert answer.headers["Cache-Control"] == "no-store"
    return answer.get_json()


def poll(client, since: int) -> dict:
    answer = client.get(f"/verify/handoff-status?since={since}", headers=JSON)
    assert answer.status_code == 200, answer.data
    return answer.get_json()


def scan(app, url: str):
    """A phone opens the QR code's link: the token leaves the address bar; the landing page."""
    phone = app.test_client()
    first = phone.get(path_of(url))
    assert first.status_code == 303 and first.headers["Location"] == "/h"
    return phone, phone.get("/h")


def press_continue(phone, landing):
    return phone.post("/h", data={"csrf_token": csrf_from(landing.get_data(as_text=True))})


def test_the_qr_code_encodes_the_link_and_the_phone_continues_after_seeing_whose_it_is(app, client, pending_user):
    handoff = new_handoff(client)
    url = handoff["url"]
    assert re.fullmatch(re.escape(app.config["PUBLIC_BASE_URL"]) + r"/h/[A-Za-z0-9_-]{43}", url)
    assert handoff["qrSvg"].startswith("<svg") and "<script" not in handoff["qrSvg"]
    # (The browser test decodes the code on screen with zbarimg.)

    assert poll(client, handoff["issuedAt"]) == {"state": "waiting"}
    for _ in range(3):  # link scanners and previews use nothing
        scanner = app.test_client()
        scanner.get(path_of(url), follow_redirects=True)
    phone, landing = scan(app, url)
    page = landing.get_data(as_text=True)
    assert landing.status_code == 200
    assert "This link is for <strong>a•••@example.test</strong>" in page and "Not you?" in page
    assert "Continue verification" in page and "on your computer" in page
    assert poll(client, handoff["issuedAt"]) == {"state": "waiting"}

    used = press_continue(phone, landing)
    assert used.status_code == 303 and used.headers["Location"] == "/verify"
    assert phone.get("/verify").status_code == 200  # signed in on the phone, for verification
    assert poll(client, handoff["issuedAt"]) == {"state": "on_phone"}
    assert poll(client, handoff["issuedAt"] + 60_000) == {"state": "waiting"}  # a panel opened later

    again = app.test_client()  # single use
    assert again.get(path_of(url)).status_code == 303
    assert again.get("/h").status_code == 404


def test_rotation_kills_older_links_after_the_grace_and_only_one_wins(app, client, pending_user, monkeypatch):
    first = new_handoff(client)["url"]
    second = new_handoff(client)["url"]
    # Within the grace both work: a phone that scanned a moment ago can still press its button.
    phone, landing = scan(app, first)
    assert landing.status_code == 200
    monkeypatch.setattr(clock, "offset", timedelta(seconds=app.config["HANDOFF_GRACE_SECONDS"] + 1))
    assert press_continue(phone, landing).status_code == 404  # the older one died
    phone2, landing2 = scan(app, second)
    assert landing2.status_code == 200  # the newest lives its full life
    assert press_continue(phone2, landing2).status_code == 303


def test_the_link_dies_with_the_inquiry_and_the_computer_follows_to_the_result(app, client, pending_user, emulator):
    handoff = new_handoff(client)
    phone, landing = scan(app, handoff["url"])
    body = event_body("inquiry.completed", pending_user, at=later(5))
    delivered = client.post(
        "/webhooks/persona",
        data=body,
        headers={"Content-Type": "application/json", "Persona-Signature": signature(body, "wbhsec_test_secret")},
    )
    assert delivered.status_code < 300
    assert press_continue(phone, landing).status_code == 404
    assert poll(client, handoff["issuedAt"]) == {"state": "finished", "redirect": "/verify"}
    refused = client.post(
        "/verify/handoff-link", headers={**JSON, "X-CSRFToken": csrf_from(client.get("/").get_data(as_text=True))}
    )
    assert refused.get_json() == {"redirect": "/verify"}


def test_a_handoff_link_is_bound_to_its_person_and_purpose(app, client, pending_user, emulator):
    url = new_handoff(client)["url"]
    token = path_of(url).removeprefix("/h/")
    other = app.test_client()  # someone else, signed in, scans it
    bob = make_user(app, "bob@example.test")
    give_inquiry(app, emulator, bob, "pending")
    sign_in(other, "bob@example.test")
    assert other.get(path_of(url)).status_code == 303
    assert other.get("/h").status_code == 403
    assert other.get("/verify").status_code == 200  # bob keeps his own session
    # Not a recovery link, nor a copied in-app link.
    stranger = app.test_client()
    stranger.get(f"/r/{token}")
    assert stranger.get("/r").status_code == 404
    stranger.get(f"/open/{token}")
    assert stranger.get("/open").status_code == 404
    with app.app_context():
        link = db.session.scalar(select(RecoveryLink).where(RecoveryLink.purpose == LinkPurpose.HANDOFF))
        assert link.inquiry is not None and link.inquiry.persona_id == pending_user
        assert (link.expires_at - link.created_at).total_seconds() == pytest.approx(600, abs=2)


def test_without_javascript_the_button_shows_a_page_with_the_code(client, pending_user):
    page = client.get("/verify")
    answer = client.post("/verify/handoff-link", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert 'role="img"' in html and "<svg" in html and "/h/" in html


@pytest.mark.parametrize("since", ["", "abc", "-5", "9" * 14, "9" * 40, "1e9"])
def test_a_bad_poll_is_a_400_in_json(client, pending_user, since):
    answer = client.get(f"/verify/handoff-status?since={since}", headers=JSON)
    assert answer.status_code == 400 and answer.is_json


def test_any_app_instance_answers_the_poll(make_app, app, client, pending_user):
    handoff = new_handoff(client)
    phone, landing = scan(app, handoff["url"])
    other_instance = make_app()  # same database, another process's worth of state
    press_continue(phone, landing)
    other_client = other_instance.test_client()
    other_client.set_cookie("session", client.get_cookie("session").value)
    assert poll(other_client, handoff["issuedAt"]) == {"state": "on_phone"}
