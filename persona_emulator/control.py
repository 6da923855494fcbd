"""`/_emulator/*`: the control and fault-injection API. A contract: other tools script it."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request

from .state import STATUS_EVENTS, StateError, Store, iso
from .webhooks import release_held

bp = Blueprint("control", __name__, url_prefix="/_emulator")

FAULT_ACTIONS = {"status", "delay", "drop", "malformed", "truncated", "timeout"}
SETTABLE_STATUSES = set(STATUS_EVENTS) | {"redacted"}


def store() -> Store:
    st: Store = current_app.extensions["persona_emulator"]
    return st


@bp.before_request
def _enabled_and_json_only() -> Response | None:
    if not store().config.control_enabled:
        abort(404)
    # Every change needs a JSON body: a cross-site page can send a form POST without asking,
    # but not `Content-Type: application/json` (that needs a CORS preflight, which we never allow).
    if request.method != "GET" and not request.is_json:
        response = jsonify(
            {"errors": [{"title": "Unsupported media type", "details": "Send Content-Type: application/json"}]}
        )
        response.status_code = 415
        return response
    return None


@bp.errorhandler(StateError)
def _state_error(exc: StateError) -> Response:
    response = jsonify({"errors": [{"title": exc.title, "details": exc.details}]})
    response.status_code = exc.status
    return response


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise StateError(400, "Bad request", "A JSON object body is required")
    return body


@bp.get("/inquiries")
def inquiries() -> Response:
    st = store()
    with st.write():
        st.sweep_expiry()
        return jsonify(
            [
                {
                    "id": inq.id,
                    "reference_id": inq.reference_id,
                    "status": inq.status,
                    "created_at": iso(inq.created_at),
                    "expires_at": iso(inq.expires_at),
                    "step": inq.step_index,
                    "sessions": len(st.sessions_of(inq.id)),
                }
                for inq in st.inquiries.values()
            ]
        )


@bp.post("/templates/<template_id>/publish")
def publish_template(template_id: str) -> tuple[Response, int]:
    """Publish a new version of a template (what an operator does in Persona's dashboard)."""
    st = store()
    with st.write():
        template = st.publish_template_version(template_id)
        return jsonify({"id": template.id, "latest_published_version_id": template.latest_published_version_id}), 201


@bp.post("/inquiries/<inquiry_id>/status")
def set_status(inquiry_id: str) -> Response:
    status = _body().get("status")
    if status not in SETTABLE_STATUSES:
        raise StateError(422, "Unknown status", f"status must be one of {sorted(SETTABLE_STATUSES)}")
    st = store()
    with st.write():
        inq = st.inquiry(inquiry_id)
        if status == "redacted":
            st.redact(inq)
        else:
            if status == "pending" and inq.status == "created":
                inq.step_index = 1
            st.set_status(inq, status)
        return jsonify({"id": inq.id, "status": inq.status})


@bp.post("/inquiries/<inquiry_id>/sessions/expire")
def expire_sessions(inquiry_id: str) -> Response:
    return jsonify({"expired": store().kill_sessions(inquiry_id)})


@bp.get("/clock")
def clock() -> Response:
    st = store()
    return jsonify({"now": iso(st.now()), "offset_seconds": st.settings.clock_offset})


@bp.post("/clock")
def advance_clock() -> Response:
    seconds = _body().get("advance_seconds")
    if not isinstance(seconds, int | float) or seconds < 0:
        raise StateError(400, "Bad request", "advance_seconds must be a number >= 0")
    st = store()
    st.advance(float(seconds))
    return clock()


@bp.get("/faults")
def faults() -> Response:
    return jsonify(store().faults)


@bp.post("/faults")
def add_fault() -> tuple[Response, int]:
    rule = _body()
    action = rule.get("action")
    if action not in FAULT_ACTIONS:
        raise StateError(400, "Bad request", f"action must be one of {sorted(FAULT_ACTIONS)}")
    try:
        re.compile(rule.get("path", ".*"))
    except re.error as exc:
        raise StateError(400, "Bad request", "path is not a valid regular expression") from exc
    count = rule.get("count")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise StateError(400, "Bad request", "count must be a positive integer or null")
    status, seconds = rule.get("status", 503), rule.get("seconds", 30 if action == "timeout" else 1)
    headers, body = rule.get("headers", {}), rule.get("body")
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise StateError(400, "Bad request", "status must be an HTTP status code")
    if not isinstance(seconds, int | float) or not 0 <= seconds <= 600:
        raise StateError(400, "Bad request", "seconds must be a number from 0 to 600")
    if not isinstance(headers, dict) or (body is not None and not isinstance(body, str)):
        raise StateError(400, "Bad request", "headers must be an object and body a string")
    clean = {
        "method": str(rule.get("method", "*")).upper(),
        "path": str(rule.get("path", ".*")),
        "action": action,
        "status": status,
        "headers": {str(k): str(v) for k, v in headers.items()},
        "body": body,
        "seconds": float(seconds),
        "remaining": count,
        "hits": 0,
    }
    st = store()
    with st.write():
        st.faults.append(clean)
    return jsonify(clean), 201


@bp.delete("/faults")
def clear_faults() -> Response:
    st = store()
    with st.write():
        st.faults.clear()
    return jsonify({"cleared": True})


@bp.get("/requests")
def requests_log() -> Response:
    st = store()
    with st.lock:
        return jsonify(list(st.requests))


@bp.delete("/requests")
def clear_requests() -> Response:
    st = store()
    with st.lock:
        st.requests.clear()
    return jsonify({"cleared": True})


@bp.get("/flows")
def flows() -> Response:
    """The last 200 /widget loads and the SDK parameters they carried (never a token)."""
    st = store()
    with st.lock:
        return jsonify(list(st.flow_loads))


@bp.get("/webhooks")
def webhooks() -> Response:
    st = store()
    with st.write():
        return jsonify(
            {
                "paused": st.settings.webhooks_paused,
                "deliveries": [
                    {
                        "id": d.id,
                        "event_id": d.event_id,
                        "event": st.events[d.event_id].name,
                        "inquiry_id": st.events[d.event_id].inquiry_id,
                        "url": d.url,
                        "state": d.state,
                        "attempts": d.attempts,
                    }
                    for d in st.deliveries.values()
                ],
                "events": [
                    {"id": e.id, "name": e.name, "created_at": iso(e.created_at), "inquiry_id": e.inquiry_id}
                    for e in st.events.values()
                ],
            }
        )


@bp.post("/webhooks/pause")
def pause_webhooks() -> Response:
    """Hold new deliveries (and retries) until released: the way to reorder them."""
    st = store()
    with st.write():
        st.pause_webhooks(True)
    return jsonify({"paused": True})


@bp.post("/webhooks/release")
def release_webhooks() -> Response:
    order = (request.get_json(silent=True) or {}).get("order", "fifo")
    if order not in {"fifo", "reverse", "shuffle"}:
        raise StateError(400, "Bad request", "order must be fifo, reverse or shuffle")
    return jsonify({"released": release_held(store(), order)})


@bp.post("/events/<event_id>/redeliver")
def redeliver(event_id: str) -> tuple[Response, int]:
    """Send an event again (`count` copies: duplicates), to every URL or the given `url`."""
    body = request.get_json(silent=True) or {}
    count = body.get("count", 1)
    if not isinstance(count, int) or not 1 <= count <= 50:
        raise StateError(400, "Bad request", "count must be 1..50")
    st = store()
    with st.write():
        event = st.event(event_id)
        urls = [body["url"]] if body.get("url") else st.config.webhook_urls
        made = [st.add_delivery(event.id, url) for url in urls for _ in range(count)]
    return jsonify({"deliveries": [d.id for d in made]}), 201


@bp.get("/config")
def get_config() -> Response:
    return jsonify(store().config.public())


@bp.post("/config")
def set_config() -> Response:
    refused = store().config.update(_body())
    if refused:
        raise StateError(400, "Bad request", f"unknown settings or wrong types: {', '.join(sorted(refused))}")
    return get_config()


@bp.post("/reset")
def reset() -> Response:
    store().reset()
    return jsonify({"reset": True})
