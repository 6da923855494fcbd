"""`/widget`: the inquiry flow the official SDK embeds (SDK.md), and its same-origin JSON calls.

The page speaks the SDK's postMessage protocol; the JSON calls under `/widget/api` hold the
rules: which inquiries open without a token, which need one, and when "Session expired" shows.
Every refusal is one of the flow errors the SDK defines (`{status, code, message}`), never a
bare HTTP error.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from .state import FINAL, STEPS, Inquiry, StateError, Store
from .strings import RTL, STRINGS, language_for

bp = Blueprint("widget", __name__)
log = logging.getLogger(__name__)


def store() -> Store:
    st: Store = current_app.extensions["persona_emulator"]
    return st


def _error(status: int, code: str, message: str, **extra: Any) -> Response:
    response = jsonify({"error": {"status": status, "code": code, "message": message}, **extra})
    response.status_code = status if status >= 400 else 500
    return response


@bp.errorhandler(StateError)
def _state_error(exc: StateError) -> Response:
    """A refusal from the emulated Persona inside the flow (the session cap, say): `unknown`."""
    if not request.path.startswith("/widget/api"):
        raise exc
    return _error(exc.status, "unknown", exc.title)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    """Anything else is Persona's own failure: `application_error` (status 0), never a bare 500."""
    if isinstance(exc, HTTPException) or not request.path.startswith("/widget/api"):
        raise exc
    log.exception("widget call failed")
    return _error(0, "application_error", "Something went wrong")


def _not_found(st: Store) -> Response:
    if st.config.widget_not_found_error_code == "invalid_config":
        return _error(400, "invalid_config", "Inquiry not found")
    return _error(404, "unknown", "Inquiry not found")


def _flow_state(inq: Inquiry, token: str) -> dict[str, Any]:
    step = STEPS[inq.step_index]
    return {
        "inquiryId": inq.id,
        "status": inq.status,
        "sessionToken": token,
        "step": step,
        "stepNumber": inq.step_index + 1,
        "stepCount": len(STEPS),
        "isLastStep": inq.step_index == len(STEPS) - 1,
        "fields": inq.fields,
    }


def _open(st: Store, inquiry_id: str, token: str | None) -> tuple[Inquiry, str] | Response:
    """The inquiry and a token that opens it, or the error the widget must show and post."""
    try:
        inq = st.inquiry(inquiry_id)
    except StateError:
        return _not_found(st)
    if inq.status in FINAL or inq.redacted_at:
        return _error(
            409,
            st.config.widget_final_error_code,
            "This verification can no longer be changed",
            inquiryStatus=inq.status,
        )
    session = st.session_for_token(inquiry_id, token)
    if session is None and inq.status == "created":
        # A new inquiry opens for anyone holding its id (FACTS.md §0): the flow reuses an
        # unused session or opens one itself. This is not the API's resume, so neither
        # `resume_allows_created` nor a resume error applies; the session cap does.
        session = st.unused_or_new_session(inq)
        token = None
    if session is None:
        # pending without a valid token, or expired (its sessions died with it)
        return _error(409, "unauthenticated", "Session expired", inquiryStatus=inq.status)
    st.mark_used(session)
    return inq, st.token(session) if token is None else token


def _sdk_parameters() -> dict[str, Any]:
    """What the SDK put in the query that the flow records: never the session token."""
    fields = {
        key[len("fields[") : -1]: value
        for key, value in request.args.items()
        if key.startswith("fields[") and key.endswith("]")
    }
    return {
        "at": time.time(),
        "inquiry_id": request.args.get("inquiry-id"),
        "template_id": request.args.get("inquiry-template-id") or request.args.get("template-id"),
        "environment_id": request.args.get("environment-id"),
        "reference_id": request.args.get("reference-id"),
        "account_id": request.args.get("account-id"),
        "language": request.args.get("language"),
        "fields": fields,
        "client_version": request.args.get("client-version"),
        "session_token_given": bool(request.args.get("session-token")),
    }


@bp.get("/widget")
def widget_page() -> str:
    """The emulated flow page; all its data comes from the SDK's query string."""
    st = store()
    recorded = _sdk_parameters()
    with st.lock:
        st.flow_loads.append(recorded)
    language = language_for(request.args.get("language"))
    return render_template(
        "widget.html",
        container_id=request.args.get("container-id", ""),
        iframe_origin=request.args.get("iframe-origin", ""),
        inquiry_id=request.args.get("inquiry-id", ""),
        session_token=request.args.get("session-token", ""),
        template_id=recorded["template_id"] or "",
        language=language,
        direction="rtl" if language in RTL else "ltr",
        t=STRINGS[language],
        strings_json=json.dumps(STRINGS[language]),
    )


