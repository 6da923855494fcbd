"""What the HTTP servers log: request lines with link tokens redacted.

Recovery links (`/r/<token>`) and unsubscribe links carry secrets in their path, and servers
log request lines before our code runs. Werkzeug (`make run`) gets a logging filter; gunicorn
(production, `gunicorn.conf.py`) gets `RedactingLogger`.
"""

from __future__ import annotations

import logging
import re

from gunicorn.glogging import Logger

SECRET_PATHS = re.compile(r"/(r|unsubscribe|confirm-email|password/reset)/[^\s?\"']+")


def redact(text: str) -> str:
    return SECRET_PATHS.sub(lambda m: f"/{m.group(1)}/[redacted]", text)


class RedactingFilter(logging.Filter):
    """For Werkzeug's request log: no link token in a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


class RedactingLogger(Logger):
    """gunicorn's access log, with link tokens redacted from the request line and path."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms


def install_werkzeug_filter() -> None:
    werkzeug_log = logging.getLogger("werkzeug")
    if not any(isinstance(f, RedactingFilter) for f in werkzeug_log.filters):
        werkzeug_log.addFilter(RedactingFilter())
