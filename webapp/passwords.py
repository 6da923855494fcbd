"""Password rules beyond length: refuse the passwords everyone tries first."""

from __future__ import annotations

from functools import cache
from pathlib import Path

COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common-passwords.txt"


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list (webapp/data/README.md says where it comes from), lower-cased."""
    with open(COMMON_PASSWORDS_FILE, encoding="utf-8") as fh:
        return frozenset(line.strip().lower() for line in fh if line.strip())


def is_common_password(password: str) -> bool:
    """True when `password` (case-insensitively, ignoring surrounding spaces) is on the list."""
    return password.strip().lower() in common_passwords()
