"""The language browser tests: the app also offers a pseudo-locale (every string about 40 %
longer, with accents), built from the source strings, so layouts that only fit English show."""

from __future__ import annotations

import pytest
from flask import Flask

from scripts.translations import TRANSLATIONS, extract, write_pseudo_catalog
from webapp.config import Config

PSEUDO = "eo"  # a code we don't ship, carrying the pseudo-locale in these tests only


@pytest.fixture(scope="session")
def pseudo_translations(tmp_path_factory) -> str:
    """A folder with the compiled pseudo-locale catalog."""
    folder = tmp_path_factory.mktemp("pseudo")
    write_pseudo_catalog(extract(folder / "messages.pot"), folder, PSEUDO)
    return str(folder)


@pytest.fixture
def app(make_app, pseudo_translations) -> Flask:
    """The app with the pseudo-locale offered too (the real catalogs unchanged)."""
    return make_app(
        LANGUAGES=[*Config.LANGUAGES, PSEUDO],
        BABEL_TRANSLATION_DIRECTORIES=f"{TRANSLATIONS};{pseudo_translations}",
    )
