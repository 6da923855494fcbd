"""'Continue on your phone' (issue #14 item 3) in real Chromium, with the official SDK and the
emulator: the computer's QR code decodes (Debian's zbarimg) to a link that a phone opens through
"Continue verification" into the flow; the computer then shows `handoff` and, when the phone
submits, reaches the processing page by itself."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.pages import FLOW, flow_is_open, serious_violations, sign_in_with_browser

PHONE = {"viewport": {"width": 320, "height": 640}, "is_mobile": True, "has_touch": True}


def decode_qr(page: Page, tmp_path: Path) -> str:
    """What a phone's camera reads from the QR code on screen (zbarimg on a screenshot of it)."""
    shot = tmp_path / "qr.png"
    page.locator("#handoff-qr svg").screenshot(path=str(shot))
    result = subprocess.run(["zbarimg", "--quiet", "--raw", str(shot)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"zbarimg read no code: {result.stderr}"
    return result.stdout.strip()


def open_the_panel(page: Page, base: str, email: str = "pending@demo.test") -> None:
    """On a computer: sign in, close the flow that opened, press "Continue on your phone"."""
    sign_in_with_browser(page, base, email)
    flow_is_open(page).get_by_role("button", name="Exit").click()
    expect(page.get_by_role("heading", name="Your progress is saved")).to_be_focused()
    page.locator("#saved-panel").get_by_role("button", name="Continue on your phone").click()
    panel = page.locator("#handoff-panel")
    expect(panel.get_by_role("heading", name="Continue on your phone")).to_be_focused()
    expect(panel.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    expect(page.get_by_label("Can't scan it? Type this link into your phone's browser:")).to_have_value(
        re.compile(r"/h/[A-Za-z0-9_-]{43}$")
    )


def phone_continues(browser: Browser, link: str) -> tuple[BrowserContext, Page]:
    """A phone opens the scanned link: whose verification it is, then Continue verification."""
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(link)
    expect(page).to_have_url(re.compile(r"/h$"))  # the token left the address bar
    expect(page.locator("[data-account]")).to_contain_text("p•••@demo.test")
    expect(page.get_by_role("button", name="Not you?")).to_be_visible()
    page.get_by_role("button", name="Continue verification").click()
    expect(page.locator("main")).to_have_attribute("data-verification-state", "continue")
    expect(page.locator("[data-handoff-offer]:visible")).to_have_count(0)  # a phone is offered no phone
    return context, page


def test_the_qr_code_moves_the_flow_to_the_phone_and_the_computer_follows(browser: Browser, app, demo, tmp_path):
    app.config["PUBLIC_BASE_URL"] = demo.url
    computer = browser.new_context(viewport={"width": 1280, "height": 800})
    desktop = computer.new_page()
    open_the_panel(desktop, demo.url)
    link = decode_qr(desktop, tmp_path)
    assert link == desktop.get_by_label(re.compile("Type this link")).input_value()
    assert re.fullmatch(re.escape(demo.url) + r"/h/[A-Za-z0-9_-]{43}", link)

    phone_context, phone = phone_continues(browser, link)
    handoff = desktop.locator('main[data-verification-state="handoff"]')
    expect(handoff).to_be_visible(timeout=10000)
    expect(desktop.get_by_role("heading", name="Continue on your phone…")).to_be_focused()
    expect(desktop.get_by_role("button", name="Continue on this computer instead")).to_be_visible()
    expect(desktop.locator(FLOW)).to_have_count(0)  # only the phone runs the flow

    flow = flow_is_open(phone)
    expect(flow.get_by_role("heading", name="Take a photo of your ID")).to_be_visible()
    flow.get_by_role("button", name="Continue").click()
    flow.get_by_role("button", name="Submit").click()
    expect(phone.locator("main")).to_have_attribute("data-verification-state", "processing", timeout=10000)
    # The computer, untouched, moves to the result by itself.
    expect(desktop.locator("main")).to_have_attribute("data-verification-state", "processing", timeout=15000)
    expect(desktop.get_by_role("heading", name="Thanks, we're checking your details")).to_be_visible()
    phone_context.close()
    computer.close()


def test_continue_on_this_computer_instead_opens_the_flow_here(browser: Browser, app, demo, tmp_path):
    app.config["PUBLIC_BASE_URL"] = demo.url
    computer = browser.new_context(viewport={"width": 1280, "height": 800})
    desktop = computer.new_page()
    open_the_panel(desktop, demo.url)
    phone_context, _ = phone_continues(browser, decode_qr(desktop, tmp_path))
    expect(desktop.locator("main")).to_have_attribute("data-verification-state", "handoff", timeout=10000)
    desktop.get_by_role("button", name="Continue on this computer instead").click()
    flow_is_open(desktop)
    expect(desktop.locator("main")).to_have_attribute("data-verification-state", "continue")
    phone_context.close()
    computer.close()


def test_the_code_rotates_and_a_used_link_is_dead(browser: Browser, app, demo, tmp_path):
    app.config["PUBLIC_BASE_URL"] = demo.url
    app.config["HANDOFF_ROTATE_SECONDS"] = 1
    computer = browser.new_context(viewport={"width": 1280, "height": 800})
    desktop = computer.new_page()
    open_the_panel(desktop, demo.url)
    field = desktop.get_by_label(re.compile("Type this link"))
    first = field.input_value()
    expect(field).not_to_have_value(first, timeout=5000)  # a new link, and a new code
    second = decode_qr(desktop, tmp_path)
    assert second != first
    phone_context, _ = phone_continues(browser, second)
    again = browser.new_context(**PHONE)  # the link worked once
    page = again.new_page()
    page.goto(second)
    expect(page.get_by_role("button", name="Continue verification")).to_have_count(0)
    again.close()
    phone_context.close()
    computer.close()


def test_the_panels_are_accessible_and_fit_320_px(browser: Browser, app, demo):
    app.config["PUBLIC_BASE_URL"] = demo.url
    # A narrow window on a computer (mouse, no touch): the offer shows, and must fit.
    computer = browser.new_context(viewport={"width": 320, "height": 640}, bypass_csp=True)
    desktop = computer.new_page()
    open_the_panel(desktop, demo.url)
    assert desktop.evaluate("document.documentElement.scrollWidth") <= 320
    assert serious_violations(desktop) == []
    link = desktop.get_by_label(re.compile("Type this link")).input_value()

    phone_context = browser.new_context(**PHONE, bypass_csp=True)
    phone = phone_context.new_page()
    phone.goto(link)
    expect(phone.get_by_role("button", name="Continue verification")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 320
    assert serious_violations(phone) == []
    phone.get_by_role("button", name="Continue verification").click()

    expect(desktop.locator("main")).to_have_attribute("data-verification-state", "handoff", timeout=10000)
    assert desktop.evaluate("document.documentElement.scrollWidth") <= 320
    assert serious_violations(desktop) == []
    phone_context.close()
    computer.close()


def test_without_javascript_the_button_shows_one_code(browser: Browser, app, demo, tmp_path):
    app.config["PUBLIC_BASE_URL"] = demo.url
    computer = browser.new_context(viewport={"width": 1280, "height": 800}, java_script_enabled=False)
    desktop = computer.new_page()
    sign_in_with_browser(desktop, demo.url, "pending@demo.test")
    desktop.locator("#summary-handoff").get_by_role("button", name="Continue on your phone").click()
    expect(desktop.get_by_role("heading", name="Continue on your phone")).to_be_visible()
    shot = tmp_path / "qr.png"
    desktop.locator(".qr svg").screenshot(path=str(shot))
    decoded = subprocess.run(["zbarimg", "--quiet", "--raw", str(shot)], capture_output=True, text=True, timeout=30)
    assert decoded.stdout.strip() == desktop.get_by_label(re.compile("Type this link")).input_value()
    computer.close()
