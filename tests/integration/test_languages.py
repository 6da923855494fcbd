"""Languages: how one is chosen, remembered, and used for pages, emails and recovery links."""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from urllib.parse import urlsplit

import pytest
from babel.dates import format_date

from tests.builders import give_inquiry
from tests.mailbox import html_of, link_in, outbox, text_of
from tests.pages import boot_config, csrf_from, sign_in
from webapp import recovery
from webapp.extensions import db
from webapp.models import RecoveryLink, User
from webapp.verification import get_current_inquiry

pytestmark = pytest.mark.postgres_too


def subject_of(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def html_tag(response) -> str:
    match = re.search(r"<html[^>]*>", response.get_data(as_text=True))
    assert match
    return match.group(0)


def choose(client, locale: str, next_path: str = "/"):
    """The language menu, as a browser without JS sends it."""
    page = client.get("/")
    return client.post(
        "/language",
        data={"locale": locale, "next": next_path, "csrf_token": csrf_from(page.get_data(as_text=True))},
    )


def stored_locale(app, user) -> str | None:
    with app.app_context():
        return db.session.get(User, user.id).locale


@pytest.mark.parametrize(
    ("accept", "lang", "words"),
    [
        ("es-ES,es;q=0.9,en;q=0.5", "es", "Iniciar sesión"),
        ("pt-BR", "pt-BR", "Entrar"),
        ("pt-PT,pt;q=0.9", "pt-BR", "Entrar"),  # the language alone when the region isn't ours
        ("de;q=0.5, fr;q=0.9", "fr", "Se connecter"),
        ("ja,zh;q=0.8", "en", "Sign in"),  # none of ours: English last
        ("", "en", "Sign in"),
    ],
)
def test_browser_preference_picks_the_language(client, accept, lang, words):
    response = client.get("/login", headers={"Accept-Language": accept} if accept else {})
    assert f'lang="{lang}"' in html_tag(response) and 'dir="ltr"' in html_tag(response)
    assert response.headers["Content-Language"] == lang
    assert words in response.get_data(as_text=True)


def test_menu_names_each_language_in_itself_and_marks_the_current_one(client):
    html = client.get("/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    menu = html[html.index('class="language-menu"') :]
    for code, name in [("en", "English"), ("es", "Español"), ("fr", "Français"), ("pt_BR", "Português (Brasil)")]:
        assert f'value="{code}"' in menu and name in menu
    assert 'lang="ar"' in menu and "العربية" in menu
    assert '<option value="de" lang="de" selected>Deutsch</option>' in menu


def test_menu_choice_is_kept_in_a_cookie_and_outranks_the_browser(client):
    answer = choose(client, "ar", "/login?next=%2Fverify")
    assert answer.status_code == 303 and answer.headers["Location"] == "/login?next=%2Fverify"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("lang=ar;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/login", headers={"Accept-Language": "es"})
    assert 'lang="ar" dir="rtl"' in html_tag(page)
    assert "تسجيل الدخول" in page.get_data(as_text=True)


def test_menu_refuses_unknown_languages_and_foreign_redirects(client):
    assert choose(client, "xx").status_code == 400
    answer = choose(client, "fr", "//evil.example/")
    assert answer.status_code == 303 and answer.headers["Location"] == "/"


def test_choice_before_sign_in_is_stored_on_the_account_and_follows_it(app, client, user):
    choose(client, "es", "/login")
    sign_in(client)
    assert stored_locale(app, user) == "es"
    # Another browser, preferring English, signs in: the account's language wins.
    other = app.test_client()
    sign_in(other)
    page = other.get("/verify", headers={"Accept-Language": "en"})
    assert 'lang="es"' in html_tag(page)


def test_sign_up_stores_the_page_language_and_confirms_the_address_in_it(app, client):
    page = client.get("/signup", headers={"Accept-Language": "de-DE"})
    client.post(
        "/signup",
        data={
            "email": "grete@example.test",
            "password": "lang genug passwort",
            "confirm": "lang genug passwort",
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
        headers={"Accept-Language": "de-DE"},
    )
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "grete@example.test"))
        assert user.locale == "de"
    (message,) = outbox(app.config["MAIL_OUTBOX_DIR"])
    assert subject_of(message) == "Bestätigen Sie Ihre E-Mail-Adresse" and message["Content-Language"] == "de"
    assert "Der Link funktioniert einmal und" in text_of(message)


def test_a_choice_made_while_signed_in_is_stored_on_the_account(app, client, user):
    sign_in(client)
    choose(client, "pt_BR", "/account")
    assert stored_locale(app, user) == "pt_BR"


def test_form_errors_flashes_and_error_pages_are_translated(app, client, user):
    page = client.get("/signup", headers={"Accept-Language": "es"})
    answer = client.post(
        "/signup",
        data={"email": "x", "password": "", "confirm": "", "csrf_token": csrf_from(page.get_data(as_text=True))},
        headers={"Accept-Language": "es"},
    )
    html = answer.get_data(as_text=True)
    assert "Escribe una contraseña." in html and "Escribe una dirección de correo como" in html
    assert "Hay un problema" in html and "<title>Error: Crear una cuenta" in html
    missing = client.get("/no-such-page", headers={"Accept-Language": "fr"})
    assert missing.status_code == 404 and "Page introuvable" in missing.get_data(as_text=True)
    sign_in(client)
    choose(client, "de", "/account")
    signed_out = client.post("/logout", data={"csrf_token": csrf_from(client.get("/account").get_data(as_text=True))})
    assert "Sie sind abgemeldet." in client.get(signed_out.headers["Location"]).get_data(as_text=True)


def test_json_errors_speak_the_language_too(client):
    answer = client.get("/verify", headers={"Accept-Language": "es", "Accept": "application/json"})
    assert answer.status_code == 401 and answer.get_json()["error"]["message"] == "Inicia sesión."


def test_continue_page_tells_the_flow_and_the_script_the_language(app, client, user, emulator):
    give_inquiry(app, emulator, user, "pending")
    choose(client, "ar", "/login")
    sign_in(client)
    page = client.get("/verify")
    html = page.get_data(as_text=True)
    config = boot_config(page)
    assert config["language"] == "ar"
    assert config["messages"]["opening"] == "جارٍ فتح نافذة التحقق الآمنة…"
    assert config["messages"]["linkSent"].count("{address}") == 1
    with app.app_context():
        expires = get_current_inquiry(db.session.get(User, user.id)).expires_at
    words = format_date(expires, "long", locale="ar")
    assert re.search(r'<time datetime="[0-9T:-]+Z" data-local-time>[^<]*' + re.escape(words) + "[^<]* UTC</time>", html)


def test_recovery_email_is_in_the_account_language_and_its_link_opens_in_it(app, client, user, emulator):
    give_inquiry(app, emulator, user, "pending")
    with app.app_context():
        fresh = db.session.get(User, user.id)
        fresh.locale = "es"
        db.session.commit()
        assert recovery.send_link_to_user(fresh)
    (message,) = outbox(app.config["MAIL_OUTBOX_DIR"])
    assert subject_of(message) == "Continúa la verificación de tu identidad"
    assert message["Content-Language"] == "es"
    assert "Has pedido un enlace para continuar" in text_of(message)
    assert "El enlace funciona una sola vez y durante 72 horas." in text_of(message)
    assert '<html lang="es" dir="ltr">' in html_of(message)
    url = link_in(message)
    with app.app_context():
        assert db.session.scalar(db.select(RecoveryLink.locale)) == "es"
    # Opened in a browser that prefers English (and had chosen French once): Spanish, as the email.
    client.set_cookie("lang", "fr")
    first = client.get(urlsplit(url).path, headers={"Accept-Language": "en"})
    assert first.status_code == 303 and "es" not in first.headers["Location"]  # no language in the URL
    landing = client.get("/r", headers={"Accept-Language": "en"})
    assert 'lang="es"' in html_tag(landing) and "Continúa la verificación de tu identidad" in landing.get_data(
        as_text=True
    )
    # A choice in the menu there wins over the email's language.
    choose(client, "de", "/r")
    assert 'lang="de"' in html_tag(client.get("/r"))


def test_reminders_go_out_in_the_account_language(app, runner, idle_person):
    with app.app_context():
        db.session.get(User, idle_person.id).locale = "ar"
        db.session.commit()
    assert "1 due, 1 sent" in runner.invoke(args=["reminders", "send"]).output
    (message,) = outbox(app.config["MAIL_OUTBOX_DIR"])
    assert subject_of(message) == "التحقق من هويتك في انتظارك"
    assert message["Content-Language"] == "ar"
    assert '<html lang="ar" dir="rtl">' in html_of(message)
    assert "وتنتهي مهلته في" in text_of(message)


def test_an_account_without_a_language_gets_english_email(app, user, emulator):
    give_inquiry(app, emulator, user, "pending")
    with app.app_context():
        assert recovery.send_link_to_user(db.session.get(User, user.id))
    (message,) = outbox(app.config["MAIL_OUTBOX_DIR"])
    assert subject_of(message) == "Continue your identity verification" and message["Content-Language"] == "en"


NEWSTYLE_CASES = (
    '{{ _("Continue your verification") }}|{{ _("Continue your verification") }}|'
    '{{ _("Hello %(name)s, 100%%", name="<b>") }}|{{ ngettext("%(num)d step left.", "%(num)d steps left.", 2) }}|'
    '{{ _("%(string)s %(context)s", string="<i>", context="&") }}|{{ ngettext("%(n)s", "%(n)s", 2, n="<u>") }}|'
    "{% trans %}Continue your verification{% endtrans %}|{% trans string='<s>' %}Hi {{ string }}{% endtrans %}"
)


def test_template_gettext_keeps_jinjas_newstyle_contract(app):
    """webapp.i18n replaces Jinja's template gettext with a faster one: the same output as
    Jinja's own (jinja2.ext, newstyle), rendered side by side. Translated, marked safe so the
    variables (of any name) and only they are escaped, always %-formatted, plural by count, and
    unescaped in plain-text templates (emails)."""
    from flask_babel import force_locale
    from jinja2 import Environment

    from webapp.i18n import translations

    jinjas = Environment(extensions=["jinja2.ext.i18n"])
    jinjas.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        newstyle=True,
    )
    for autoescape in (True, False):
        ours = app.jinja_env.overlay(autoescape=autoescape).from_string(NEWSTYLE_CASES)
        theirs = jinjas.overlay(autoescape=autoescape).from_string(NEWSTYLE_CASES)
        for locale in ("fr", "en"):
            with app.test_request_context("/"), force_locale(locale):
                assert ours.render() == theirs.render()
    with app.test_request_context("/"), force_locale("fr"):
        rendered = app.jinja_env.overlay(autoescape=True).from_string(NEWSTYLE_CASES).render()
    assert rendered.startswith(
        "Poursuivez votre vérification|Poursuivez votre vérification|Hello &lt;b&gt;, 100%|Encore 2 étapes.|"
        "&lt;i&gt; &amp;|&lt;u&gt;|Poursuivez votre vérification|Hi &lt;s&gt;"
    )
