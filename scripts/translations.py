"""The language catalogs: extract, update, compile, and the test pseudo-locale.

    python scripts/translations.py extract   # every translatable string -> webapp/translations/messages.pot
    python scripts/translations.py update    # extract, then merge new strings into each .po (translate them!)
    python scripts/translations.py compile   # .po -> .mo (make run and make test do this)

The `.po` files are in git; `messages.pot` and the `.mo` files are built. The test suite uses
the same functions (and `write_pseudo_catalog`, a locale whose every string is about 40 %
longer, with accents, to show layouts that only fit English).
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "webapp" / "translations"
POT = TRANSLATIONS / "messages.pot"
KEYWORDS = ("_l", "lazy_gettext")  # besides Babel's own (_, gettext, ngettext, ...)


def _pybabel(*args: str) -> None:
    CommandLineInterface().run(["pybabel", "-q", *args])


def extract(pot: Path = POT) -> Path:
    """Collect every translatable string in webapp/ and templates/ into `pot`."""
    keywords = [arg for keyword in KEYWORDS for arg in ("-k", keyword)]
    _pybabel(
        "extract",
        "-F",
        str(ROOT / "babel.cfg"),
        "--ignore-dirs",
        ".* node_modules instance __pycache__",
        *keywords,
        "--no-location",
        "--sort-output",
        "--no-wrap",
        "--project",
        "Continue verification",
        "-o",
        str(pot),
        str(ROOT),
    )
    return pot


def update(directory: Path = TRANSLATIONS) -> None:
    """Extract, then merge into each language's .po: new strings arrive untranslated."""
    pot = extract()
    _pybabel("update", "-i", str(pot), "-d", str(directory), "--no-wrap", "--ignore-obsolete", "--no-fuzzy-matching")


def compile_catalogs(directory: Path = TRANSLATIONS) -> None:
    """Each `<lang>/LC_MESSAGES/messages.po` -> `.mo`, next to it."""
    _pybabel("compile", "-d", str(directory))


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


# -- the pseudo-locale ------------------------------------------------------------------------
_ACCENTED = str.maketrans(
    "AaCcDdEeGgIiLlNnOoRrSsTtUuWwYyZz",
    "ÅåÇçÐðÉéĜĝÎîĻļÑñÖöŔŕŠšŢţÜüŴŵÝýŽž",
)
# Placeholders and HTML tags stay exactly as they are; only words change.
_KEEP = re.compile(r"(%\([a-z_]+\)[sd]|%%|<[^>]+>|&[a-z]+;|\{[a-z]+\})")


def pseudo(text: str) -> str:
    """`text` with accented letters and about 40 % more length ("Ŝîĝñ îñ ··"), markup kept."""
    parts = _KEEP.split(text)
    words = "".join(part if _KEEP.fullmatch(part) else part.translate(_ACCENTED) for part in parts)
    visible = len(_KEEP.sub("", text))
    padding = math.ceil(visible * 0.4)
    # Padding in short words, so it wraps where a long translation would.
    filler = " ".join(["ŵôŕð"] * (padding // 5)) + "·" * (padding % 5)
    return f"{words} {filler}".rstrip() if filler else words


def write_pseudo_catalog(pot: Path, directory: Path, locale: str) -> None:
    """A compiled catalog for `locale` in `directory` whose every string is `pseudo(msgid)`."""
    template = read_catalog(pot)
    catalog = Catalog(locale=locale)
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            string: str | tuple[str, ...] = tuple(pseudo(message.id[min(i, 1)]) for i in range(catalog.num_plurals))
        else:
            string = pseudo(message.id)
        catalog.add(message.id, string, flags=message.flags)
    target = directory / locale / "LC_MESSAGES"
    target.mkdir(parents=True, exist_ok=True)
    with (target / "messages.po").open("wb") as fh:
        write_po(fh, catalog, width=0)
    with (target / "messages.mo").open("wb") as fh:
        write_mo(fh, catalog)


def main(argv: list[str]) -> int:
    commands = {"extract": extract, "update": update, "compile": compile_catalogs}
    if len(argv) != 2 or argv[1] not in commands:
        print(__doc__)
        return 2
    commands[argv[1]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
