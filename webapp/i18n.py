"""Languages: which one a person sees, and everything that follows from it.

The choice, first match wins:
1. the signed-in account's `locale`;
2. the language of the email whose recovery link opened this session (kept in the session
   until sign-in or a menu choice);
3. the `lang` cookie, set by the language menu;
4. the best match for the browser's `Accept-Language`;
5. English.

The menu stores a choice in the cookie and, when signed in, on the account; signing in copies
a cookie choice onto the account (or, with none, the browser's best match), so emails and
reminders go out in the language the person reads. Catalogs live in `webapp/translations/`
(`.po` in git, `.mo` compiled by `make translations`, run by `make run` and `make test`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from babel.support import NullTranslations
from flask import Flask, current_app, g, has_app_context, has_request_context, request, session
from flask_babel import Babel, get_locale, get_translations, refresh
from flask_login import current_user
from jinja2.runtime import Context
from jinja2.utils import pass_context
from markupsafe import Markup
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)

DEFAULT_LOCALE = "en"
COOKIE_NAME = "lang"
LINK_LOCALE_KEY = "link_locale"
COOKIE_MAX_AGE_SECONDS = 365 * 24 * 3600
# Each language named in itself, as the menu shows it.
LANGUAGE_NAMES = {
    "en": "English",
    "es": "Español",
    "fr": "Français",
    "de": "Deutsch",
    "pt_BR": "Português (Brasil)",
    "ar": "العربية",
}
# Each language's writing direction, as CLDR's character order gives it (a test compares). Asking
# CLDR on every page would load the locale's whole data into the process (about 1 MiB a
# language, 4 to 5 MiB for the first) on pages that show no date (docs/PERFORMANCE.md).
TEXT_DIRECTIONS = {"en": "ltr", "es": "ltr", "fr": "ltr", "de": "ltr", "pt_BR": "ltr", "ar": "rtl"}
# The SDK's `language` option for each of our locales (docs/PERSONA-ASSUMPTIONS.md).
PERSONA_LANGUAGES = {
    "en": "en-US",
    "es": "es",
    "fr": "fr",
    "de": "de",
    "pt_BR": "pt-BR",
    "ar": "ar",
}


def init_app(app: Flask) -> None:
    # One Babel per app: its catalog cache belongs to this app's translation directories.
    Babel(app, locale_selector=select_locale)
    # Flask-Babel's own template callables, reading the per-request catalog (`translations`).
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # jinja2.ext.i18n adds it
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    # The two the pages use, in one call each instead of three (template_gettext).
    app.jinja_env.globals.update(_=template_gettext, gettext=template_gettext, ngettext=template_ngettext)
    app.after_request(_content_language)
    app.jinja_env.globals.update(
        current_locale=current_locale,
        text_direction=text_direction,
        html_lang=html_lang,
        language_menu=language_menu,
        persona_language=persona_language,
        format_moment=format_moment,
        verify_messages=page_script_messages,
    )


def translations() -> NullTranslations:
    """This request's catalog, looked up once per request. Flask-Babel looks it up on every
    string (several context-local reads and the locale formatted each time: a fifth of a
    page's CPU, PERFORMANCE.md). Kept in Flask-Babel's own per-request slot, which `refresh()`
    and `force_locale()` reset when the language changes."""
    babel_context = g.get("_flask_babel") if has_app_context() else None
    if babel_context is None:  # Flask-Babel makes it on its first lookup
        return get_translations()
    cached = getattr(babel_context, "babel_translations", None)
    if cached is None:
        cached = babel_context.babel_translations = get_translations()
    return cached


def gettext(string: str, **variables: str) -> str:
    """Flask-Babel's `gettext` (same contract), through the per-request catalog."""
    translated = translations().ugettext(string)
    return translated % variables if variables else translated


@pass_context
def template_gettext(context: Context, string: str, /, **variables: Any) -> str:
    """`_()` and `gettext()` in templates: Jinja's newstyle gettext (jinja2.ext), same contract
    (translated; marked safe where the template autoescapes, so the variables are escaped; always
    %-formatted; any variable name, hence positional-only parameters), without its two extra
    indirections. A page has ~70 strings, and they were a
    third of its CPU (PERFORMANCE.md). A string without variables is formatted once per catalog."""
    catalog = translations()
    if not context.eval_ctx.autoescape:
        return catalog.ugettext(string) % variables
    if variables:
        return _markup_of_catalog(catalog.ugettext(string)) % variables
    ready: dict[str, Markup] = catalog.__dict__.setdefault("_template_markup", {})
    markup = ready.get(string)
    if markup is None:
        markup = ready[string] = _markup_of_catalog(catalog.ugettext(string)) % {}
    return markup


@pass_context
def template_ngettext(context: Context, singular: str, plural: str, n: int, /, **variables: Any) -> str:
    """`ngettext()` in templates: Jinja's newstyle ngettext (`num` is n unless given)."""
    variables.setdefault("num", n)
    translated = translations().ungettext(singular, plural, n)
    return (_markup_of_catalog(translated) if context.eval_ctx.autoescape else translated) % variables


def _markup_of_catalog(translated: str) -> Markup:
    """A template string's translation, trusted as Jinja's newstyle gettext trusts it: it comes
    from our own catalog (reviewed like the templates, some strings carry markup); what is
    formatted into it is escaped by Markup's `%`."""
    return Markup(translated)  # our catalog, not input  # nosec B704


def _content_language(response: Response) -> Response:
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Language", html_lang())
        response.vary.add("Accept-Language")
        response.vary.add("Cookie")
    return response


def supported_locales() -> list[str]:
    return list(current_app.config["LANGUAGES"])


def normalize_locale(value: str | None) -> str | None:
    """One of our locales for `value` ("pt-BR", "pt_br", "es"), or None."""
    if not value:
        return None
    wanted = value.strip().replace("-", "_").lower()
    for code in supported_locales():
        if code.lower() == wanted:
            return code
    return None


def select_locale() -> str:
    """The locale of the current request (see the module docstring for the order)."""
    if not has_request_context():
        return DEFAULT_LOCALE
    if current_user and current_user.is_authenticated:
        stored = normalize_locale(getattr(current_user, "locale", None))
        if stored:
            return stored
    from_link = normalize_locale(session.get(LINK_LOCALE_KEY))
    if from_link:
        return from_link
    chosen = normalize_locale(request.cookies.get(COOKIE_NAME))
    if chosen:
        return chosen
    return browser_locale()


def browser_locale() -> str:
    """The best match for the browser's Accept-Language among ours; English otherwise."""
    offered = supported_locales()
    # Werkzeug matches "pt-BR" against "pt_BR" only with the same separator.
    by_tag = {code.replace("_", "-"): code for code in offered}
    best = request.accept_languages.best_match(list(by_tag)) if has_request_context() else None
    if best is None and has_request_context():
        # "pt-PT" or "es-MX" asked, "pt_BR"/"es" offered: fall back on the language alone.
        languages = {tag.split("-")[0]: code for tag, code in reversed(list(by_tag.items()))}
        for value, _quality in request.accept_languages:
            code = languages.get(value.split("-")[0].lower())
            if code:
                return code
    return by_tag.get(best, DEFAULT_LOCALE) if best else DEFAULT_LOCALE


def account_locale(user: object) -> str:
    """The language an account's emails go out in: its stored locale, else English."""
    return normalize_locale(getattr(user, "locale", None)) or DEFAULT_LOCALE


def open_in_link_language(locale: str | None) -> None:
    """A recovery link opens in its email's language: kept in the session until sign-in (the
    account's locale takes over) or a choice in the menu."""
    if normalize_locale(locale):
        session[LINK_LOCALE_KEY] = locale
        refresh()


def current_locale() -> str:
    locale = get_locale()
    return str(locale) if locale is not None else DEFAULT_LOCALE


def text_direction(locale: str | None = None) -> str:
    """ "rtl" or "ltr": ours from the table above, any other language from CLDR."""
    code = locale or current_locale()
    if code in TEXT_DIRECTIONS:
        return TEXT_DIRECTIONS[code]
    try:
        parsed = Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return "ltr"
    return "rtl" if parsed.character_order == "right-to-left" else "ltr"


def html_lang(locale: str | None = None) -> str:
    """The BCP 47 tag for `<html lang>` and Content-Language ("pt-BR", not "pt_BR")."""
    return (locale or current_locale()).replace("_", "-")


def persona_language(locale: str | None = None) -> str:
    """The Persona SDK's `language` option for our locale."""
    code = locale or current_locale()
    return PERSONA_LANGUAGES.get(code, html_lang(code))


def language_name(code: str) -> str:
    if code in LANGUAGE_NAMES:
        return LANGUAGE_NAMES[code]
    try:
        return Locale.parse(code).get_display_name(code) or code
    except (UnknownLocaleError, ValueError):
        return code


def language_menu() -> list[dict[str, str | bool]]:
    """The menu's entries: code, name (in itself), lang tag, and whether it is the current one."""
    now = current_locale()
    return [
        {"code": code, "name": language_name(code), "lang": html_lang(code), "current": code == now}
        for code in supported_locales()
    ]


def remember_choice(response: Response, locale: str) -> None:
    """Keep a menu choice on this device (a long-lived cookie; not a secret). It now outranks
    the language of the link that opened this session."""
    session.pop(LINK_LOCALE_KEY, None)
    response.set_cookie(
        COOKIE_NAME,
        locale,
        max_age=COOKIE_MAX_AGE_SECONDS,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )


def locale_for_new_sign_in(stored: str | None) -> str:
    """The account's locale after signing in on this browser: a menu choice made here wins;
    without one, keep the stored locale, or take the browser's best match."""
    chosen = normalize_locale(request.cookies.get(COOKIE_NAME))
    return chosen or normalize_locale(stored) or browser_locale()


def format_moment(moment: datetime, locale: str | None = None) -> str:
    """A naive-UTC `moment` in words for the locale, in UTC: "27 de noviembre de 2026, 17:05"."""
    code = locale or current_locale()
    # Our English is British in its dates ("28 November 2026, 18:05"), as the copy always was.
    parsed = Locale.parse("en_GB" if code == DEFAULT_LOCALE else code)
    date = format_date(moment, "long", locale=parsed)
    time = format_time(moment, "short", locale=parsed)
    joined = str(parsed.datetime_formats["medium"])
    return joined.replace("{1}", date).replace("{0}", time)


def page_script_messages() -> dict[str, str]:
    """Every sentence the page script (static/js/verify.js) may show, in this request's
    language; handed to it in its JSON config block. `{address}` is filled in by the script."""
    return {
        "opening": gettext("Opening the secure verification window…"),
        "stillOpening": gettext("Still opening the secure verification window…"),
        "flowOpen": gettext("The secure verification window is open."),
        "stillSignedIn": gettext("You're still signed in."),
        "saving": gettext("Saving your result…"),
        "savingSlowly": gettext("Saving your result… this takes a few seconds more."),
        "reconnecting": gettext("The verification window timed out. Reconnecting you…"),
        "iframeTitle": gettext("Verify your identity"),
        "tooManyTitle": gettext("Too many attempts"),
        "tooManyText": gettext("Please wait a few minutes, then try again."),
        "unavailableTitle": gettext("We couldn't reconnect you"),
        "unavailableText": gettext("Our identity partner isn't answering right now. Please try again in a moment."),
        "expiredTitle": gettext("The verification window timed out"),
        "expiredText": gettext("We couldn't reconnect you automatically. Please try again."),
        "openFailedTitle": gettext("We couldn't open the verification"),
        "flowErrorText": gettext("Something went wrong inside the verification window. Please try again."),
        "bootFailedText": gettext("Please reload the page and try again."),
        "sdkMissingTitle": gettext("The verification window couldn't load"),
        "sdkMissingText": gettext(
            "Your connection dropped, or a browser extension blocked it. "
            "Check your connection or allow this page, then try again."
        ),
        "sending": gettext("Sending…"),
        "linkSent": gettext("We've sent a link to %(address)s. It works once, on any device.", address="{address}"),
        "linkFailed": gettext("We couldn't send the link. Please try again in a few minutes."),
        "linkOffline": gettext("We couldn't send the link. Please check your connection and try again."),
        "makingLink": gettext("Making your link…"),
        "linkCopied": gettext("Link copied. Open your browser, paste it into the address bar and go."),
        "copyByHand": gettext("Copy the link below, then paste it into your browser's address bar."),
        "linkNotMade": gettext("We couldn't make a link. Please check your connection and try again."),
        "makingCode": gettext("Making your code…"),
        "codeNotMade": gettext("We couldn't make a code. Please check your connection and try again."),
        "codePaused": gettext(
            "The code stopped working, to keep your account safe. Show a new one when your phone is ready."
        ),
        "noCameraApi": gettext(
            "This browser doesn't let web pages use a camera. The identity check needs one to take a photo "
            "of your ID and a selfie: try Safari, Chrome or Firefox, or another device."
        ),
    }
