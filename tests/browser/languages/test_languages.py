"""Every person in their own language, in real Chromium: pages, the page script, the Persona flow,
emails, right to left, and layouts that hold at 320 px in long languages."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.mailbox import link_in, outbox
from tests.pages import FLOW, serious_violations
from webapp.accounts import get_user_by_email
from webapp.demo import DEMO_PASSWORD

PSEUDO = "eo"  # the pseudo-locale this folder's conftest.py adds
NARROW = {"width": 320, "height": 640}


def new_context(browser: Browser, base: str, *, lang: str | None = None, **options) -> BrowserContext:
    """A browser, optionally with a language chosen in the menu before (the `lang` cookie)."""
    context = browser.new_context(bypass_csp=True, **options)  # bypass: axe is injected
    if lang:
        context.add_cookies([{"name": "lang", "value": lang, "url": base}])
    return context


def sign_in(page: Page, base: str, email: str) -> None:
    """The sign-in form, found by its fields (its words are in any language)."""
    page.goto(base + "/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(DEMO_PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/verify")


def choose_in_menu(page: Page, name: str) -> None:
    """What a person does without JS: pick the language, press the button next to it."""
    page.locator("#language-select").select_option(label=name)
    page.locator(".language-menu button").click()
    page.wait_for_load_state()


def overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (0: no sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_spanish_browser_sees_spanish_and_the_flow_is_asked_for_spanish(browser: Browser, app, demo):
    context = new_context(browser, demo.url, locale="es-ES", timezone_id="America/Mexico_City")
    page = context.new_page()
    page.goto(demo.url + "/login")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("heading", name="Iniciar sesión")).to_be_visible()
    sign_in(page, demo.url, "pending@demo.test")
    expect(page.locator("main h1")).to_have_text("Continúa tu verificación")
    frame = page.locator(FLOW)
    expect(frame).to_be_visible(timeout=10000)
    query = parse_qs(urlsplit(frame.get_attribute("src") or "").query)
    assert query["language"] == ["es"]
    expect(frame).to_have_attribute("title", "Verifica tu identidad")
    # The emulator honours `language` as Persona does: the flow itself speaks Spanish.
    expect(page.frame_locator(FLOW).get_by_role("button", name="Salir")).to_be_visible(timeout=10000)
    # The expiry, rewritten by the page script in this browser's zone (Mexico City): no "UTC" left.
    expiry = page.locator("time[data-local-time]")
    expect(expiry).not_to_contain_text("UTC")
    expect(expiry).to_contain_text(" de ")
    context.close()


def test_page_script_messages_come_in_the_chosen_language(browser: Browser, demo):
    context = new_context(browser, demo.url, lang="fr")
    page = context.new_page()
    page.route("**/verify/sdk/**", lambda route: route.abort())
    sign_in(page, demo.url, "pending@demo.test")
    expect(page.get_by_role("heading", name="La fenêtre de vérification n’a pas pu se charger")).to_be_visible()
    expect(page.get_by_role("button", name="Réessayer")).to_be_visible()
    context.close()


def test_arabic_pages_are_right_to_left_pass_axe_and_fit_320px(browser: Browser, demo):
    context = new_context(browser, demo.url, viewport=NARROW)
    page = context.new_page()
    page.goto(demo.url + "/")
    choose_in_menu(page, "العربية")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("html")).to_have_attribute("lang", "ar")
    # Mirrored: the brand sits on the right, the page's start.
    brand = page.locator(".brand").bounding_box()
    assert brand and brand["x"] + brand["width"] > NARROW["width"] / 2
    problems = visit_every_page(page, demo.url, check_layout_and_axe)
    assert problems == []
    context.close()


def test_choice_survives_sign_in_and_is_stored_on_the_account(browser: Browser, app, demo):
    context = new_context(browser, demo.url)
    page = context.new_page()
    page.goto(demo.url + "/login")
    choose_in_menu(page, "Français")
    expect(page.get_by_role("heading", name="Se connecter")).to_be_visible()
    sign_in(page, demo.url, "approved@demo.test")
    expect(page.get_by_role("heading", name="Vous êtes vérifié")).to_be_visible()
    with app.app_context():
        assert get_user_by_email("approved@demo.test").locale == "fr"
    context.close()
    # Later, on another browser that prefers English: still French, from the account.
    other = new_context(browser, demo.url, locale="en-US")
    page = other.new_page()
    sign_in(page, demo.url, "approved@demo.test")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    other.close()


def test_spanish_recovery_email_and_its_link_open_in_spanish(browser: Browser, app, demo, emulator):
    app.config["PUBLIC_BASE_URL"] = demo.url
    context = new_context(browser, demo.url, locale="es-MX")
    page = context.new_page()
    sign_in(page, demo.url, "created@demo.test")  # a Spanish-speaking account from here on
    page.locator(FLOW).wait_for(timeout=10000)
    page.locator("#summary-email-link button").dispatch_event("click")  # under the open flow's overlay
    expect(page.locator("#summary-email-link [role=status]")).to_contain_text("Hemos enviado un enlace a")
    (message,) = outbox(app.config["MAIL_OUTBOX_DIR"])
    assert message["Content-Language"] == "es"
    link = link_in(message)
    context.close()
    # The link, opened on a phone whose browser prefers English.
    phone = new_context(browser, demo.url, locale="en-US", viewport={"width": 390, "height": 844})
    page = phone.new_page()
    page.goto(link)
    expect(page.locator("html")).to_have_attribute("lang", "es")
    assert "lang" not in page.url and "es" not in urlsplit(page.url).query
    page.get_by_role("button", name="Continuar la verificación").click()
    expect(page.locator("main")).to_have_attribute("data-verification-state", "continue")
    expect(page.locator("main h1")).to_have_text("Continúa tu verificación")  # under the flow's modal
    phone.close()


@pytest.mark.parametrize("lang", ["de", PSEUDO, "es"])
def test_long_languages_fit_320px_and_pass_axe_on_every_page(browser: Browser, demo, lang):
    context = new_context(browser, demo.url, lang=lang, viewport=NARROW)
    page = context.new_page()
    check = check_layout_axe_and_words if lang == PSEUDO else check_layout_and_axe
    problems = visit_every_page(page, demo.url, check)
    assert problems == []
    context.close()


def test_the_word_check_catches_text_that_skipped_gettext(browser: Browser, demo):
    """Guards the guard: an English sentence on a pseudo-locale page is reported."""
    context = new_context(browser, demo.url, lang=PSEUDO)
    page = context.new_page()
    page.goto(demo.url + "/")
    assert untranslated_words(page) == []
    page.evaluate("document.querySelector('h1').textContent = 'Please wait here'")
    assert untranslated_words(page) == ["Please", "here", "wait"]
    context.close()


def test_the_layout_check_catches_overflow(browser: Browser, demo):
    """Guards the guard: a word too wide for 320 px is reported."""
    context = new_context(browser, demo.url, viewport=NARROW)
    page = context.new_page()
    page.goto(demo.url + "/")
    page.evaluate("document.querySelector('h1').textContent = 'Identitätsüberprüfungsvorgangsabschlussbestätigung'")
    assert check_layout_and_axe(page, "/") != []
    context.close()


# -- walking every page ---------------------------------------------------------------------
Check = Callable[[Page, str], list[str]]


# Words that stay as they are in every language: names, and the language menu's own entries.
UNTRANSLATED_OK = {"Acme", "Persona", "JavaScript", "UTC", "English", "Deutsch", "Español", "Français", "Português"}
ENGLISH_WORD = re.compile(r"\b[A-Za-z]{4,}\b")


def untranslated_words(page: Page) -> list[str]:
    """Plain-ASCII words on screen in the pseudo-locale, where every translated string has
    accents: text that never went through gettext."""
    text = page.evaluate(
        """() => { const body = document.body.cloneNode(true);  // the menu names languages in themselves,
        // and dates and the countdown are the browser's own words (Intl)
        body.querySelectorAll('.language-menu, script, noscript, style, time, [data-wait-seconds]')
          .forEach(e => e.remove());
        return body.textContent; }"""
    )
    text = re.sub(r"\S+@\S+", "", text)  # addresses
    return sorted({w for w in ENGLISH_WORD.findall(text) if w not in UNTRANSLATED_OK})


def check_layout_axe_and_words(page: Page, label: str) -> list[str]:
    words = untranslated_words(page)
    return check_layout_and_axe(page, label) + ([f"{label}: not translated: {words}"] if words else [])


def check_layout_and_axe(page: Page, label: str) -> list[str]:
    found = [f"{label}: {v}" for v in serious_violations(page)]
    wide = overflow(page)
    if wide > 0:
        found.append(f"{label}: {wide}px wider than the window")
    return found


def visit_every_page(page: Page, base: str, check: Check) -> list[str]:
    """Every page a person can reach, in whatever language the browser is in; `check` on each."""
    problems: list[str] = []

    def look(label: str) -> None:
        page.wait_for_load_state()
        problems.extend(check(page, label))

    for path in ("/", "/login", "/signup", "/recovery/resend", "/r", "/unsubscribe/not-a-token", "/no-such-page"):
        page.goto(base + path)
        look(path)
    page.goto(base + "/login")
    page.locator("main form button[type=submit]").click()
    look("/login with errors")
    page.goto(base + "/recovery/resend")
    page.locator("#email").fill("someone@example.test")
    page.locator("main form button[type=submit]").click()
    look("/recovery/resend sent")
    page.goto(base + "/password/forgot")
    look("/password/forgot")
    page.locator("#email").fill("someone@example.test")
    page.locator("main form button[type=submit]").click()
    look("/password/forgot sent")
    page.goto(base + "/password/reset")
    look("/password/reset without a link")
    for email in ("completed", "review", "approved", "declined", "failed"):
        sign_in(page, base, f"{email}@demo.test")
        look(f"/verify for {email}")
        page.context.clear_cookies(name="session")
    # The continue page with the SDK blocked: the page script's own error panel.
    page.route("**/verify/sdk/**", lambda route: route.abort())
    sign_in(page, base, "pending@demo.test")
    expect(page.locator("#error-panel")).to_be_visible()
    look("/verify, the script's error panel")
    page.goto(base + "/account")
    look("/account")
    page.goto(base + "/verify")  # the flow still blocked: the page stays usable
    page.locator(".whose button").first.click()  # "Not you?"
    look("/not-you")
    page.unroute("**/verify/sdk/**")
    return problems


@pytest.mark.parametrize("lang", ["ar", PSEUDO])
def test_the_waiting_page_and_its_countdown_speak_the_language(browser: Browser, app, demo, lang):
    app.extensions["persona"].budget.back_off(30)  # over Persona's budget, as after a 429
    context = new_context(browser, demo.url, lang=lang, viewport=NARROW)
    page = context.new_page()
    sign_in(page, demo.url, "pending@demo.test")
    expect(page.locator("main")).to_have_attribute("data-verification-state", "waiting")
    countdown = page.locator("#wait-countdown")
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=2500)  # the script rewrote it
    check = check_layout_axe_and_words if lang == PSEUDO else check_layout_and_axe
    assert check(page, "waiting") == []
    if lang == "ar":
        expect(page.locator("h1")).to_have_text("يُرجى الانتظار قليلًا")
        expect(countdown).to_contain_text("ثان")  # Intl's own Arabic plural of "second"
    context.close()
