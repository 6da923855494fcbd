"""Logging: the app's log lines are one line each and carry the id of the request they belong to.

Every answer has an `X-Request-Id`; the same id is on error pages and in every line the app
logs, including a worker's lines about an email (which carry the id of the request that asked for it).
Production writes JSON lines; no line carries a link token or a full email address.
"""

from __future__ import annotations

import logging
import re
import secrets

from flask import Flask, g, has_app_context
from pythonjsonlogger.json import JsonFormatter
from werkzeug.wrappers import Response

from .mail import mask_email
from .serving import install_werkzeug_filter, redact


class OneLineFilter(logging.Filter):
    """CR/LF in logged values would forge log lines: escape them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                a.replace("\r", "\\r").replace("\n", "\\n") if isinstance(a, str) else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        return True


class RedactingFilter(logging.Filter):
    """No link token or full email address in a log line, whoever wrote the message."""

    _EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact(record.getMessage())
        record.msg, record.args = self._EMAIL.sub(lambda m: mask_email(m.group(0)), message), None
        return True


class RequestIdFilter(logging.Filter):
    """Every line says which request it belongs to: the id the person sees on an error page
    and in the X-Request-Id header (a background job carries the id of the request that queued
    it; "-" for the CLI)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_app_context() else "-"
        return True


def init_app(app: Flask) -> None:
    """Configure the `webapp` logger and give every request an id (first of all the hooks)."""
    root = logging.getLogger("webapp")
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    if app.config["LOG_FORMAT"] == "json":  # one object per line, for a log pipeline (production)
        formatter: logging.Formatter = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    for handler in root.handlers:
        handler.setFormatter(formatter)
        for kind in (OneLineFilter, RedactingFilter, RequestIdFilter):
            if not any(isinstance(f, kind) for f in handler.filters):
                handler.addFilter(kind())
    root.setLevel(logging.DEBUG if app.debug else logging.INFO)
    install_werkzeug_filter()
    app.before_request(_new_request_id)
    app.after_request(_request_id_header)


def _new_request_id() -> None:
    g.request_id = secrets.token_hex(8)


def _request_id_header(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "-")
    return response
