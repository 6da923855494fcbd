"""One getter per service the factory builds and keeps in `app.extensions`."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from celery import Celery

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


_making_celery = threading.Lock()


def celery() -> Celery:
    """The Celery app that sends (and, in a Celery worker, runs) background tasks. A web worker
    makes it when it first sends a task: it only ever sends, most of its requests send none, and
    Celery with what it imports is about 7 MiB a process (docs/PERFORMANCE.md)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if "celery" not in app.extensions:
        with _making_celery:
            if "celery" not in app.extensions:
                from .tasks import celery_init_app  # Celery loads with the first task sent (above)

                celery_init_app(app)
    return app.extensions["celery"]


def persona_sdk_file() -> str | None:
    """The checked, self-hosted SDK file (None when it is missing, tampered or the CDN serves it)."""
    return current_app.extensions["persona_sdk_file"]
