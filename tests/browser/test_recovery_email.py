"""From an email to the working Persona flow: on a phone, with no password, over real SMTP."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.builders import give_inquiry, make_user
from tests.mailbox import link_in
from tests.pages import FLOW
from webapp.extensions import db
from webapp.models import User


def open_on_a_phone(browser: Browser, link: str):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(link)
    expect(page).to_have_url(link.rsplit("/r/", 1)[0] + "/r")  # the token left the address bar
    page.get_by_role("button", name="Continue verification").click()
    expect(page.locator("main")).to_have_attribute("data-verification-state", "continue")
    frame = page.frame_locator(FLOW)
    expect(frame.get_by_role("button", name="Exit")).to_be_visible(timeout=10000)
    return context, page, frame


def test_real_smtp_delivery_and_the_link_works(browser: Browser, make_app, emulator, smtp_sink):
    import email

    from tests.servers import LiveServer

    port, sink = smtp_sink
    app = make_app(MAIL_SMTP_HOST="127.0.0.1", MAIL_SMTP_PORT=port, MAIL_SMTP_STARTTLS=False)
    user = make_user(app)
    give_inquiry(app, emulator, user, "pending")
    with LiveServer(app) as server:
        app.config["PUBLIC_BASE_URL"] = server.url
        with app.app_context():
            from webapp.recovery import send_link_to_user

            assert send_link_to_user(db.session.get(User, user.id))
        assert len(sink.messages) == 1
        message = email.message_from_bytes(sink.messages[0])
        assert message["To"] == "ada@example.test"
        context, _, _ = open_on_a_phone(browser, link_in(message))
        context.close()
