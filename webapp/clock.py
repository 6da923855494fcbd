"""The app's one clock. Every module asks `utcnow()`; a test moves time for all of them (and
for column defaults) with one patch: `monkeypatch.setattr(clock, "frozen_at", when)` stops it
at `when`, `monkeypatch.setattr(clock, "offset", timedelta(...))` runs it ahead of real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

frozen_at: datetime | None = None  # tests only: the time utcnow() answers while set
offset = timedelta()  # tests only: how far ahead of real time utcnow() runs


def utcnow() -> datetime:
    """Now, as naive UTC (how every time is stored)."""
    if frozen_at is not None:
        return frozen_at
    return datetime.now(UTC).replace(tzinfo=None) + offset
