"""The person's device (issue #14) in real Chromium, with the official SDK and the emulator:
one tab at a time."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.pages import FLOW, flow_is_open, sign_in_with_browser


def test_a_second_tab_takes_the_flow_over_and_the_first_can_take_it_back(browser: Browser, demo):
    context = browser.new_context(viewport={"width": 320, "height": 640})
    first = context.new_page()
    sign_in_with_browser(first, demo.url, "pending@demo.test")
    flow_is_open(first)

    second = context.new_page()  # same browser, same sign-in
    second.goto(demo.url + "/verify")
    flow_is_open(second)

    elsewhere = first.locator("[data-flow-elsewhere]")
    expect(elsewhere).to_be_visible()
    expect(elsewhere.get_by_role("heading", name="Continuing in another tab")).to_be_focused()
    expect(first.locator(FLOW)).to_have_count(0)  # its flow is closed, not only hidden
    assert first.evaluate("document.querySelector('main').inert") is False  # nothing left inert
    assert first.evaluate("document.documentElement.scrollWidth") <= 320

    first.get_by_role("button", name="Use this tab").click()
    flow_is_open(first)
    expect(first.locator("[data-flow-elsewhere]")).to_be_hidden()
    expect(second.locator("[data-flow-elsewhere]")).to_be_visible()
    expect(second.locator(FLOW)).to_have_count(0)
    context.close()


def test_tabs_of_different_browsers_do_not_interfere(browser: Browser, demo):
    """BroadcastChannel is per browser profile: someone's phone and laptop each keep their flow."""
    contexts = [browser.new_context(), browser.new_context()]
    pages = [c.new_page() for c in contexts]
    for page in pages:
        sign_in_with_browser(page, demo.url, "pending@demo.test")
        flow_is_open(page)
    expect(pages[0].locator("[data-flow-elsewhere]")).to_be_hidden()
    expect(pages[0].locator(FLOW)).to_be_visible()
    for c in contexts:
        c.close()
