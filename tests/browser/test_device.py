"""The person's device (issue #14) in real Chromium, with the official SDK and the emulator:
one tab at a time, in-app browsers, the camera."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.pages import FLOW, flow_is_open, serious_violations, sign_in_with_browser
from tests.user_agents import IN_APP_USER_AGENTS, ORDINARY_BROWSERS


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


# -- in-app browsers ---------------------------------------------------------------------------
def in_app_phone(browser: Browser, user_agent: str, **options) -> BrowserContext:
    """A 320 px phone whose browser is the one built into an app (its user agent says which)."""
    return browser.new_context(
        user_agent=user_agent, viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True, **options
    )


def open_in_a_fresh_browser(browser: Browser, link: str) -> BrowserContext:
    """The phone's own browser: nobody signed in. The link leads through one button into the flow."""
    context = browser.new_context(viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(link)
    expect(page).to_have_url(link.rsplit("/open/", 1)[0] + "/open")  # the token left the address bar
    page.get_by_role("button", name="Continue verification").click()
    expect(page.locator("main")).to_have_attribute("data-verification-state", "continue")
    expect(page.locator("[data-preflight]:visible")).to_have_count(0)
    flow_is_open(page)
    return context


# One phone per app: iOS for half of them, Android for the other half.
ONE_PHONE_PER_APP = [(name, uas[i % 2]) for i, (name, uas) in enumerate(IN_APP_USER_AGENTS.items())]


@pytest.mark.parametrize(("name", "user_agent"), ONE_PHONE_PER_APP, ids=[n for n, _ in ONE_PHONE_PER_APP])
def test_in_app_browser_sees_the_preflight_and_the_copied_link_opens_the_flow(
    browser: Browser, app, demo, name: str, user_agent: str
):
    app.config["PUBLIC_BASE_URL"] = demo.url
    context = in_app_phone(browser, user_agent, permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    panel = page.locator('section[data-preflight="in-app-browser"]')
    expect(panel).to_be_visible()
    expect(panel).to_contain_text(f"the browser inside the {name} app")
    expect(page.locator(FLOW)).to_have_count(0)  # the flow waits
    assert page.evaluate("document.documentElement.scrollWidth") <= 320

    panel.get_by_role("button", name="Copy link").click()
    expect(panel.get_by_role("status")).to_have_text(re.compile("Link copied"))
    link = page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(re.escape(demo.url) + r"/open/[A-Za-z0-9_-]{43}", link)
    open_in_a_fresh_browser(browser, link).close()
    context.close()


def test_the_copied_link_works_once_and_only_the_last_one_copied(browser: Browser, app, demo):
    app.config["PUBLIC_BASE_URL"] = demo.url
    context = in_app_phone(
        browser, IN_APP_USER_AGENTS["Instagram"][0], permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    links = []
    for _ in range(2):
        page.get_by_role("button", name="Copy link").click()
        expect(page.get_by_role("status").filter(has_text="Link copied")).to_be_visible()
        links.append(page.evaluate("navigator.clipboard.readText()"))
        page.evaluate("document.getElementById('copy-link-status').textContent = ''")
    stranger = browser.new_context()  # the first link died when the second was copied
    first = stranger.new_page()
    first.goto(links[0])
    expect(first.get_by_role("heading", name="This link can't be used any more")).to_be_visible()
    expect(first.get_by_role("button", name="Continue verification")).to_have_count(0)
    stranger.close()
    open_in_a_fresh_browser(browser, links[1]).close()
    again = browser.new_context()
    second = again.new_page()
    second.goto(links[1])  # used: a scanner or a second person gets nothing
    expect(second.get_by_role("button", name="Continue verification")).to_have_count(0)
    again.close()
    context.close()


def test_continue_here_anyway_opens_the_flow_in_the_app(browser: Browser, demo):
    context = in_app_phone(browser, IN_APP_USER_AGENTS["TikTok"][1])
    page = context.new_page()
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    page.get_by_role("button", name="Continue here anyway").click()
    flow_is_open(page)
    page.reload()  # asked once per sign-in
    flow_is_open(page)
    expect(page.locator('[data-preflight="in-app-browser"]')).to_have_count(0)
    context.close()


def test_without_javascript_the_preflight_is_plain_forms(browser: Browser, app, demo):
    app.config["PUBLIC_BASE_URL"] = demo.url
    context = in_app_phone(browser, IN_APP_USER_AGENTS["Facebook"][0], java_script_enabled=False)
    page = context.new_page()
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_role("heading", name="Open this page in your phone's browser")).to_be_visible()
    link = page.get_by_label("Your link").input_value()
    open_in_a_fresh_browser(browser, link).close()
    page.get_by_role("button", name="Continue here anyway").click()
    expect(page.locator("main")).to_have_attribute("data-verification-state", "continue")
    expect(page.locator('[data-preflight="in-app-browser"]')).to_have_count(0)
    context.close()


def test_an_ordinary_phone_browser_goes_straight_into_the_flow(browser: Browser, demo):
    context = in_app_phone(browser, ORDINARY_BROWSERS[0])
    page = context.new_page()
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    flow_is_open(page)
    expect(page.locator("[data-preflight]:visible")).to_have_count(0)
    context.close()


# -- the camera --------------------------------------------------------------------------------
# Counts any attempt of this page to open the camera (it must leave that to the flow).
COUNT_CAMERA_OPENS = """
window.__cameraOpens = 0;
if (navigator.mediaDevices) {
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (...args) => { window.__cameraOpens += 1; return original(...args); };
}
"""


def deny_camera(browser: Browser, context: BrowserContext, page: Page, origin: str) -> None:
    """What a person who blocked the camera for this site has: Chromium's own permission setting
    for this browser context (Playwright can only grant, so this goes through the DevTools protocol)."""
    target = context.new_cdp_session(page).send("Target.getTargetInfo")["targetInfo"]
    browser.new_browser_cdp_session().send(
        "Browser.setPermission",
        {
            "permission": {"name": "camera"},
            "setting": "denied",
            "origin": origin,
            "browserContextId": target["browserContextId"],
        },
    )


def test_a_denied_camera_shows_how_to_allow_it_and_never_opens_it(browser: Browser, demo):
    context = browser.new_context(viewport={"width": 320, "height": 640})
    page = context.new_page()
    page.add_init_script(COUNT_CAMERA_OPENS)
    deny_camera(browser, context, page, demo.url)
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    panel = page.locator('section[data-preflight="camera"]')
    expect(panel).to_be_visible()
    expect(panel.get_by_role("heading", name="Allow the camera for this site")).to_be_focused()
    expect(panel).to_contain_text("blocking the camera")
    expect(page.locator(FLOW)).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    panel.get_by_role("button", name="Continue anyway").click()
    flow_is_open(page)
    assert page.evaluate("window.__cameraOpens") == 0
    context.close()


def test_a_browser_without_a_camera_api_is_told_so(browser: Browser, demo):
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script("Object.defineProperty(Navigator.prototype, 'mediaDevices', {get: () => undefined})")
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    panel = page.locator('section[data-preflight="camera"]')
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("doesn't let web pages use a camera")
    context.close()


def test_the_in_app_browser_preflight_and_its_link_page_pass_axe(browser: Browser, demo):
    """In an app's built-in browser (a 320 px phone): the pre-flight panel, then the page that
    shows the link without the page script (the form submitted as a browser without JS would)."""
    context = in_app_phone(browser, IN_APP_USER_AGENTS["LinkedIn"][0], bypass_csp=True)
    page = context.new_page()
    sign_in_with_browser(page, demo.url, "pending@demo.test")
    expect(page.locator('[data-preflight="in-app-browser"]')).to_be_visible()
    assert serious_violations(page) == []
    page.evaluate("document.querySelector('form[data-copy-link]').submit()")
    expect(page.get_by_label("Your link")).to_be_visible()
    assert serious_violations(page) == []
    context.close()
