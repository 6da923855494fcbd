"""Over Persona's budget, a person waits on a calm page that goes on into the flow by itself."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.pages import flow_is_open, sign_in_with_browser
from tests.servers import ROOT
from webapp.demo import seed_demo_data

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "instance" / "screenshots"


def test_the_waiting_page_counts_down_then_opens_the_flow_without_a_reload_by_the_person(
    browser: Browser, app, live_server
):
    with app.app_context():
        seed_demo_data()
    app.extensions["persona"].budget.back_off(8)  # as after a 429 with Retry-After: 8
    context = browser.new_context(bypass_csp=True, viewport={"width": 320, "height": 640})
    page = context.new_page()
    sign_in_with_browser(page, live_server.url, "pending@demo.test")
    main = page.locator("main")
    expect(main).to_have_attribute("data-verification-state", "waiting")
    expect(page.get_by_role("heading", name="Please wait a moment")).to_be_visible()
    countdown = page.locator("#wait-countdown")
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=2500)  # it counts down
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "waiting-320.png"), full_page=True)
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert [v["id"] for v in results["violations"] if v["impact"] in ("serious", "critical")] == []
    flow_is_open(page)  # no click, no reload by the person
    expect(main).to_have_attribute("data-verification-state", "continue")
    context.close()
