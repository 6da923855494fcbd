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
from .listing import filters, paginate, timestamp
from .state import (
    IdempotencyRecord,
    Inquiry,
    Session,
    StateError,
    Store,
    serialize_inquiry,
    serialize_session,
    serialize_template,
)

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


# What `?include=` may name on an inquiry here; another name is a 400 (assumed: Persona's answer
# to an unknown include is not documented).
INQUIRY_INCLUDES = {"inquiry-template"}


def inquiry_document(
    inq: Inquiry, status: int = 200, meta: dict[str, Any] | None = None, include: tuple[str, ...] = ()
) -> Response:
    st = store()
    included = [serialize_template(st.template(inq.template_id))] if "inquiry-template" in include else []
    doc: dict[str, Any] = {"data": serialize_inquiry(inq, st), "included": included}
    if meta is not None:
        doc["meta"] = meta
    response = jsonify(doc)
    response.status_code = status
    return response


@bp.post("/inquiries")
@idempotent
def create_inquiry() -> Response:
    """Create; with `meta.auto-create-inquiry-session: true` the answer's `meta.session-token`
    opens it (changelog 2026-01-18), a session counted like any other."""
    body = json_body()
    data = body.get("data") or {}
    attrs = data.get("attributes") if isinstance(data, dict) else None
    if not isinstance(attrs, dict):
        raise StateError(400, "Bad request", "data.attributes is required")
    meta = body.get("meta") or {}
    if not isinstance(meta, dict):
        raise StateError(400, "Bad request", "meta must be an object")
    st = store()
    with st.write():
        inq = st.create_inquiry(attrs, meta)
        if meta.get("auto-create-inquiry-session") is True:
            token = st.token(st.unused_or_new_session(inq))
            return inquiry_document(inq, 201, meta={"session-token": token})
        return inquiry_document(inq, 201)


INQUIRY_FILTERS = {
    "reference-id",
    "status",
    "account-id",
    "template-id",
    "inquiry-template-id",
    "inquiry-id",
    "created-at-start",
    "created-at-end",
}


def _matches(inq: Inquiry, wanted: dict[str, list[str]]) -> bool:
    checks = {
        "reference-id": inq.reference_id,
        "status": inq.status,
        "account-id": inq.account_id,
        "template-id": inq.template_id,
        "inquiry-template-id": inq.template_id,
        "inquiry-id": inq.id,
    }
    for name, value in checks.items():
        if name in wanted and value not in wanted[name]:
            return False
    if "created-at-start" in wanted and inq.created_at < timestamp(wanted["created-at-start"][0], "created-at-start"):
        return False
    if "created-at-end" in wanted and inq.created_at > timestamp(wanted["created-at-end"][0], "created-at-end"):
        return False
    return True


@bp.get("/inquiries")
def list_inquiries() -> Response:
    """Newest first; the filters PRE/CHG/PAG document; cursor pages with `links`."""
    wanted = filters(INQUIRY_FILTERS)
    if len(wanted.get("inquiry-id", [])) > 100:
        raise StateError(400, "Bad request", "filter[inquiry-id] takes at most 100 ids")
    st = store()
    with st.write():
        found = [inq for inq in st.newest_inquiries(wanted.get("reference-id")) if _matches(inq, wanted)]
        chunk, links = paginate(found, lambda inq: inq.id)
        return jsonify({"data": [serialize_inquiry(i, st) for i in chunk], "links": links})


@bp.get("/inquiries/<inquiry_id>")
def retrieve_inquiry(inquiry_id: str) -> Response:
    include = tuple(name for name in request.args.get("include", "").split(",") if name)
    unknown = [name for name in include if name not in INQUIRY_INCLUDES]
    if unknown:
        raise StateError(400, "Bad request", f"Cannot include {unknown[0]!r}")
    st = store()
    with st.write():
        return inquiry_document(st.inquiry(inquiry_id), include=include)


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


@bp.delete("/inquiries/<inquiry_id>")
def redact_inquiry(inquiry_id: str) -> Response:
    """Redaction: PII removed, sessions canceled, `inquiry.redacted`; resume is then a 409."""
    st = store()
    with st.write():
        inq = st.inquiry(inquiry_id)
        st.redact(inq)
        return inquiry_document(inq)


@bp.post("/inquiries/<inquiry_id>/generate-one-time-link")
@idempotent
def generate_one_time_link(inquiry_id: str) -> Response:
    json_body()
    st = store()
    with st.write():
        inq = st.inquiry(inquiry_id)
        return inquiry_document(inq, meta=st.one_time_link(inq, request.host_url.rstrip("/")))


# -- inquiry sessions (APIR: /inquiry-sessions) ------------------------------------------------
def session_document(session: Session) -> Response:
    return jsonify({"data": serialize_session(session, store()), "included": []})


@bp.get("/inquiry-sessions")
def list_sessions() -> Response:
    """Newest first, `filter[inquiry-id]` (comma list or array), cursor pages."""
    wanted = filters({"inquiry-id"})
    st = store()
    with st.write():
        ids = wanted.get("inquiry-id")
        for inquiry_id in ids or []:
            if inquiry_id in st.inquiries:
                st.inquiry(inquiry_id)  # expires it (and its sessions) if due
        found = [s for s in st.sessions.values() if ids is None or s.inquiry_id in ids]
        found.sort(key=lambda s: s.created_at, reverse=True)
        chunk, links = paginate(found, lambda s: s.id)
        return jsonify({"data": [serialize_session(s, st) for s in chunk], "links": links})


@bp.get("/inquiry-sessions/<session_id>")
def retrieve_session(session_id: str) -> Response:
    st = store()
    with st.write():
        return session_document(st.session(session_id))


@bp.post("/inquiry-sessions/<session_id>/expire")
@idempotent
def expire_session(session_id: str) -> Response:
    """Ends the session (its token no longer opens the flow), `inquiry-session.expired`."""
    json_body()
    st = store()
    with st.write():
        session = st.session(session_id)
        st.expire_session(session)
        return session_document(session)


@bp.post("/inquiry-sessions/expire-all")
@idempotent
def expire_all_sessions() -> Response:
    """Expires every live session of the given inquiries: `meta.inquiry-ids` (a list), or
    `meta.inquiry-id` (the body's exact shape is UNCONFIRMED; see PERSONA-ASSUMPTIONS.md)."""
    meta = json_body().get("meta") or {}
    ids = (
        meta.get("inquiry-ids", [meta["inquiry-id"]] if "inquiry-id" in meta else None)
        if isinstance(meta, dict)
        else None
    )
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids) or len(ids) > 100:
        raise StateError(400, "Bad request", "meta.inquiry-ids must list 1 to 100 inquiry ids")
    st = store()
    with st.write():
        expired = []
        for inquiry_id in ids:
            st.inquiry(inquiry_id)
            expired += [s for s in st.sessions_of(inquiry_id) if st.expire_session(s)]
        return jsonify({"data": [serialize_session(s, st) for s in expired], "included": []})


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
