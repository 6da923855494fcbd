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

from flask import Flask, Response, g, request

from .config import EmulatorConfig
from .state import Store
from .webhooks import Deliverer


def create_app(config: EmulatorConfig | None = None, *, start_deliverer: bool = True) -> Flask:
    config = config or EmulatorConfig.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    store = Store(config)
    app.extensions["persona_emulator"] = store

    from . import api, control, widget

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


def _matching_fault(store: Store) -> dict | None:
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
    from flask import current_app

    rule = _matching_fault(current_app.extensions["persona_emulator"])
    if rule is None:
        return None
    g.fault = rule["action"]
    if rule["action"] in {"delay", "timeout"}:
        time.sleep(rule["seconds"])
        return None  # then answer normally: a client with a shorter timeout has given up
    return FAULT_RESPONSES[rule["action"]](rule)


def _status_fault(rule: dict) -> Response:
    body = rule["body"]
    if body is None:
        body = json.dumps({"errors": [{"title": "Injected fault", "details": "emulator"}]})
    response = Response(body, rule["status"], mimetype="application/json")
    for name, value in rule["headers"].items():
        response.headers[name] = str(value)
    return response


def _malformed_fault(rule: dict) -> Response:
    return Response('{"data": {"type": "inquiry", "id": ', 200, mimetype="application/json")


def _truncated_fault(rule: dict) -> Response:
    full = json.dumps({"data": {"type": "inquiry", "id": "inq_truncated", "attributes": {}}})
    response = Response(full[: len(full) // 2], 200, mimetype="application/json")
    response.headers["Content-Length"] = str(len(full))
    response.headers["Connection"] = "close"
    return response


def _drop_fault(rule: dict) -> Response:
    """Close the connection without an answer."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    return Response(b"", 500, headers={"Connection": "close"})


FAULT_RESPONSES = {
    "status": _status_fault,
    "malformed": _malformed_fault,
    "truncated": _truncated_fault,
    "drop": _drop_fault,
}


def _finish_request(response: Response) -> Response:
    from flask import current_app

    response.headers["Request-Id"] = g.get("request_id", "")
    if _logged():
        entry = {
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode("ascii", "replace"),
            "status": 0 if g.get("fault") == "drop" else response.status_code,
            "at": time.time(),
            "duration_ms": round((time.monotonic() - g.get("started", time.monotonic())) * 1000, 1),
            "request_id": g.get("request_id"),
            "idempotency_key": request.headers.get("Idempotency-Key"),
            "fault": g.get("fault"),
        }
        current_app.extensions["persona_emulator"].requests.append(entry)
    return response
