"""Route x actor matrix: every route and method, for every kind of visitor, matches this table."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.pages import csrf_from
from webapp.extensions import db
from webapp.models import Inquiry

pytestmark = pytest.mark.postgres_too

ROUTES = [
    ("GET", "/"),
    ("GET", "/verify"),
    ("POST", "/verify/session-token"),
    ("POST", "/verify/complete"),
    ("POST", "/verify/restart"),
    ("POST", "/verify/email-link"),
    ("GET", "/recovery/resend"),
    ("GET", "/login"),
    ("GET", "/signup"),
    ("GET", "/r"),
    ("GET", "/confirm-email"),
    ("POST", "/confirm-email"),
    ("POST", "/resend-confirmation"),
    ("GET", "/password/forgot"),
    ("GET", "/password/reset"),
    ("POST", "/logout"),
]
# The checked-in expectation: status code per actor, in ROUTES order.
EXPECTED = {
    "anonymous": [200, 302, 401, 401, 302, 302, 200, 200, 200, 404, 302, 303, 303, 200, 404, 302],
    "alice": [200, 200, 200, 200, 409, 303, 200, 200, 200, 404, 302, 404, 303, 200, 404, 303],
    "bob": [200, 200, 200, 200, 409, 303, 200, 200, 200, 404, 302, 404, 303, 200, 404, 303],
    "alice_from_link": [302, 200, 200, 200, 409, 303, 302, 302, 302, 404, 302, 302, 302, 302, 302, 303],
    # Signed in, address not confirmed: only the way to confirm it (every other page sends
    # her to /confirm-email), no Persona call, nothing mailed but the confirmation link.
    "carol_unconfirmed": [200, 302, 302, 302, 302, 302, 302, 200, 302, 302, 200, 404, 303, 302, 302, 303],
}
TOKEN_PAGE = {"anonymous": "/login", "carol_unconfirmed": "/confirm-email"}


def test_route_actor_matrix(app, actors, emulator):
    with app.app_context():
        before = {i.persona_id: i.tokens_minted for i in db.session.scalars(select(Inquiry))}
    outcome = {}
    for name, client in actors.items():
        token = csrf_from(client.get(TOKEN_PAGE.get(name, "/verify")).get_data(as_text=True))
        row = []
        for method, path in ROUTES:
            if method == "GET":
                response = client.get(path)
            else:
                response = client.post(path, headers={"X-CSRFToken": token})
            row.append(response.status_code)
        outcome[name] = row
    assert outcome == EXPECTED
    with app.app_context():
        after = {i.persona_id: i.tokens_minted for i in db.session.scalars(select(Inquiry))}
    # Each token refresh touched only the caller's own inquiry: one mint each for alice and bob
    # (alice twice: her own session and the one from the link), never anyone else's; none for
    # carol, whose address is not confirmed.
    assert sorted(after[k] - before[k] for k in after) == [0, 1, 2]


@pytest.mark.parametrize("name", ["anonymous", "alice", "alice_from_link", "carol_unconfirmed"])
def test_not_you_signs_every_actor_out_and_explains(actors, name):
    client = actors[name]
    token = csrf_from(client.get(TOKEN_PAGE.get(name, "/verify")).get_data(as_text=True))
    answer = client.post("/not-you", headers={"X-CSRFToken": token})
    assert answer.status_code == 200 and "You're signed out" in answer.get_data(as_text=True)
    assert client.get("/verify").status_code == 302
    assert client.post("/not-you").status_code == 400  # and it needs its CSRF token
