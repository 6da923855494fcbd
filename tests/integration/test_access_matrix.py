"""Route x actor matrix: every route and method, for every kind of visitor, answers as this
table says. A route the app has and the table lacks fails the test: decide who may reach it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.pages import csrf_from
from webapp.extensions import db
from webapp.models import Inquiry

pytestmark = pytest.mark.postgres_too

ACTORS = ("anonymous", "alice", "bob", "alice_from_link", "carol_unconfirmed")
# alice and bob: signed in with a password; alice_from_link: a session from alice's emailed link
# (verification only); carol_unconfirmed: signed in, her address not confirmed yet (she reaches
# only the way to confirm it). POSTs carry a valid CSRF token and nothing else.
# fmt: off
MATRIX: dict[tuple[str, str], tuple[int, int, int, int, int]] = {
    # route                                    anonymous  alice  bob  alice_from_link  carol_unconfirmed
    ("GET",  "/"):                               (200,      200,   200,  302,  200),
    ("GET",  "/verify"):                         (302,      200,   200,  200,  302),
    ("POST", "/verify/session-token"):           (401,      200,   200,  200,  302),
    ("POST", "/verify/complete"):                (401,      200,   200,  200,  302),
    ("POST", "/verify/restart"):                 (302,      409,   409,  409,  302),
    ("POST", "/verify/keep-alive"):              (401,      200,   200,  200,  302),
    ("GET",  "/verify/received"):                (200,      302,   302,  302,  302),
    ("POST", "/verify/email-link"):              (302,      303,   303,  303,  302),
    ("POST", "/verify/open-in-browser-link"):    (302,      200,   200,  200,  302),
    ("POST", "/verify/continue-here"):           (302,      303,   303,  303,  302),
    ("POST", "/verify/handoff-link"):            (302,      200,   200,  200,  302),
    ("GET",  "/verify/handoff-status"):          (401,      400,   400,  400,  302),  # no `since` sent
    ("GET",  "/verify/sdk/persona-<version>.js"): (200,     200,   200,  200,  302),
    ("GET",  "/recovery/resend"):                (200,      200,   200,  302,  302),
    ("POST", "/recovery/resend"):                (200,      200,   200,  302,  302),
    ("GET",  "/login"):                          (200,      200,   200,  302,  200),
    ("POST", "/login"):                          (200,      200,   200,  302,  200),
    ("GET",  "/signup"):                         (200,      200,   200,  302,  302),
    ("POST", "/signup"):                         (200,      200,   200,  302,  302),
    ("GET",  "/account"):                        (302,      200,   200,  302,  302),
    ("POST", "/account/password"):               (302,      200,   200,  302,  302),
    ("GET",  "/r/<token>"):                      (303,      303,   303,  303,  302),
    ("GET",  "/r"):                              (404,      404,   404,  404,  302),
    ("POST", "/r"):                              (404,      404,   404,  404,  302),
    ("GET",  "/open/<token>"):                   (303,      303,   303,  303,  302),
    ("GET",  "/open"):                           (404,      404,   404,  404,  302),
    ("POST", "/open"):                           (404,      404,   404,  404,  302),
    ("GET",  "/h/<token>"):                      (303,      303,   303,  303,  302),
    ("GET",  "/h"):                              (404,      404,   404,  404,  302),
    ("POST", "/h"):                              (404,      404,   404,  404,  302),
    ("GET",  "/confirm-email/<token>"):          (303,      303,   303,  302,  303),
    # a confirmed account with a dead confirmation link is told it is confirmed (303 to /verify)
    ("GET",  "/confirm-email"):                  (404,      303,   303,  302,  404),
    ("POST", "/confirm-email"):                  (303,      303,   303,  302,  404),
    ("POST", "/resend-confirmation"):            (303,      303,   303,  302,  303),
    ("GET",  "/password/forgot"):                (200,      200,   200,  302,  302),
    ("POST", "/password/forgot"):                (200,      200,   200,  302,  302),
    ("GET",  "/password/reset/<token>"):         (303,      303,   303,  302,  302),
    ("GET",  "/password/reset"):                 (404,      404,   404,  302,  302),
    ("POST", "/password/reset"):                 (404,      404,   404,  302,  302),
    ("GET",  "/unsubscribe/<token>"):            (404,      404,   404,  302,  302),
    ("POST", "/unsubscribe/<token>"):            (404,      404,   404,  302,  302),
    ("POST", "/webhooks/persona"):               (415,      415,   415,  302,  302),
    ("POST", "/language"):                       (400,      400,   400,  400,  400),  # no locale sent
    ("GET",  "/healthz"):                        (200,      200,   200,  200,  200),
    ("GET",  "/readyz"):                         (200,      200,   200,  200,  200),
    ("GET",  "/metrics"):                        (200,      200,   200,  200,  200),  # loopback, no token
    ("GET",  "/static/<path:filename>"):         (200,      200,   200,  200,  200),
    ("POST", "/logout"):                         (302,      303,   303,  303,  303),
    ("POST", "/account/sign-out-everywhere"):    (302,      303,   303,  302,  302),
    ("POST", "/not-you"):                        (200,      200,   200,  200,  200),
}
# fmt: on
# These end sessions beyond the caller's own: each actor tries them on a fresh set of actors.
ENDS_OTHER_SESSIONS = {("POST", "/account/sign-out-everywhere"), ("POST", "/not-you")}
TOKEN_PAGE = {"anonymous": "/login", "carol_unconfirmed": "/confirm-email"}
SAMPLE_ARGUMENTS = {"<token>": "A" * 43, "<version>": "5.9.0", "<path:filename>": "css/app.css"}


def path_for(rule: str) -> str:
    for argument, value in SAMPLE_ARGUMENTS.items():
        rule = rule.replace(argument, value)
    return rule


def answer(client, name: str, method: str, rule: str) -> int:
    if method == "GET":
        return client.get(path_for(rule)).status_code
    token = csrf_from(client.get(TOKEN_PAGE.get(name, "/verify")).get_data(as_text=True))
    return client.post(path_for(rule), headers={"X-CSRFToken": token}).status_code


def test_every_route_has_a_row(app):
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    }
    assert routes == set(MATRIX)


def test_route_actor_matrix(app, actors, emulator):
    with app.app_context():
        before = {i.persona_id: i.tokens_minted for i in db.session.scalars(select(Inquiry))}
    routes = [route for route in MATRIX if route not in ENDS_OTHER_SESSIONS]
    outcome = {route: [0] * len(ACTORS) for route in routes}
    for column, name in enumerate(ACTORS):  # one actor at a time: /logout, last, ends only their own session
        for method, rule in routes:
            outcome[(method, rule)][column] = answer(actors[name], name, method, rule)
    assert {route: tuple(codes) for route, codes in outcome.items()} == {route: MATRIX[route] for route in routes}
    with app.app_context():
        after = {i.persona_id: i.tokens_minted for i in db.session.scalars(select(Inquiry))}
    # Each token refresh touched only the caller's own inquiry: one mint each for alice and bob
    # (alice twice: her own session and the one from the link), never anyone else's; none for
    # carol, whose address is not confirmed.
    assert sorted(after[k] - before[k] for k in after) == [0, 1, 2]


@pytest.mark.parametrize("route", sorted(ENDS_OTHER_SESSIONS))
@pytest.mark.parametrize("column, name", list(enumerate(ACTORS)))
def test_routes_that_end_other_sessions(actors, route, column, name):
    method, rule = route
    assert answer(actors[name], name, method, rule) == MATRIX[route][column]
