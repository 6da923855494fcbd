"""Pure functions: no app, no network."""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp import _OneLineFilter
from webapp.persona import PersonaBadResponseError, parse_inquiry, parse_time
from webapp.security import TokenCipher, hash_token, is_safe_next, new_token
from webapp.webhooks import (
    InvalidSignatureError,
    MalformedSignatureHeaderError,
    parse_signature_header,
    verify_signature,
)

HEX64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@settings(max_examples=10_000, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.builds(lambda t, v: f"t={t},v1={v}", st.text(max_size=14), st.text(max_size=70)),
        st.builds(lambda t, v, rest: f"t={t},v1={v}{rest}", st.integers(-10, 10**13), HEX64, st.text(max_size=30)),
    )
)
def test_signature_header_parser_parses_or_raises_its_own_error(header):
    try:
        sets = parse_signature_header(header)
    except MalformedSignatureHeaderError:
        return
    assert sets and all(isinstance(t, int) and len(v) == 64 for t, v in sets)


def test_signature_sets_and_verification():
    body = b'{"a": 1}'
    digest = hmac.new(b"s", b"100." + body, hashlib.sha256).hexdigest()
    header = f"t=100,v1={'0' * 64} t=100,v1={digest}"
    assert parse_signature_header(header) == [(100, "0" * 64), (100, digest)]
    verify_signature(header, body, ["other", "s"], now=100, tolerance_seconds=300)
    with pytest.raises(InvalidSignatureError):
        verify_signature(header, body, ["s"], now=401, tolerance_seconds=300)
    with pytest.raises(InvalidSignatureError):
        verify_signature(header, body, [], now=100, tolerance_seconds=300)


def test_compare_digest_is_used_for_every_candidate(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((type(a), type(b)))
        return real(a, b)

    monkeypatch.setattr("webapp.webhooks.hmac.compare_digest", spy)
    body = b"{}"
    good = hmac.new(b"new", b"5." + body, hashlib.sha256).hexdigest()
    verify_signature(f"t=5,v1={good} t=5,v1={'1' * 64}", body, ["old", "new"], now=5, tolerance_seconds=1)
    assert len(calls) == 4 and all(pair == (bytes, bytes) for pair in calls)


@pytest.mark.parametrize(
    "target, safe",
    [
        ("/verify", True),
        ("/verify?x=1", True),
        ("//evil.example", False),
        ("https://evil.example", False),
        ("/\\\\evil.example", False),
        ("javascript:alert(1)", False),
        ("", False),
        (None, False),
        ("/\x00x", False),
    ],
)
def test_safe_next(target, safe):
    assert is_safe_next(target) is safe


def test_tokens_hashes_and_encryption():
    token = new_token()
    assert len(token) == 43 and new_token() != token
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    cipher = TokenCipher(None, "secret-key")
    sealed = cipher.encrypt("persona-token")
    assert "persona-token" not in sealed and cipher.decrypt(sealed) == "persona-token"
    assert TokenCipher(None, "another-key").decrypt(sealed) is None
    assert cipher.decrypt("garbage") is None


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


def test_log_lines_cannot_be_forged_with_newlines():
    record = logging.LogRecord("webapp", logging.INFO, __file__, 1, "user %s", ("a\nFAKE LINE\r",), None)
    _OneLineFilter().filter(record)
    assert record.getMessage() == "user a\\nFAKE LINE\\r"


def test_werkzeug_request_lines_lose_their_link_tokens():
    from webapp.serving import RedactingFilter, redact

    token = "A" * 43
    record = logging.LogRecord(
        "werkzeug",
        logging.INFO,
        __file__,
        1,
        '%s - - [x] "%s" %s %s',
        ("127.0.0.1", f"GET /r/{token} HTTP/1.1", "303", "-"),
        None,
    )
    RedactingFilter().filter(record)
    assert token not in record.getMessage() and "/r/[redacted]" in record.getMessage()
    assert redact("POST /unsubscribe/abc.def HTTP/1.1") == "POST /unsubscribe/[redacted] HTTP/1.1"
    assert redact("GET /verify HTTP/1.1") == "GET /verify HTTP/1.1"
