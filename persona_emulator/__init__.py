"""A local stand-in for Persona: its REST API, the embedded-flow widget, signed webhooks,
a movable clock and fault injection. A separate program: the app never imports it.

    python -m persona_emulator --port 5001 --control
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Flask, Response, current_app, g, request

from . import api
from .config import EmulatorConfig
from .state import Store
from .webhooks import Deliverer


def create_app(config: EmulatorConfig | None = None, *, start_deliverer: bool = True) -> Flask:
    config = config or EmulatorConfig.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    store = Store(config)
    store.start()
    app.extensions["persona_emulator"] = store

    from . import control, widget

    app.register_blueprint(api.bp)
    app.register_blueprint(widget.bp)
    app.register_blueprint(control.bp)

    app.before_request(_start_request)
    app.before_request(_apply_fault)
    app.after_request(_finish_request)

    if start_deliverer:
        deliverer = Deliverer(store)
        deliverer.start()
        app.extensions["persona_emulator_deliverer"] = deliverer
    return app


def _logged() -> bool:
    return not request.path.startswith(("/_emulator", "/static"))


def _start_request() -> None:
    g.request_id = "req_" + secrets.token_hex(10)
    g.started = time.monotonic()
    g.fault = None


def _store() -> Store:
    st: Store = current_app.extensions["persona_emulator"]
    return st


def _matching_fault(store: Store) -> dict[str, Any] | None:
    with store.lock:
        for rule in store.faults:
            if rule["method"] not in {"*", request.method}:
                continue
            if not re.search(rule["path"], request.path):
                continue
            if rule["remaining"] is not None:
                if rule["remaining"] <= 0:
                    continue
                rule["remaining"] -= 1
            rule["hits"] += 1
            return dict(rule)
    return None


def _apply_fault() -> Response | None:
    if request.path.startswith("/_emulator"):
        return None
    rule = _matching_fault(_store())
    if rule is None:
        return None
    g.fault = rule["action"]
    if rule["action"] in {"delay", "timeout"}:
        time.sleep(rule["seconds"])
        return None  # then answer normally: a client with a shorter timeout has given up
    return FAULT_RESPONSES[rule["action"]](rule)


def _status_fault(rule: dict[str, Any]) -> Response:
    body = rule["body"]
    if body is None:
        body = json.dumps({"errors": [{"title": "Injected fault", "details": "emulator"}]})
    response = Response(body, rule["status"], mimetype="application/json")
    for name, value in rule["headers"].items():
        response.headers[name] = str(value)
    api.remember_injected_answer(response)
    return response


def _malformed_fault(rule: dict[str, Any]) -> Response:
    return Response('{"data": {"type": "inquiry", "id": ', 200, mimetype="application/json")


def _truncated_fault(rule: dict[str, Any]) -> Response:
    full = json.dumps({"data": {"type": "inquiry", "id": "inq_truncated", "attributes": {}}})
    response = Response(full[: len(full) // 2], 200, mimetype="application/json")
    response.headers["Content-Length"] = str(len(full))
    response.headers["Connection"] = "close"
    return response


def _drop_fault(rule: dict[str, Any]) -> Response:
    """Close the connection without an answer."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    return Response(b"", 500, headers={"Connection": "close"})


FAULT_RESPONSES: dict[str, Callable[[dict[str, Any]], Response]] = {
    "status": _status_fault,
    "malformed": _malformed_fault,
    "truncated": _truncated_fault,
    "drop": _drop_fault,
}


def _loggable_query() -> str:
    """The query string with every token-like value blanked (the widget's carries session tokens)."""
    pairs = parse_qsl(request.query_string.decode("ascii", "replace"), keep_blank_values=True)
    return urlencode([(name, "[redacted]" if "token" in name.lower() else value) for name, value in pairs])


def _finish_request(response: Response) -> Response:
    response.headers["Request-Id"] = g.get("request_id", "")
    if _logged():
        entry = {
            "method": request.method,
            "path": request.path,
            "query": _loggable_query(),
            "status": 0 if g.get("fault") == "drop" else response.status_code,
            "at": time.time(),
            "duration_ms": round((time.monotonic() - g.get("started", time.monotonic())) * 1000, 1),
            "request_id": g.get("request_id"),
            "idempotency_key": request.headers.get("Idempotency-Key"),
            "fault": g.get("fault"),
        }
        st = _store()
        with st.lock:
            st.requests.append(entry)
    return response
