"""The app's clock for tests, moved forward on demand: minutes pass for the server without waiting."""

from __future__ import annotations

from datetime import timedelta

import pytest

from webapp import clock


class MovableClock:
    """Real time plus an offset that only grows, for every module of the app at once
    (`webapp.clock.offset`); the monkeypatch that made it puts the clock back after the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch
        monkeypatch.setattr(clock, "offset", timedelta())

    @property
    def offset(self) -> timedelta:
        return clock.offset

    def move(self, minutes: float) -> None:
        self._monkeypatch.setattr(clock, "offset", clock.offset + timedelta(minutes=minutes))
