"""Log lines: values cannot forge lines, and server access lines lose link tokens."""

from __future__ import annotations

import logging

from webapp.logs import OneLineFilter


def test_log_lines_cannot_be_forged_with_newlines():
    record = logging.LogRecord("webapp", logging.INFO, __file__, 1, "user %s", ("a\nFAKE LINE\r",), None)
    OneLineFilter().filter(record)
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