@bp.get("/verify")
def hosted_flow() -> tuple[str, int] | str:
    """A one-time link opened on a device (OTL): the hosted flow, in a new session of its own
    (once; a used or dead link shows "Session expired"). Opened from the flow's "Continue on
    another device", the session records that as its `device-handoff-method`."""
    st = store()
    language = language_for(request.args.get("language"))
    try:
        with st.write():
            inq, session = st.open_one_time_link(request.args.get("code", ""))
            token = st.token(session)
    except StateError:
        inq, token = None, ""
    page = render_template(
        "widget.html",
        container_id="",
        iframe_origin="",
        inquiry_id=inq.id if inq else "",
        session_token=token,
        template_id=inq.template_id if inq else "",
        language=language,
        direction="rtl" if language in RTL else "ltr",
        t=STRINGS[language],
        strings_json=json.dumps(STRINGS[language]),
        hosted=True,
        link_dead=inq is None,
    )
    return (page, 404) if inq is None else page


@bp.get("/preload")
def preload() -> str:
    return "<!doctype html><title>preload</title>"


def _payload() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


@bp.post("/widget/api/session")
def open_session() -> Response:
    body = _payload()
    st = store()
    with st.write():
        opened = _open(st, str(body.get("inquiryId", "")), body.get("sessionToken") or None)
        if isinstance(opened, Response):
            return opened
        inq, token = opened
        return jsonify(_flow_state(inq, token))


def _handoff_inquiry(st: Store, body: dict[str, Any], *, final_needs_no_session: bool = False) -> Inquiry | Response:
    """The inquiry a handoff call names, when the caller holds a live session of it (or, with
    `final_needs_no_session`, the inquiry is final); else the flow's error answer."""
    inquiry_id = str(body.get("inquiryId", ""))
    try:
        inq = st.inquiry(inquiry_id)
    except StateError:
        return _not_found(st)
    has_session = st.session_for_token(inquiry_id, str(body.get("sessionToken") or "")) is not None
    if not has_session and not (final_needs_no_session and inq.status in FINAL):
        return _error(409, "unauthenticated", "Session expired", inquiryStatus=inq.status)
    return inq


@bp.post("/widget/api/handoff")
def start_handoff() -> Response:
    """ "Continue on another device": a one-time link for this inquiry (shown as a QR code and
    a link), whose session will record `device-handoff-method` `qr`."""
    st = store()
    with st.write():
        inq = _handoff_inquiry(st, _payload())
        if isinstance(inq, Response):
            return inq
        meta = st.one_time_link(inq, request.host_url.rstrip("/"), method="qr")
        code = meta["one-time-link"].rsplit("code=", 1)[1]
        return jsonify({"link": meta["one-time-link"], "code": code})


@bp.post("/widget/api/handoff-status")
def handoff_status() -> Response:
    """Polled by the first device while the other one runs the flow: whether the link was
    opened there, and the inquiry's status (the first device finishes when it is final)."""
    body = _payload()
    st = store()
    with st.write():
        inq = _handoff_inquiry(st, body, final_needs_no_session=True)
        if isinstance(inq, Response):
            return inq
        opened = st.handoff_link_opened(inq.id, str(body.get("code", "")))
        return jsonify({"opened": opened, "status": inq.status, "inquiryId": inq.id, "fields": inq.fields})


@bp.post("/widget/api/step")
def take_step() -> Response:
    body = _payload()
    action = body.get("action")
    if action not in {"continue", "submit", "fail"}:
        return _error(400, "invalid_config", "Unknown action")
    st = store()
    with st.write():
        inquiry_id = str(body.get("inquiryId", ""))
        token = str(body.get("sessionToken") or "")
        try:
            inq = st.inquiry(inquiry_id)
        except StateError:
            return _not_found(st)
        if inq.status in FINAL:
            return _error(409, st.config.widget_final_error_code, "Already finished")
        if st.session_for_token(inquiry_id, token) is None:
            return _error(409, "unauthenticated", "Session expired", inquiryStatus=inq.status)
        if action == "fail":
            st.set_status(inq, "failed")
        elif action == "submit":
            if inq.step_index != len(STEPS) - 1:
                return _error(400, "invalid_config", "Submit is only possible on the last step")
            if inq.status == "created":
                st.set_status(inq, "pending")
            st.set_status(inq, "completed")
        else:
            if inq.step_index == len(STEPS) - 1:
                return _error(400, "invalid_config", "This is the last step: submit it")
            st.advance_step(inq)
        return jsonify(_flow_state(inq, token))
