"""Page helpers: what a person (or their browser) does on our pages, and how to read what the
app answered. Test-client helpers first, then Playwright ones. Plain functions, no fixtures."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from playwright.sync_api import FrameLocator, Page, expect
from werkzeug.test import TestResponse

from tests.builders import PASSWORD
from tests.servers import ROOT
from webapp.demo import DEMO_PASSWORD

# The official SDK's flow iframe.
FLOW = "iframe.persona-widget__iframe"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


# -- the test client ---------------------------------------------------------------------------
def csrf_from(html: str) -> str:
    """The CSRF token on a page (form field or the page script's JSON settings)."""
    match = (
        re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
        or re.search(r'name="csrf_token" value="([^"]+)"', html)
        or re.search(r'"csrfToken": "([^"]+)"', html)
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client: FlaskClient, email: str = "ada@example.test", password: str = PASSWORD) -> TestResponse:
    """Fill in and send the sign-in form, as a person would (CSRF token from the form)."""
    page = client.get("/login")
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_from(page.get_data(as_text=True))}
    )


def state_of(response: TestResponse) -> str:
    """The continue page's `data-verification-state`."""
    match = re.search(r'data-verification-state="([a-z]+)"', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:500]
    return match.group(1)


def boot_config(response: TestResponse) -> dict:
    """The JSON settings the continue page hands its script."""
    match = re.search(
        r'<script type="application/json" id="verify-config"[^>]*>(.*?)</script>', response.get_data(as_text=True), re.S
    )
    assert match
    return json.loads(match.group(1))


def path_of(url: str) -> str:
    return urlsplit(url).path


def open_link(client: FlaskClient, url: str) -> TestResponse:
    """What a person's browser does with an emailed link: follow it to the token-free page."""
    first = client.get(path_of(url))
    assert first.status_code == 303 and first.headers["Location"] == "/r"
    return client.get("/r")


def redeem(client: FlaskClient, landing: TestResponse) -> TestResponse:
    """Press "Continue verification" on the link's landing page."""
    return client.post("/r", data={"csrf_token": csrf_from(landing.get_data(as_text=True))})


def resend(client: FlaskClient, address: str, base_url: str = "http://localhost", **headers: str) -> TestResponse:
    """Ask for a new link on /recovery/resend."""
    page = client.get("/recovery/resend", base_url=base_url)
    return client.post(
        "/recovery/resend",
        headers=headers,
        base_url=base_url,
        data={"email": address, "csrf_token": csrf_from(page.get_data(as_text=True))},
    )


# -- a real browser (Playwright) ---------------------------------------------------------------
def sign_in_with_browser(
    page: Page, base: str, email: str, password: str = DEMO_PASSWORD, landing: str = "**/verify"
) -> None:
    """Sign in through the form in a real browser (a demo account unless told) and land on /verify."""
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(landing)


def flow_is_open(page: Page) -> FrameLocator:
    """Wait until the Persona flow is on screen; its frame."""
    frame = page.frame_locator(FLOW)
    expect(page.locator(FLOW)).to_be_visible(timeout=10000)
    expect(frame.get_by_role("button", name="Exit")).to_be_visible(timeout=10000)
    return frame


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    # The page's CSP (rightly) refuses injected scripts: the context must bypass CSP for axe only.
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]
