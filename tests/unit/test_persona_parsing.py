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


def test_the_client_reads_proxy_and_ca_settings_from_the_environment_once(monkeypatch, tmp_path):
    """Read when a thread first calls Persona, not on every call; an operator's HTTPS_PROXY,
    NO_PROXY and REQUESTS_CA_BUNDLE still apply, and a ~/.netrc never replaces the API key."""
    import requests

    from webapp.persona import PersonaClient

    (tmp_path / ".netrc").write_text("machine api.withpersona.com login someone password other\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HTTPS_PROXY", "http://egress.internal:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/egress-ca.pem")
    url = "https://api.withpersona.com/api/v1/inquiries/inq_x"
    timeouts = {"version": "2025-10-27", "connect_timeout_seconds": 1, "read_timeout_seconds": 1}
    session = PersonaClient("https://api.withpersona.com/api/v1", "persona_production_key", **timeouts)._session
    settings = session.merge_environment_settings(url, {}, None, None, None)
    assert settings["proxies"]["https"] == "http://egress.internal:3128"
    assert settings["verify"] == "/etc/ssl/egress-ca.pem"
    prepared = session.prepare_request(requests.Request("GET", url))
    assert prepared.headers["Authorization"] == "Bearer persona_production_key"

    monkeypatch.setenv("NO_PROXY", "api.withpersona.com")
    direct = PersonaClient("https://api.withpersona.com/api/v1", "persona_production_key", **timeouts)._session
    assert "https" not in direct.merge_environment_settings(url, {}, None, None, None)["proxies"]


@pytest.mark.parametrize(
    ("title", "remaining", "session_cap"),
    [
        ("Session limit reached", None, True),  # the cap, as the emulator (and row 3) answers it
        ("Too many requests", None, False),  # the rate limit
        ("Too many requests", "0", False),
        ("Rate limited", "12", True),  # a 429 while the rate limit says calls are left
        ("", None, False),
    ],
)
def test_a_429_for_the_session_cap_is_told_from_the_rate_limit(title, remaining, session_cap):
    import json

    import requests

    from webapp.persona import _is_session_limit

    response = requests.Response()
    response.status_code = 429
    response._content = json.dumps({"errors": [{"title": title}]}).encode()
    if remaining is not None:
        response.headers["RateLimit-Remaining"] = remaining
    assert _is_session_limit(response) is session_cap
