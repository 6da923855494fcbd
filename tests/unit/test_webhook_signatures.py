"""The webhook signature header: parsed or refused, checked in constant time against every secret."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
