"""The anxious moments, in real Chromium with the real SDK and the emulator: the flow opening and
closing (focus, inert), being signed out mid-flow, the keep-alive, a slow flow, form errors."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Browser, Page, expect

from tests.builders import give_inquiry, make_user, new_link
from tests.pages import FLOW, flow_is_open
from tests.pages import sign_in_with_browser as sign_in
from webapp import accounts
from webapp.demo import DEMO_PASSWORD, seed_demo_data
from webapp.extensions import db
from webapp.models import Inquiry

DESKTOP = {"width": 1280, "height": 800}
PAGE_BEHIND = ("header.site-header", "main", "footer.site-footer")


def inquiry_of(app, email: str) -> Inquiry:
    from webapp.verification import get_current_inquiry

    with app.app_context():
        inquiry = get_current_inquiry(accounts.get_user_by_email(email))
        db.session.expunge(inquiry)
        return inquiry


def widget_frame(page: Page):
    return next(frame for frame in page.frames if "/widget" in frame.url)


def focus_is_in_the_flow(page: Page) -> bool:
    return page.evaluate("document.activeElement === document.querySelector('iframe.persona-widget__iframe')")


def page_behind_is_inert(page: Page) -> list[bool]:
    return [page.locator(selector).evaluate("el => el.inert") for selector in PAGE_BEHIND]


def test_focus_moves_into_the_flow_and_back_with_the_page_behind_inert(desktop_page: Page, demo):
    page = desktop_page
    sign_in(page, demo.url, "pending@demo.test")
    flow = flow_is_open(page)
    expect(flow.get_by_role("heading", name="Take a photo of your ID")).to_be_visible()
    page.wait_for_function("document.activeElement && document.activeElement.tagName === 'IFRAME'")
    assert focus_is_in_the_flow(page)
    assert page_behind_is_inert(page) == [True, True, True]
    expect(page.locator("#flow-announcer")).to_have_text("The secure verification window is open.")
    # Tab goes through the flow's own controls, and from its last one out to the browser's own
    # (the document itself here): never to "Sign out" or "Email me a link" behind it.
    inside = []
    for _ in range(8):
        page.keyboard.press("Tab")
        on_page = page.evaluate("document.activeElement.tagName")
        assert on_page in ("IFRAME", "BODY")
        if on_page == "IFRAME":
            inside.append(widget_frame(page).evaluate("document.activeElement.textContent.trim()"))
    assert {"Continue", "Exit"} <= set(inside)
    # The status live region stays in the DOM (only its text changes), even when empty.
    expect(page.locator("#flow-status")).to_be_attached()
    assert page.locator("#flow-status").get_attribute("hidden") is None

    flow.get_by_role("button", name="Exit").click()
    expect(page.get_by_role("heading", name="Your progress is saved")).to_be_focused()
    assert page_behind_is_inert(page) == [False, False, False]

    page.get_by_role("button", name="Continue", exact=True).click()
    flow_is_open(page)
    page.wait_for_function("document.activeElement && document.activeElement.tagName === 'IFRAME'")
    assert page_behind_is_inert(page) == [True, True, True]
    page.frame_locator(FLOW).get_by_role("button", name="Exit").click()
    expect(page.get_by_role("heading", name="Your progress is saved")).to_be_focused()


def test_signed_out_mid_flow_says_so_not_partner_unavailable(desktop_page: Page, app, demo, emulator, server_clock):
    page = desktop_page
    sign_in(page, demo.url, "pending@demo.test")
    flow = flow_is_open(page)
    server_clock.move(app.config["LOGIN_SESSION_IDLE_SECONDS"] / 60 + 1)  # away looking for a passport
    emulator.expire_sessions(inquiry_of(app, "pending@demo.test").persona_id)
    flow.get_by_role("button", name="Continue").click()  # the flow finds its token dead; the heal gets 401
    expect(page.get_by_role("heading", name="You were signed out to keep your account safe")).to_be_focused()
    expect(page.locator("#signed-out-panel")).to_contain_text("Your progress is saved.")
    expect(page.get_by_text("isn't answering")).to_have_count(0)
    panel = page.locator("#signed-out-panel")
    expect(panel.get_by_role("link", name="Sign in")).to_have_attribute("href", "/login?next=/verify")
    expect(panel.get_by_role("link", name="Get a link by email")).to_be_visible()
    assert page_behind_is_inert(page) == [False, False, False]


def test_completion_without_a_sign_in_shows_details_received(desktop_page: Page, app, demo, emulator, server_clock):
    page = desktop_page
    sign_in(page, demo.url, "pending@demo.test")
    flow = flow_is_open(page)
    server_clock.move(app.config["LOGIN_SESSION_IDLE_SECONDS"] / 60 + 1)
    flow.get_by_role("button", name="Continue").click()
    flow.get_by_role("button", name="Submit").click()
    page.wait_for_url("**/verify/received")
    expect(page.get_by_role("heading", name="We've received your details")).to_be_visible()
    expect(page).to_have_title("We've received your details – Acme")
    assert emulator.status(inquiry_of(app, "pending@demo.test").persona_id) == "completed"
    # The webhook brings the status without any sign-in.
    for _ in range(50):
        if inquiry_of(app, "pending@demo.test").status == "completed":
            break
        page.wait_for_timeout(100)
    assert inquiry_of(app, "pending@demo.test").status == "completed"


def test_keep_alive_keeps_a_link_session_alive_through_20_minutes_in_the_flow(
    browser: Browser, app, live_server, emulator, server_clock
):
    idle_minutes = app.config["RECOVERY_SESSION_IDLE_SECONDS"] / 60
    assert idle_minutes == 15
    user = make_user(app)
    give_inquiry(app, emulator, user, "pending")
    app.config["PUBLIC_BASE_URL"] = live_server.url
    link = new_link(app, user)
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.clock.install()  # the page script's timers follow this clock, moved below with the server's
    page.goto(link)
    page.get_by_role("button", name="Continue verification").click()
    flow = flow_is_open(page)
    for _ in range(4):  # 20 minutes inside the flow, five at a time: none counts as page activity
        server_clock.move(5)
        with page.expect_response("**/verify/keep-alive") as answer:
            page.clock.fast_forward("05:00")
        assert answer.value.status == 200
        assert answer.value.json()["expiresInSeconds"] > (idle_minutes - 1) * 60
    assert server_clock.offset > timedelta(minutes=idle_minutes)
    flow.get_by_role("button", name="Continue").click()
    flow.get_by_role("button", name="Submit").click()
    expect(page.locator("main")).to_have_attribute("data-verification-state", "processing", timeout=10000)
    context.close()


def test_warning_before_an_idle_sign_out_with_a_way_to_stay(desktop_page: Page, app, demo, server_clock):
    page = desktop_page
    page.clock.install()
    sign_in(page, demo.url, "created@demo.test")
    flow_is_open(page).get_by_role("button", name="Exit").click()
    expect(page.get_by_role("heading", name="Your progress is saved")).to_be_focused()
    idle = app.config["LOGIN_SESSION_IDLE_SECONDS"]
    warn = app.config["SIGN_OUT_WARNING_SECONDS"]
    server_clock.move((idle - warn + 30) / 60)
    page.clock.fast_forward((idle - warn + 30) * 1000)
    warning = page.locator("#sign-out-warning")
    expect(warning.get_by_role("heading", name="You'll be signed out soon")).to_be_focused()
    with page.expect_response("**/verify/keep-alive") as answer:
        warning.get_by_role("button", name="Stay signed in").click()
    assert answer.value.json()["expiresInSeconds"] > idle - 60
    expect(warning).to_be_hidden()
    expect(page.locator("#flow-status")).to_have_text("You're still signed in.")
    # Then nobody is there: the warning comes back, and at the end the page says what happened.
    server_clock.move(idle / 60 + 1)
    page.clock.fast_forward((idle + 60) * 1000)
    expect(page.get_by_role("heading", name="You were signed out to keep your account safe")).to_be_focused()


def test_a_slow_flow_offers_to_keep_waiting(browser: Browser, make_app, emulator):
    from tests.servers import LiveServer

    app = make_app(VERIFY_LOAD_TIMEOUT_SECONDS=1)
    with app.app_context():
        seed_demo_data()
    held = []
    with LiveServer(app) as server:
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        # A slow phone: the flow's own page does not arrive until the test lets it.
        page.route("**/widget?**", lambda route: held.append(route))
        page.goto(server.url + "/login")
        page.get_by_label("Email").fill("pending@demo.test")
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click(no_wait_after=True)
        expect(page.get_by_role("heading", name="This is taking longer than usual")).to_be_focused(timeout=5000)
        page.get_by_role("button", name="Keep waiting").click()
        expect(page.locator("#flow-status")).to_have_text("Still opening the secure verification window…")
        expect(page.locator("#slow-panel")).to_be_hidden()
        held[0].continue_()
        flow_is_open(page)
        context.close()


def test_email_me_a_link_keeps_focus_and_announces(desktop_page: Page, demo):
    page = desktop_page
    sign_in(page, demo.url, "created@demo.test")
    flow_is_open(page).get_by_role("button", name="Exit").click()
    saved = page.locator("#saved-panel")
    button = saved.get_by_role("button", name="Email me a link to continue on another device")
    button.focus()
    page.keyboard.press("Enter")
    expect(saved.get_by_role("status")).to_have_text(
        "We've sent a link to c***@demo.test. It works once, on any device."
    )
    expect(button).to_be_focused()


def test_error_summary_on_sign_in(desktop_page: Page, live_server):
    page = desktop_page
    page.goto(live_server.url + "/login")
    expect(page).to_have_title("Sign in – Acme")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_title("Error: Sign in – Acme")
    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_text(["Enter your email address.", "Enter your password."])
    summary.get_by_role("link", name="Enter your password.").click()
    expect(page.get_by_label("Password")).to_be_focused()
    expect(page.locator("#email-error")).to_have_text("Error: Enter your email address.")


def test_error_summary_on_the_account_form(desktop_page: Page, app, demo):
    page = desktop_page
    sign_in(page, demo.url, "approved@demo.test")
    page.goto(demo.url + "/account")
    page.get_by_label("Current password").fill("not the password at all")
    page.get_by_role("button", name="Change password").click()
    expect(page).to_have_title("Error: Your account – Acme")
    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_text(["Enter a new password.", "Enter the new password again."])
    summary.get_by_role("link", name="Enter a new password.").click()
    expect(page.get_by_label("New password", exact=True)).to_be_focused()


def test_times_show_in_the_readers_time_zone(browser: Browser, demo):
    context = browser.new_context(viewport=DESKTOP, timezone_id="America/New_York", locale="en-US")
    page = context.new_page()
    sign_in(page, demo.url, "approved@demo.test")
    page.goto(demo.url + "/account")
    shown = page.locator("time[data-local-time]").first
    expect(shown).not_to_contain_text("UTC")
    expect(shown).to_contain_text("EST")
    context.close()


# -- contrast of the focus indicator and of input borders, from the computed styles ------------
FOCUS_STYLE = """() => {
  const el = document.activeElement;
  const opaque = (node) => {
    for (; node; node = node.parentElement) {
      const bg = getComputedStyle(node).backgroundColor;
      if (!/rgba\\(.*, 0\\)$/.test(bg) && bg !== "transparent") return bg;
    }
    return getComputedStyle(document.documentElement).backgroundColor;
  };
  const style = getComputedStyle(el);
  return {
    name: el.tagName + " " + (el.textContent || el.id || "").trim().slice(0, 30),
    outlineColor: style.outlineColor, outlineStyle: style.outlineStyle,
    outlineWidth: parseFloat(style.outlineWidth), boxShadow: style.boxShadow,
    own: opaque(el), around: opaque(el.parentElement),
    border: el.tagName === "INPUT" ? style.borderTopColor : null,
    borderWidth: parseFloat(style.borderTopWidth),
  };
}"""


def rgb(css: str) -> tuple[int, int, int]:
    numbers = css[css.index("(") + 1 : css.index(")")].split(",")
    return tuple(int(float(n)) for n in numbers[:3])  # type: ignore[return-value]


def contrast(a: str, b: str) -> float:
    def luminance(color: str) -> float:
        channels = [c / 255 for c in rgb(color)]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def style_problems(s: dict) -> list[str]:
    """The focus indicator must be at least 3:1 against the background around the control and
    (ring or inner band) against the control's own background; an input's border at least 3:1
    against both."""
    if s["outlineStyle"] == "none" or s["outlineWidth"] < 2:
        return [f"{s['name']}: no outline ({s['outlineStyle']} {s['outlineWidth']}px)"]
    problems = []
    if contrast(s["outlineColor"], s["around"]) < 3:
        problems.append(f"{s['name']}: ring {s['outlineColor']} on {s['around']}")
    band = s["boxShadow"][: s["boxShadow"].index(")") + 1] if "rgb" in s["boxShadow"] else s["outlineColor"]
    if max(contrast(s["outlineColor"], s["own"]), contrast(band, s["own"])) < 3:
        problems.append(f"{s['name']}: indicator {s['outlineColor']}/{band} on its own {s['own']}")
    if s["border"] and min(contrast(s["border"], s["own"]), contrast(s["border"], s["around"])) < 3:
        problems.append(f"{s['name']}: border {s['border']} on {s['own']} / {s['around']}")
    return problems


def indicator_problems(page: Page, stops: int) -> list[str]:
    """Tab through every control after the skip link (at least `stops` of them): their problems."""
    problems, seen = [], 0
    page.evaluate("document.querySelector('.skip-link').focus(); document.activeElement.blur()")
    for _ in range(40):
        page.keyboard.press("Tab")
        style = page.evaluate(FOCUS_STYLE)
        if style["name"].startswith("BODY"):
            break
        seen += 1
        problems += style_problems(style)
    assert seen >= stops
    return problems


def test_focus_indicator_and_input_borders_meet_3_to_1(desktop_page: Page, demo):
    page = desktop_page
    page.goto(demo.url + "/login")
    assert indicator_problems(page, 7) == []  # brand, email, password, button, 3 links
    sign_in(page, demo.url, "created@demo.test")
    flow_is_open(page).get_by_role("button", name="Exit").click()  # the saved panel, on a card
    expect(page.get_by_role("heading", name="Your progress is saved")).to_be_focused()
    assert indicator_problems(page, 5) == []  # brand, Sign out, Continue, Email me a link, support
    page.goto(demo.url + "/login")
    page.keyboard.press("Tab")
    skip_link = page.evaluate(FOCUS_STYLE)
    assert skip_link["name"] == "A Skip to content" and style_problems(skip_link) == []


def test_the_contrast_check_catches_the_old_colours(desktop_page: Page, live_server):
    """Guards the guard: the old amber ring (1.68:1) and grey borders (2.36:1) must fail."""
    page = desktop_page
    page.goto(live_server.url + "/login")
    page.add_style_tag(
        content=":focus-visible { outline: 3px solid #f5b700 !important; box-shadow: none !important; }"
        ".field input { border: 1px solid #9aa3b8 !important; }"
    )
    problems = " ".join(indicator_problems(page, 5))
    assert "ring rgb(245, 183, 0)" in problems and "border rgb(154, 163, 184)" in problems
