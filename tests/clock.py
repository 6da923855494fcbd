"""The app's clock seam for tests: `utcnow`, as a module imported it, moved forward on demand."""

from __future__ import annotations

from datetime import datetime, timedelta

from webapp.models import utcnow


class MovableClock:
    """Real time plus an offset that only grows: minutes pass for the server without waiting.
    Install with `monkeypatch.setattr(module, "utcnow", clock)` on the module that reads it."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def move(self, minutes: float) -> None:
        self.offset += timedelta(minutes=minutes)
