"""Accessibility in both engines: the pinned axe-core (npm) finds no serious or critical problem,
whether the page is laid out and exposed by Chromium or by WebKit."""

from __future__ import annotations

from tests.browser import journeys

PUBLIC_PAGES = ("/", "/login", "/signup", "/recovery/resend", "/r")
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
