"""The steps a person takes, written once for any `Driver` (Chromium or WebKit).

Assertions read roles, accessible names and `data-verification-state`, not the wording of
paragraphs, so copy can change without breaking a journey. Plain functions, no fixtures."""

from __future__ import annotations

from tests.browser.drivers import FLOW, WAIT_SECONDS, Driver
from webapp.demo import DEMO_PASSWORD


def sign_in(driver: Driver, base: str, email: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in through the form and land on /verify."""
    driver.goto(base + "/login")
    driver.fill("Email", email)
    driver.fill("Password", password)
    driver.click("button", "Sign in")
    driver.wait_for("location.pathname === '/verify'", message="the continue page after signing in")


# The page's `data-verification-state` (null before the page has one).
STATE = "((document.querySelector('main[data-verification-state]') || {dataset: {}}).dataset.verificationState || null)"


def state_is(driver: Driver, state: str, timeout: float = WAIT_SECONDS) -> None:
    """Wait until the page says it is in this verification state."""
    driver.wait_for(f"{STATE} === {state!r}", timeout=timeout, message=f"state {state!r}")


def flow_is_open(driver: Driver, timeout: float = WAIT_SECONDS) -> None:
    """The Persona flow is on screen: its frame shows, and the flow inside it offers Exit."""
    driver.wait_for(
        f"(f => f && f.getClientRects().length > 0)(document.querySelector({FLOW!r}))",
        timeout=timeout,
        message="the flow's frame on screen",
    )
    driver.wait_visible("button", "Exit", in_flow=True, timeout=timeout)


def mark_the_flow(driver: Driver) -> None:
    """Tag the flow's current frame, so `flow_replaced` can tell a new one from it."""
    driver.evaluate(f"(document.querySelector({FLOW!r}).dataset.journeyOld = '1', true)")


def flow_replaced(driver: Driver, timeout: float = WAIT_SECONDS) -> None:
    """Wait until the tagged frame is gone and a new flow frame is there (the page rebooted the SDK)."""
    driver.wait_for(
        f"(f => f && !f.dataset.journeyOld)(document.querySelector({FLOW!r}))"
        f" && !document.querySelector({FLOW!r} + '[data-journey-old]')",
        timeout=timeout,
        message="a new flow frame in place of the old one",
    )


def flow_count(driver: Driver) -> int:
    return driver.evaluate(f"document.querySelectorAll({FLOW!r}).length")


def flow_shows(driver: Driver, heading: str, timeout: float = WAIT_SECONDS) -> None:
    driver.wait_visible("heading", heading, in_flow=True, timeout=timeout)


def finish_from_the_photo_step(driver: Driver) -> None:
    """In the flow at "Take a photo of your ID": Continue, then Submit; the page shows processing."""
    flow_shows(driver, "Take a photo of your ID")
    driver.click("button", "Continue", in_flow=True)
    flow_shows(driver, "Take a selfie")
    driver.click("button", "Submit", in_flow=True)
    state_is(driver, "processing")


def panel_shown(driver: Driver, panel_id: str) -> None:
    """One of the continue page's panels (saved, error) is on screen."""
    driver.wait_for(
        f"(p => p && !p.hidden && p.getClientRects().length > 0)(document.getElementById({panel_id!r}))",
        message=f"#{panel_id} on screen",
    )


def error_panel_hidden(driver: Driver) -> bool:
    return driver.evaluate("document.getElementById('error-panel').hidden")


def fits_the_width(driver: Driver) -> dict:
    """Viewport width, the page's scroll width and the flow frame's width (CSS pixels)."""
    return driver.evaluate(
        "({viewport: innerWidth, page: document.documentElement.scrollWidth,"
        f" flow: (document.querySelector({FLOW!r}) || {{getBoundingClientRect: () => ({{width: 0}})}})"
        ".getBoundingClientRect().width})"
    )
