"""Every language catalog is complete: no untranslated, fuzzy or placeholder-mismatched message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.catalog import Catalog, Message

from scripts.translations import TRANSLATIONS, extract, pseudo, read_catalog
from webapp.config import Config
from webapp.i18n import TEXT_DIRECTIONS

PLACEHOLDER = re.compile(r"%\(([a-z_]+)\)[sd]|\{([a-z]+)\}")
TAG = re.compile(r"</?([a-z]+)[^>]*>")
LOCALES = [code for code in Config.LANGUAGES if code != Config.BABEL_DEFAULT_LOCALE]


def placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def tags(text: str) -> list[str]:
    return sorted(TAG.findall(text))


def problems(catalog: Catalog) -> list[str]:
    """What is wrong with each message of `catalog` (empty when it is complete)."""
    found = []
    for message in catalog:
        if not message.id:
            continue
        found.extend(f"{message.id!r}: {p}" for p in _message_problems(message, catalog.num_plurals))
    return found


def _message_problems(message: Message, num_plurals: int) -> list[str]:
    if message.fuzzy:
        return ["fuzzy"]
    if isinstance(message.id, tuple):
        singular, plural = message.id
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if len(forms) != num_plurals:
            return [f"{len(forms)} plural forms, the language has {num_plurals}"]
        allowed = placeholders(singular) | placeholders(plural)
        # Every form names the same things; a form may spell its number out ("one", "two").
        needed = allowed - {"num"}
        sources: list[tuple[str, str]] = [(plural, form) for form in forms]
    else:
        allowed = needed = placeholders(message.id)
        sources = [(message.id, message.string)]
    found = []
    for source, translation in sources:
        if not translation:
            found.append("untranslated")
            continue
        used = placeholders(translation)
        if used - allowed or needed - used:
            found.append(f"placeholders {sorted(used)} in {translation!r}, expected {sorted(needed)}")
        if tags(translation) != tags(source):
            found.append(f"markup {tags(translation)} in {translation!r}, expected {tags(source)}")
    return found


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_is_complete(locale: str):
    path = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
    assert path.exists(), f"no catalog for {locale}: python scripts/translations.py update"
    catalog = read_catalog(path, locale)
    assert len(catalog) > 100
    assert problems(catalog) == []


def test_every_source_string_is_in_every_catalog(tmp_path: Path):
    """A string added to a page, email or script without `make translations-update` (and a
    translation) fails here."""
    source = {m.id for m in read_catalog(extract(tmp_path / "messages.pot")) if m.id}
    assert len(source) > 100
    missing = {}
    for locale in LOCALES:
        catalog = read_catalog(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", locale)
        if gaps := source - {m.id for m in catalog if m.id}:
            missing[locale] = sorted(map(str, gaps))
    assert missing == {}, "run `make translations-update`, then translate the new strings"


def test_the_check_catches_each_kind_of_problem(tmp_path: Path):
    """Guards the guard: a catalog with each fault fails."""
    po = tmp_path / "messages.po"
    po.write_text(
        """msgid ""
msgstr ""
"Language: es\\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\\n"

msgid "Untranslated"
msgstr ""

#, fuzzy
msgid "Fuzzy"
msgstr "Difuso"

msgid "Hello %(name)s"
msgstr "Hola %(nombre)s"

msgid "Go <a href=\\"%(url)s\\">here</a>."
msgstr "Ve aquí: %(url)s."

msgid "%(num)d step"
msgid_plural "%(num)d steps for %(who)s"
msgstr[0] "%(num)d paso para %(who)s"
msgstr[1] "%(num)d pasos"
""",
        encoding="utf-8",
    )
    found = "\n".join(problems(read_catalog(po, "es")))
    assert "'Untranslated': untranslated" in found
    assert "'Fuzzy': fuzzy" in found
    assert "'Hello %(name)s': placeholders ['nombre']" in found
    assert "markup [] in 'Ve aquí: %(url)s.'" in found
    assert "placeholders ['num'] in '%(num)d pasos'" in found


def test_pseudo_strings_are_longer_and_keep_their_markup():
    source = 'Need help? Write to <a href="mailto:%(email)s">%(email)s</a>.'
    fake = pseudo(source)
    assert placeholders(fake) == {"email"} and tags(fake) == tags(source)
    assert fake != source and "Ŵŕîţé" in fake

    def visible(text: str) -> str:
        return TAG.sub("", PLACEHOLDER.sub("", text))

    assert len(visible(fake)) >= 1.35 * len(visible(source))


@pytest.mark.parametrize("locale", Config.LANGUAGES)
def test_each_language_is_written_in_the_direction_cldr_gives(locale: str):
    # The pages read the direction from webapp.i18n's table, which spares every worker the
    # locale's CLDR data; the table must say what CLDR says.
    expected = "rtl" if Locale.parse(locale).character_order == "right-to-left" else "ltr"
    assert TEXT_DIRECTIONS[locale] == expected
