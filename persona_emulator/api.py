"""The emulated Persona REST API under /api/v1 (the subset our app uses, FACTS.md §2)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from functools import wraps

from flask import Blueprint, Response, current_app, g, jsonify, request

from .state import StateError, Store, serialize_inquiry

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def store() -> Store:
    return current_app.extensions["persona_emulator"]


def error_response(status: int, title: str, details: str = "") -> Response:
    response = jsonify({"errors": [{"title": title, "details": details}]})
    response.status_code = status
    return response


@bp.errorhandler(StateError)
def _state_error(exc: StateError) -> Response:
    return error_response(exc.status, exc.title, exc.details)


@bp.before_request
def _rate_limit_and_authenticate() -> Response | None:
    st = store()
    limit = st.config.rate_limit_per_minute
    if limit > 0:
        minute = int(time.time() // 60)
        with st.lock:
            window, count = st.rate_window
            count = count + 1 if window == minute else 1
            st.rate_window = (minute, count)
        reset = 60 - int(time.time() % 60)
        g.rate_headers = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(max(limit - count, 0)),
            "RateLimit-Reset": str(reset),
        }
        if count > limit:
            return error_response(429, "Too many requests", "Rate limit exceeded")

    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    valid = scheme.lower() == "bearer" and any(
        hmac.compare_digest(key.encode(), k.encode()) for k in st.config.api_keys
    )
    if not valid:
        return error_response(401, "Must be authenticated to access this endpoint", "Unauthorized")
    g.key_digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return None


@bp.after_request
def _rate_headers(response: Response) -> Response:
    for name, value in getattr(g, "rate_headers", {}).items():
        response.headers[name] = value
    return response


def idempotent(view: Callable[..., Response]) -> Callable[..., Response]:
    """Replay the first answer for a repeated Idempotency-Key; refuse it with another body."""

    @wraps(view)
    def wrapper(*args, **kwargs) -> Response:
        key = request.headers.get("Idempotency-Key")
        if not key:
            return view(*args, **kwargs)
        st = store()
        record_key = f"{g.key_digest}:{key}"
        fingerprint = st.body_digest(
            request.method.encode() + b" " + request.path.encode() + b"\n" + request.get_data()
        )
        with st.lock:
            record = st.data["idempotency"].get(record_key)
            if record is not None:
                if record["fingerprint"] != fingerprint:
                    return error_response(
                        422,
                        "Idempotency key reused",
                        "Idempotency-Key was already used with different parameters",
                    )
                replay = Response(record["body"], record["status"], mimetype="application/json")
                replay.headers["Idempotent-Replayed"] = "true"
                return replay
            try:
                response = view(*args, **kwargs)
            except StateError as exc:  # Persona stores 4xx answers for the key too (IDEM)
                response = error_response(exc.status, exc.title, exc.details)
            st.data["idempotency"][record_key] = {
                "fingerprint": fingerprint,
                "status": response.status_code,
                "body": response.get_data(as_text=True),
                "at": time.time(),
            }
            st.save()
            return response

    return wrapper


def json_body() -> dict:
    raw = request.get_data()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise StateError(400, "Bad request", "Request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise StateError(400, "Bad request", "Request body must be a JSON object")
    return body


def inquiry_document(inq: dict, status: int = 200, meta: dict | None = None) -> Response:
    doc: dict = {"data": serialize_inquiry(inq, store()), "included": []}
    if meta is not None:
        doc["meta"] = meta
    response = jsonify(doc)
    response.status_code = status
    return response


@bp.post("/inquiries")
@idempotent
def create_inquiry() -> Response:
    body = json_body()
    data = body.get("data") or {}
    attrs = data.get("attributes") if isinstance(data, dict) else None
    if not isinstance(attrs, dict):
        raise StateError(400, "Bad request", "data.attributes is required")
    st = store()
    with st.lock:
        inq = st.create_inquiry(attrs)
        st.save()
        return inquiry_document(inq, 201)


@bp.get("/inquiries")
def list_inquiries() -> Response:
    reference_id = request.args.get("filter[reference-id]")
    statuses = [s for s in request.args.get("filter[status]", "").split(",") if s]
    try:
        size = int(request.args.get("page[size]", 10))
    except ValueError as exc:
        raise StateError(400, "Bad request", "page[size] must be a number") from exc
    if not 1 <= size <= 100:
        raise StateError(400, "Bad request", "page[size] must be between 1 and 100")
    st = store()
    with st.lock:
        found = st.list_inquiries(reference_id, statuses, size)
        return jsonify({"data": [serialize_inquiry(i, st) for i in found], "links": {"prev": None, "next": None}})


@bp.get("/inquiries/<inquiry_id>")
def retrieve_inquiry(inquiry_id: str) -> Response:
    st = store()
    with st.lock:
        return inquiry_document(st.inquiry(inquiry_id))


@bp.post("/inquiries/<inquiry_id>/resume")
@idempotent
def resume_inquiry(inquiry_id: str) -> Response:
    json_body()
    st = store()
    with st.lock:
        inq = st.inquiry(inquiry_id)
        token = st.resume(inq)
        st.save()
        return inquiry_document(inq, meta={"session-token": token})


@bp.post("/inquiries/<inquiry_id>/expire")
@idempotent
def expire_inquiry(inquiry_id: str) -> Response:
    st = store()
    with st.lock:
        inq = st.inquiry(inquiry_id)
        if inq["status"] not in {"created", "pending"}:
            raise StateError(409, "Conflict", f"Inquiry cannot be expired while {inq['status']}")
        st.set_status(inq, "expired")
        st.save()
        return inquiry_document(inq)


DECISIONS = {
    "approve": ("approved", {"completed", "failed", "needs_review", "declined"}),
    "decline": ("declined", {"completed", "failed", "needs_review", "approved"}),
    # An inquiry already approved or declined cannot be marked for review (FACTS.md §1).
    "mark-for-review": ("needs_review", {"completed", "failed"}),
}


@bp.post("/inquiries/<inquiry_id>/<any(approve, decline, 'mark-for-review'):action>")
@idempotent
def decide_inquiry(inquiry_id: str, action: str) -> Response:
    json_body()
    target, allowed_from = DECISIONS[action]
    st = store()
    with st.lock:
        inq = st.inquiry(inquiry_id)
        if inq["status"] not in allowed_from:
            raise StateError(409, "Conflict", f"Inquiry cannot be {target.replace('_', ' ')} while {inq['status']}")
        st.set_status(inq, target)
        st.save()
        return inquiry_document(inq)
