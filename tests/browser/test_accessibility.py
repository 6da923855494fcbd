"""Accessibility: axe-core (npm, pinned) finds no serious or critical problem on any page, as
laid out and exposed by Chromium and (the tests taking `open_browser`) by WebKit too."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.browser import journeys
from tests.pages import serious_violations, sign_in_with_browser
from webapp.demo import seed_demo_data

PUBLIC_PAGES = (
    "/",
    "/login",
    "/signup",
    "/recovery/resend",
    "/r",
    "/verify/received",
    "/password/forgot",
    "/password/reset",
)
STATUS_PAGE_USERS = ("completed", "review", "approved", "declined", "failed")


def test_public_pages(open_browser, live_server):
    driver = open_browser(for_axe=True)
    for path in PUBLIC_PAGES:
        driver.goto(live_server.url + path)
        assert driver.axe_serious_violations() == [], path
    driver.goto(live_server.url + "/login")
    driver.click("button", "Sign in")  # the page with field errors
    driver.wait_for("document.querySelector('[aria-invalid=true]')", message="the field errors")
    assert driver.axe_serious_violations() == []


def test_identity_pages(browser: Browser, app, live_server):
    """Sign-up's "check your email", the unconfirmed account's page, and "Not you?"."""
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(live_server.url + "/signup")
    page.get_by_label("Email").fill("fresh@example.test")
    page.get_by_label("Password", exact=True).fill("a long enough password")
    page.get_by_label("Repeat password").fill("a long enough password")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    assert serious_violations(page) == []
    sign_in_with_browser(
        page, live_server.url, "fresh@example.test", "a long enough password", landing="**/confirm-email"
    )
    expect(page.get_by_role("heading", name="Confirm your email address")).to_be_visible()
    assert serious_violations(page) == []
    page.get_by_role("button", name="Not you?").click()
    expect(page.get_by_role("heading", name="You're signed out")).to_be_visible()
    assert serious_violations(page) == []
    context.close()


def test_status_pages(open_browser, demo):
    for email in STATUS_PAGE_USERS:  # one test, one seeding: the demo accounts are slow to make
        driver = open_browser(for_axe=True)
        journeys.sign_in(driver, demo.url, f"{email}@demo.test")
        assert journeys.flow_count(driver) == 0, email
        assert driver.axe_serious_violations() == [], email
        driver.close()


def test_continue_page_with_the_flow_and_after_exit(open_browser, demo):
    driver = open_browser(for_axe=True)
    journeys.sign_in(driver, demo.url, "pending@demo.test")
    journeys.flow_is_open(driver)
    assert driver.axe_serious_violations() == []
    driver.click("button", "Exit", in_flow=True)  # the "progress saved" panel
    journeys.panel_shown(driver, "saved-panel")
    assert driver.axe_serious_violations() == []


def test_the_check_itself_catches_problems(open_browser, live_server):
    """Guards the guard, in each engine and under our CSP: a page with known faults must fail."""
    driver = open_browser(for_axe=True)
    driver.goto(live_server.url + "/login")
    driver.evaluate('document.body.innerHTML = \'<img src="data:,"><input type="text"><button></button>\', true')
    found = " ".join(driver.axe_serious_violations())
    assert "image-alt" in found and "button-name" in found


def test_the_continue_pages_other_panels(open_browser, demo):
    """The sign-out warning, "keep waiting", "signed out" and error panels, each shown as the page
    script shows it (the hidden attribute off), with the saved panel behind them."""
    driver = open_browser(for_axe=True)
    journeys.sign_in(driver, demo.url, "created@demo.test")
    journeys.flow_is_open(driver)
    driver.click("button", "Exit", in_flow=True)
    journeys.panel_shown(driver, "saved-panel")
    for panel in (
        "sign-out-warning",
        "slow-panel",
        "signed-out-panel",
        "error-panel",
        "elsewhere-panel",
        "camera-panel",
    ):
        driver.evaluate(f"(document.getElementById('{panel}').hidden = false, true)")
        assert driver.axe_serious_violations() == [], panel


def test_account_page_and_sign_out_everywhere(browser: Browser, app, live_server):
    with app.app_context():
        seed_demo_data()
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    sign_in_with_browser(page, live_server.url, "approved@demo.test")
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    assert serious_violations(page) == []
    page.get_by_role("button", name="Change password").click()  # the form with its errors
    expect(page.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")
    assert serious_violations(page) == []
    page.get_by_role("button", name="Sign out on all devices").click()
    expect(page.get_by_role("status")).to_contain_text("You are signed out on every device")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    context.close()


def test_the_template_changed_page_at_320px(browser: Browser, app, demo, emulator):
    """The new-start offer after template drift: readable at 320 px, axe-clean, one way on."""
    app.config["VERIFY_ON_TEMPLATE_DRIFT"] = "offer_new_start"
    emulator.publish_template_version(app.config["PERSONA_TEMPLATE_ID"])
    context = browser.new_context(viewport={"width": 320, "height": 640}, bypass_csp=True)
    page = context.new_page()
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    expect(page.get_by_role("heading", name="Please start your verification again")).to_be_visible()
    expect(page.get_by_role("button", name="Start again")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    page.screenshot(path="/tmp/fidelity-ui/template-changed-320.png", full_page=True)
    assert serious_violations(page) == []
    context.close()
