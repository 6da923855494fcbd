"""Reading Persona's answers: inquiry documents and times."""

from __future__ import annotations

from datetime import datetime

import pytest

from webapp.persona import PersonaBadResponseError, parse_inquiry, parse_time


def test_parse_inquiry_shapes():
    inquiry = parse_inquiry(
        {
            "type": "inquiry",
            "id": "inq_1",
            "attributes": {"status": "pending", "expires-at": "2026-11-27T10:00:00.000Z", "redacted-at": None},
        }
    )
    assert inquiry.status == "pending" and inquiry.expires_at == datetime(2026, 11, 27, 10, 0)
    assert parse_time("2026-11-27T12:00:00+02:00") == datetime(2026, 11, 27, 10, 0)
    assert parse_time("not a time") is None
    for bad in (
        None,
        [],
        {"type": "account"},
        {"type": "inquiry", "id": "inq_1"},
        {"type": "inquiry", "id": "inq_1", "attributes": {"status": ""}},
    ):
        with pytest.raises(PersonaBadResponseError):
            parse_inquiry(bad)
