"""The continue page in real Chromium: official SDK, emulator over a socket, CSRF on.

What only Playwright can do (CSP reports, blocked requests, injected markup) is here; the
journeys that also run in WebKit are in test_journeys.py."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.mailbox import outbox, text_of
from tests.pages import flow_is_open, sign_in_with_browser
from webapp.extensions import db
from webapp.models import Inquiry

CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(e.violatedDirective));
"""

# Records the option names the page gives the official SDK's constructor (wrapped as the UMD
# bundle assigns `window.Persona`), before the SDK copies `customHost` into its private `host`.
RECORD_SDK_OPTIONS = """
Object.defineProperty(window, 'Persona', {configurable: true, set(sdk) {
  const Real = sdk.Client;
  sdk.Client = class extends Real {
    constructor(options) { window.__sdkOptionNames = Object.keys(options); super(options); }
  };
  Object.defineProperty(window, 'Persona', {value: sdk, writable: true, configurable: true});
}});
"""


def inquiry_of(app, email: str) -> Inquiry:
    from webapp.accounts import get_user_by_email
    from webapp.verification import get_current_inquiry

    with app.app_context():
        inquiry = get_current_inquiry(get_user_by_email(email))
        db.session.expunge(inquiry)
        return inquiry


def test_pending_flow_to_processing_with_no_csp_violations(page: Page, app, demo, emulator):
    page.add_init_script(CSP_WATCH)
    console_csp = []
    page.on("console", lambda m: console_csp.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    flow = flow_is_open(page)
    expect(flow.get_by_role("heading", name="Take a photo of your ID")).to_be_visible()
    flow.get_by_role("button", name="Continue").click()
    flow.get_by_role("button", name="Submit").click()
    expect(page.locator("main")).to_have_attribute("data-verification-state", "processing", timeout=10000)
    expect(page.get_by_role("heading", name="Thanks, we're checking your details")).to_be_visible()
    assert page.evaluate("window.__cspViolations") == []
    assert console_csp == []
    assert emulator.status(inquiry_of(app, "pending@demo.test").persona_id) == "completed"


def test_the_page_points_the_sdk_at_the_flow_with_the_public_custom_host(page: Page, demo, emulator):
    """SDK 5.9.0 marks `host` "@private ... Will do nothing"; `customHost` is the public option."""
    page.add_init_script(RECORD_SDK_OPTIONS)
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    flow_is_open(page)
    names = page.evaluate("window.__sdkOptionNames")
    assert "customHost" in names and "host" not in names
    src = page.locator("iframe.persona-widget__iframe").get_attribute("src")
    assert src.startswith(emulator.origin + "/widget?")


def test_sessions_killed_before_a_reload_heal_too(page: Page, app, demo, emulator):
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    flow_is_open(page)
    emulator.expire_sessions(inquiry_of(app, "pending@demo.test").persona_id)
    page.reload()  # the stored token is reused, the flow says it is dead, the page heals
    flow = flow_is_open(page)
    expect(flow.get_by_role("heading", name="Take a photo of your ID")).to_be_visible()
    assert inquiry_of(app, "pending@demo.test").tokens_minted == 2


def test_second_failure_says_so_and_offers_retry(page: Page, app, demo, emulator):
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    flow = flow_is_open(page)
    emulator.expire_sessions(inquiry_of(app, "pending@demo.test").persona_id)
    emulator.fault(path=r"/resume$", action="status", status=503)
    flow.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="We couldn't reconnect you")).to_be_visible(timeout=10000)
    emulator.clear_faults()
    page.get_by_role("button", name="Try again").click()
    flow_is_open(page)


def test_blocked_sdk_script_shows_a_clear_message(page: Page, demo):
    page.route("**/verify/sdk/**", lambda route: route.abort())
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    expect(page.get_by_role("heading", name="The verification window couldn't load")).to_be_visible()
    expect(page.get_by_role("button", name="Try again")).to_be_visible()


