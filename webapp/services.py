"""One getter per service the factory builds and keeps in `app.extensions`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from .budget import Coalescer, Pace
    from .persona import PersonaClient
    from .security import TokenCipher


def persona() -> PersonaClient:
    """The Persona client: the only way to talk to Persona."""
    return current_app.extensions["persona"]


def coalescer() -> Coalescer:
    """At most one Persona read (or resume) per inquiry at a time, across every instance."""
    return current_app.extensions["coalescer"]


def reminder_pace() -> Pace:
    """Reminder emails a minute, across every process, so their clicks fit Persona's budget."""
    return current_app.extensions["reminder_pace"]


def token_cipher() -> TokenCipher:
    """Encrypts Persona session tokens at rest."""
    return current_app.extensions["token_cipher"]


def persona_sdk_file() -> str | None:
    """The checked, self-hosted SDK file (None when it is missing, tampered or the CDN serves it)."""
    return current_app.extensions["persona_sdk_file"]
