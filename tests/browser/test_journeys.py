"""The journeys that matter most on a phone, in Chromium and in WebKit (Safari's engine).

Each test runs once per engine (`open_browser` is parametrised): the same steps, two drivers.
The real Persona SDK, the emulator over a socket, CSRF on."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from tests.browser import journeys
from tests.builders import give_inquiry, make_user
from tests.mailbox import link_in, outbox
from webapp.extensions import db
from webapp.models import Inquiry, User

EXPECTED_STATES = {
    "new@demo.test": "continue",
    "created@demo.test": "continue",
    "pending@demo.test": "continue",
    "expired@demo.test": "continue",
    "completed@demo.test": "processing",
    "review@demo.test": "review",
    "approved@demo.test": "approved",
    "declined@demo.test": "declined",
    "failed@demo.test": "failed",
}


def inquiry_of(app, email: str) -> Inquiry:
    from webapp.accounts import get_user_by_email
    from webapp.verification import get_current_inquiry

    with app.app_context():
        inquiry = get_current_inquiry(get_user_by_email(email))
        db.session.expunge(inquiry)
        return inquiry


def test_each_demo_state_shows_its_page(open_browser, demo):
    for email, state in EXPECTED_STATES.items():
        driver = open_browser()
        journeys.sign_in(driver, demo.url, email)
        journeys.state_is(driver, state)
        if state == "continue":
            journeys.flow_is_open(driver)
        else:  # a status page: its own heading, and no flow
            assert driver.evaluate("document.querySelectorAll('main h1').length") == 1, email
            assert journeys.flow_count(driver) == 0, email
        driver.close()


def test_finishing_the_flow_reaches_processing(open_browser, app, demo, emulator):
    driver = open_browser()
    journeys.sign_in(driver, demo.url, "pending@demo.test")
    journeys.flow_is_open(driver)
    journeys.finish_from_the_photo_step(driver)
    assert emulator.status(inquiry_of(app, "pending@demo.test").persona_id) == "completed"


def test_session_expired_heals_in_the_page(open_browser, app, demo, emulator):
    driver = open_browser()
    journeys.sign_in(driver, demo.url, "pending@demo.test")
    journeys.flow_is_open(driver)
    driver.evaluate("window.__sameView = true")
    inquiry = inquiry_of(app, "pending@demo.test")
    assert inquiry.tokens_minted == 1
    emulator.expire_sessions(inquiry.persona_id)
    journeys.mark_the_flow(driver)
    driver.click("button", "Continue", in_flow=True)  # the flow finds its session dead
    journeys.flow_replaced(driver)  # the old frame still shows the photo step until then
    journeys.flow_shows(driver, "Take a photo of your ID")  # a new flow, with a fresh token
    driver.click("button", "Continue", in_flow=True)  # and it works again
    journeys.flow_shows(driver, "Take a selfie")
    assert driver.evaluate("window.__sameView") is True  # healed without a reload
    assert journeys.error_panel_hidden(driver)
    assert inquiry_of(app, "pending@demo.test").tokens_minted == 2
    driver.click("button", "Submit", in_flow=True)
    journeys.state_is(driver, "processing")


def test_cancel_then_continue(open_browser, demo):
    driver = open_browser()
    journeys.sign_in(driver, demo.url, "created@demo.test")
    journeys.flow_is_open(driver)
    assert driver.evaluate("document.querySelector('main').closest('[inert]') !== null")  # the page behind
    driver.click("button", "Exit", in_flow=True)
    journeys.panel_shown(driver, "saved-panel")
    assert driver.evaluate("document.querySelectorAll('[inert]').length") == 0
    driver.wait_for(f"document.querySelector({journeys.FLOW!r}).getClientRects().length === 0", message="flow hidden")
    driver.click("button", "Email me a link to continue on another device")  # sent in place
    sent_to = "document.querySelector('#saved-panel [role=status]').textContent.includes('c***@demo.test')"
    driver.wait_for(sent_to, message="the masked address in the panel's status")
    driver.click("button", "Continue")
    journeys.flow_is_open(driver)
    journeys.flow_shows(driver, "Choose your ID type")


def test_recovery_link_on_a_phone(open_browser, app, live_server, emulator, tmp_path):
    user = make_user(app)
    give_inquiry(app, emulator, user, "pending")
    app.config["PUBLIC_BASE_URL"] = live_server.url
    with app.app_context():
        from webapp.recovery import send_link_to_user

        send_link_to_user(db.session.get(User, user.id))
    link = link_in(outbox(app.config["MAIL_OUTBOX_DIR"])[0])

    driver = open_browser(phone=True)
    driver.goto(link)
    driver.wait_for("location.pathname === '/r'", message="the token left the address bar")
    driver.click("button", "Continue verification")
    journeys.state_is(driver, "continue")
    journeys.flow_is_open(driver)
    widths = journeys.fits_the_width(driver)
    assert widths["viewport"] == 390 and widths["page"] <= 390 and 0 < widths["flow"] <= 390, widths
    driver.screenshot(tmp_path / f"phone-{driver.engine}.png")
    journeys.finish_from_the_photo_step(driver)
    assert driver.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling


def test_persona_unavailable_then_try_again(open_browser, app, demo, emulator):
    emulator.fault(path=r"/resume$", action="timeout", seconds=10)
    driver = open_browser()
    started = time.monotonic()
    journeys.sign_in(driver, demo.url, "expired@demo.test")  # needs a resume: no stored token
    journeys.state_is(driver, "unavailable")
    assert time.monotonic() - started < app.config["PERSONA_READ_TIMEOUT_SECONDS"] + 3
    emulator.clear_faults()
    driver.click("link", "Try again")
    journeys.flow_is_open(driver)


def test_failed_status_page_starts_again(open_browser, demo):
    driver = open_browser()
    journeys.sign_in(driver, demo.url, "failed@demo.test")
    journeys.state_is(driver, "failed")
    driver.click("button", "Start again")
    journeys.state_is(driver, "continue")
    journeys.flow_is_open(driver)
    journeys.flow_shows(driver, "Choose your ID type")


def test_times_read_in_the_readers_time_zone(open_browser, demo):
    """page.js rewrites the server's UTC times with Intl, in the reader's zone and the page's
    language: the same moment reads as Berlin time in both engines."""
    driver = open_browser(time_zone="Europe/Berlin")
    journeys.sign_in(driver, demo.url, "pending@demo.test")
    shown = driver.wait_for(
        "(t => t && !t.textContent.trim().endsWith(' UTC') && [t.getAttribute('datetime'), t.textContent.trim()])"
        "(document.querySelector('time[data-local-time]'))",
        message="the expiry time rewritten in local time",
    )
    moment = datetime.fromisoformat(shown[0].replace("Z", "+00:00")).astimezone(ZoneInfo("Europe/Berlin"))
    text = shown[1]
    offset = int(moment.utcoffset().total_seconds() // 3600)
    assert all(part in text for part in (f"{moment:%B}", str(moment.day), str(moment.year))), text
    assert f"{moment:%H:%M}" in text or f"{moment:%I:%M %p}" in text, text  # 24 or 12 hours, by language
    assert text.endswith((f"GMT+{offset}", moment.tzname())), text
