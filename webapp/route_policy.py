"""A route's policy sits on the route: decorators mark the view, and the guards here read the
marks on the view each request reached. Nothing else lists endpoints.

    @bp.post("/complete")
    @login_required
    @verification_scope   # a session opened from an emailed link may come here
    @json_only            # its errors are JSON too, whatever the Accept header says
    def complete(): ...

A view without marks is reachable only by full sessions, refuses cross-site writes, and answers
errors as pages unless the request's Accept header prefers JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Flask, abort, current_app, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

View = TypeVar("View", bound=Callable[..., object])

_VERIFICATION_SCOPE = "verification_scope"
_UNCONFIRMED_ALLOWED = "unconfirmed_allowed"
_SESSIONLESS = "sessionless"
_CROSS_SITE_ALLOWED = "cross_site_allowed"
_JSON_ONLY = "json_only"


def _mark(view: View, name: str) -> View:
    # In the function's __dict__, which functools.wraps copies: the mark survives any decorator
    # (login_required, limiter.limit) stacked above or below it.
    vars(view)[name] = True
    return view


def verification_scope(view: View) -> View:
    """A session opened from a recovery link (limited to verification) may reach this view."""
    return _mark(view, _VERIFICATION_SCOPE)


def unconfirmed_allowed(view: View) -> View:
    """An account whose address is not confirmed yet may reach this view (the way to confirm it)."""
    return _mark(view, _UNCONFIRMED_ALLOWED)


def sessionless(view: View) -> View:
    """Health checks: answered without loading the session's user (so without the database,
    which may be what is down), whatever cookie the caller sends."""
    return _mark(view, _SESSIONLESS)


def cross_site_allowed(view: View) -> View:
    """Other sites may POST here (Persona's webhook deliveries): the cross-site guard lets it by."""
    return _mark(view, _CROSS_SITE_ALLOWED)


def json_only(view: View) -> View:
    """This view only ever answers JSON, so its errors (401, 400, 429 ...) are JSON too."""
    return _mark(view, _JSON_ONLY)


def _current_view_is(name: str) -> bool:
    """Whether the view this request was routed to carries the mark (False when none matched)."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return bool(view is not None and vars(view).get(name, False))


def wants_json() -> bool:
    """Answer this request (and its errors) in JSON: a JSON-only view, or Accept prefers JSON."""
    return _current_view_is(_JSON_ONLY) or request.accept_mimetypes.best == "application/json"


def init_app(app: Flask) -> None:
    app.before_request(refuse_cross_site_writes)
    app.before_request(keep_link_sessions_to_verification)
    app.before_request(keep_unconfirmed_accounts_to_confirming)


def refuse_cross_site_writes() -> None:
    """Browsers say where a request came from; a write from another site is refused outright
    (defence in depth behind the CSRF token and SameSite cookies), unless the view allows it."""
    if request.method in ("GET", "HEAD", "OPTIONS") or _current_view_is(_CROSS_SITE_ALLOWED):
        return
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        abort(403)


def keep_link_sessions_to_verification() -> Response | None:
    """A session opened from a recovery link reaches only @verification_scope views (and Flask's
    static files, which are nothing personal); anything else sends it to /verify."""
    if _needs_no_user():
        return None
    if not current_user.is_authenticated or current_user.has_full_session:
        return None
    if request.endpoint == "static" or _current_view_is(_VERIFICATION_SCOPE):
        return None
    return redirect(url_for("verify.show"))


def keep_unconfirmed_accounts_to_confirming() -> Response | None:
    """Until its address is confirmed, an account reaches only @unconfirmed_allowed views:
    nothing is sent to that address on its behalf and no verification starts under it."""
    if _needs_no_user() or request.endpoint == "static":
        return None
    if not current_user.is_authenticated or current_user.email_confirmed:
        return None
    if _current_view_is(_UNCONFIRMED_ALLOWED):
        return None
    return redirect(url_for("identity.confirm_email"))


def _needs_no_user() -> bool:
    """No route matched (404, 405, a Host we don't serve), or a @sessionless view."""
    return request.endpoint is None or _current_view_is(_SESSIONLESS)