def test_back_after_sign_out_does_not_show_the_token(page: Page, app, demo):
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    flow_is_open(page).get_by_role("button", name="Exit").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    page.go_back()
    expect(page).to_have_url(f"{demo.url}/login?next=/verify")
    assert "sessionToken" not in page.content() or '"sessionToken": null' in page.content()


def test_new_account_signs_up_confirms_its_address_and_reaches_the_flow(page: Page, app, live_server):
    page.goto(live_server.url + "/signup")
    page.get_by_label("Email").fill("fresh@example.test")
    page.get_by_label("Password", exact=True).fill("a long enough password")
    page.get_by_label("Repeat password").fill("a long enough password")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    [message] = outbox(app.config["MAIL_OUTBOX_DIR"])
    link = re.search(r"https?://\S+/confirm-email/[A-Za-z0-9_-]{43}", text_of(message)).group(0)
    page.goto(live_server.url + urlsplit(link).path)
    expect(page.get_by_text("f•••@example.test")).to_be_visible()
    page.get_by_role("link", name="Sign in").last.click()
    page.get_by_label("Email").fill("fresh@example.test")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Confirm my email").click()
    flow_is_open(page)
    with app.app_context():
        assert db.session.scalar(select(Inquiry)).status == "created"


def test_injected_script_is_blocked_and_the_app_cannot_be_framed(page: Page, demo, emulator):
    """Markup injected into our HTML (as an XSS would be) cannot run: CSP blocks it."""

    def inject(route):
        response = route.fetch()
        body = response.text().replace(
            "</main>",
            '<script>window.__pwned = "inline"</script>'
            '<img src="data:," onerror="window.__pwned = \'handler\'"></main>',
        )
        route.fulfill(response=response, body=body)

    page.add_init_script(CSP_WATCH)
    sign_in_with_browser(page, demo.url, "approved@demo.test")
    page.route("**/verify", inject)  # routes skip redirected requests: load the page directly
    page.goto(demo.url + "/verify")
    assert "__pwned" in page.content()
    expect(page.locator("main")).to_have_attribute("data-verification-state", "approved")
    page.wait_for_function(
        "['script-src-elem', 'script-src-attr'].every(d => window.__cspViolations.includes(d))", timeout=10000
    )
    assert page.evaluate("window.__pwned || null") is None

    # set_content returns after the load event, which waits for both frames. The control frame
    # (a page that allows framing) shows that frames do load here, so the victim's emptiness
    # means it was refused, not that it was still loading.
    framer = page.context.new_page()
    framer.set_content(
        f'<iframe id="victim" src="{demo.url}/login"></iframe>'
        f'<iframe id="control" src="{emulator.origin}/preload"></iframe>'
    )
    control = next(frame for frame in framer.frames if frame.url.endswith("/preload"))
    assert control.title() == "preload"
    expect(framer.frame_locator("#victim").get_by_role("heading", name="Sign in")).to_have_count(0)


def test_a_new_inquiry_opens_with_the_token_its_create_brought(page: Page, app, demo, emulator):
    """#12 app item 6: one create call brings the first session (auto-create-inquiry-session);
    the flow opens with it (no session of its own) and is told the configured environment."""
    app.config["PERSONA_ENVIRONMENT_ID"] = "env_emulated_demo"
    emulator.clear_requests()
    sign_in_with_browser(page, demo.url, "new@demo.test")
    flow = flow_is_open(page)
    expect(flow.get_by_role("heading", name="Choose your ID type")).to_be_visible()
    inquiry = inquiry_of(app, "new@demo.test")
    assert inquiry.status == "created" and inquiry.tokens_minted == 1
    # Nothing to recover by reference id, then one create (no resume).
    assert [(r["method"], r["path"]) for r in emulator.requests()] == [
        ("GET", "/api/v1/inquiries"),
        ("POST", "/api/v1/inquiries"),
    ]
    assert emulator.sessions(inquiry.persona_id) == 1  # the create's, now used by the flow
    opened = emulator.control("GET", "/flows").json()[-1]
    assert opened["environment_id"] == "env_emulated_demo" and opened["session_token_given"]
