"""Accessibility: axe-core (npm, pinned) finds no serious or critical problem on any page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.pages import flow_is_open, serious_violations, sign_in_with_browser
from tests.user_agents import IN_APP_USER_AGENTS
from webapp.demo import seed_demo_data


def test_public_pages(a11y_page: Page, live_server):
    for path in ("/", "/login", "/signup", "/recovery/resend", "/r", "/verify/received"):
        a11y_page.goto(live_server.url + path)
        assert serious_violations(a11y_page) == [], path
    a11y_page.goto(live_server.url + "/login")
    a11y_page.get_by_role("button", name="Sign in").click()  # the page with field errors
    assert serious_violations(a11y_page) == []


@pytest.mark.parametrize(
    "email",
    [
        "pending@demo.test",
        "completed@demo.test",
        "review@demo.test",
        "approved@demo.test",
        "declined@demo.test",
        "failed@demo.test",
    ],
)
def test_verification_pages(browser: Browser, app, live_server, email):
    with app.app_context():
        seed_demo_data()
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    sign_in_with_browser(page, live_server.url, email)
    if email.startswith("pending"):
        flow = flow_is_open(page)
        flow.get_by_role("button", name="Exit").click()  # the "progress saved" panel
        expect(page.get_by_role("heading", name="Your progress is saved")).to_be_visible()
    assert serious_violations(page) == []
    context.close()


def test_the_continue_pages_other_panels(a11y_page: Page, demo):
    """The sign-out warning, "keep waiting", "signed out", error and "another tab" panels, each shown as the page
    script shows it (the hidden attribute off), with the saved panel behind them."""
    page = a11y_page
    sign_in_with_browser(page, demo.url, "created@demo.test")
    flow_is_open(page).get_by_role("button", name="Exit").click()
    expect(page.get_by_role("heading", name="Your progress is saved")).to_be_visible()
    for panel in (
        "sign-out-warning",
        "slow-panel",
        "signed-out-panel",
        "error-panel",
        "elsewhere-panel",
        "camera-panel",
    ):
        page.evaluate(f"document.getElementById('{panel}').hidden = false")
        assert serious_violations(page) == [], panel


def test_the_in_app_browser_preflight_and_its_link_page(browser: Browser, demo):
    """In an app's built-in browser (a 320 px phone): the pre-flight panel, then the page that
    shows the link without the page script (the form submitted as a browser without JS would)."""
    context = browser.new_context(
        bypass_csp=True, user_agent=IN_APP_USER_AGENTS["LinkedIn"][0], viewport={"width": 320, "height": 640}
    )
    page = context.new_page()
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    expect(page.locator('[data-preflight="in-app-browser"]')).to_be_visible()
    assert serious_violations(page) == []
    page.evaluate("document.querySelector('form[data-copy-link]').submit()")
    expect(page.get_by_label("Your link")).to_be_visible()
    assert serious_violations(page) == []
    context.close()


def test_the_check_itself_catches_problems(a11y_page: Page):
    """Guards the guard: a page with known faults must fail the check."""
    a11y_page.set_content('<html><body><img src="data:,"><input type="text"><button></button></body></html>')
    found = " ".join(serious_violations(a11y_page))
    assert "image-alt" in found and "button-name" in found


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
