"""The emulated Persona REST API under /api/v1 (the subset our app uses, FACTS.md §2)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from .config import parse_latency
from .state import IdempotencyRecord, Inquiry, StateError, Store, serialize_inquiry

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def store() -> Store:
    st: Store = current_app.extensions["persona_emulator"]
    return st


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
    if st.config.latency:  # modelled upstream latency, before anything else (no lock held)
        time.sleep(parse_latency(st.config.latency)())
    limit = st.config.rate_limit_per_minute
    if limit > 0:
        minute = int(time.time() // 60)
        with st.write():
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

    digest = _key_digest(st)
    if digest is None:
        return error_response(401, "Must be authenticated to access this endpoint", "Unauthorized")
    g.key_digest = digest
    return None


def _key_digest(st: Store) -> str | None:
    """A digest of the request's API key when it is one we accept (idempotency keys are per key)."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    valid = scheme.lower() == "bearer" and any(
        hmac.compare_digest(key.encode(), k.encode()) for k in st.config.api_keys
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16] if valid else None


def _fingerprint(st: Store) -> str:
    return st.body_digest(request.method.encode() + b" " + request.path.encode() + b"\n" + request.get_data())


def remember_injected_answer(response: Response) -> None:
    """A 5xx answered (by an injected fault) to a keyed POST is stored and replayed like any
    other answer (IDEM: 500s are stored too), so a client must retry a 5xx with a new key."""
    key = request.headers.get("Idempotency-Key")
    if (
        response.status_code < 500
        or request.method != "POST"
        or not key
        or not request.path.startswith(bp.url_prefix or "")
    ):
        return
    st = store()
    digest = _key_digest(st)
    if digest is None:
        return
    with st.write():
        if st.remembered(f"{digest}:{key}") is None:
            st.remember(
                IdempotencyRecord(
                    id=f"{digest}:{key}",
                    fingerprint=_fingerprint(st),
                    status=response.status_code,
                    body=response.get_data(as_text=True),
                    at=st.now(),
                )
            )


@bp.after_request
def _rate_headers(response: Response) -> Response:
    for name, value in getattr(g, "rate_headers", {}).items():
        response.headers[name] = value
    return response


def idempotent(view: Callable[..., Response]) -> Callable[..., Response]:
    """Replay the first answer for a repeated Idempotency-Key; refuse it with another body."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key")
        if not key:
            return view(*args, **kwargs)
        st = store()
        record_key = f"{g.key_digest}:{key}"
        fingerprint = _fingerprint(st)
        with st.write():
            record = st.remembered(record_key)
            if record is not None:
                if record.fingerprint != fingerprint:
                    return error_response(
                        422,
                        "Idempotency key reused",
                        "Idempotency-Key was already used with different parameters",
                    )
                replay = Response(record.body, record.status, mimetype="application/json")
                replay.headers["Idempotent-Replayed"] = "true"
                return replay
            try:
                response = view(*args, **kwargs)
            except StateError as exc:  # Persona stores 4xx answers for the key too (IDEM)
                response = error_response(exc.status, exc.title, exc.details)
            st.remember(
                IdempotencyRecord(
                    id=record_key,
                    fingerprint=fingerprint,
                    status=response.status_code,
                    body=response.get_data(as_text=True),
                    at=st.now(),
                )
            )
            return response

    return wrapper


def json_body() -> dict[str, Any]:
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


def inquiry_document(inq: Inquiry, status: int = 200, meta: dict[str, Any] | None = None) -> Response:
    doc: dict[str, Any] = {"data": serialize_inquiry(inq, store()), "included": []}
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
    with st.write():
        inq = st.create_inquiry(attrs)
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
    with st.write():
        found = st.list_inquiries(reference_id, statuses, size)
        return jsonify({"data": [serialize_inquiry(i, st) for i in found], "links": {"prev": None, "next": None}})


@bp.get("/inquiries/<inquiry_id>")
def retrieve_inquiry(inquiry_id: str) -> Response:
    st = store()
    with st.write():
        return inquiry_document(st.inquiry(inquiry_id))


@bp.post("/inquiries/<inquiry_id>/resume")
@idempotent
def resume_inquiry(inquiry_id: str) -> Response:
    json_body()
    st = store()
    with st.write():
        inq = st.inquiry(inquiry_id)
        token = st.resume(inq)
        return inquiry_document(inq, meta={"session-token": token})


@bp.post("/inquiries/<inquiry_id>/expire")
@idempotent
def expire_inquiry(inquiry_id: str) -> Response:
    st = store()
    with st.write():
        inq = st.inquiry(inquiry_id)
        if inq.status not in {"created", "pending"}:
            raise StateError(409, "Conflict", f"Inquiry cannot be expired while {inq.status}")
        st.set_status(inq, "expired")
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
    with st.write():
        inq = st.inquiry(inquiry_id)
        if inq.status not in allowed_from:
            raise StateError(409, "Conflict", f"Inquiry cannot be {target.replace('_', ' ')} while {inq.status}")
        st.set_status(inq, target)
        return inquiry_document(inq)
