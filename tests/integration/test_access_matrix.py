"""Route x actor matrix: every route and method, for every kind of visitor, matches this table."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, make_user, sign_in
from tests.integration.test_recovery import new_link, open_link, redeem
from tests.integration.test_verify import give_inquiry
from webapp.extensions import db
from webapp.models import Inquiry

pytestmark = pytest.mark.postgres_too

ROUTES = [
    ("GET", "/"),
    ("GET", "/verify"),
    ("POST", "/verify/session-token"),
    ("POST", "/verify/complete"),
    ("POST", "/verify/restart"),
    ("POST", "/verify/keep-alive"),
    ("GET", "/verify/received"),
    ("POST", "/verify/email-link"),
    ("GET", "/recovery/resend"),
    ("GET", "/login"),
    ("GET", "/signup"),
    ("GET", "/r"),
    ("POST", "/logout"),
]
# The checked-in expectation: status code per actor, in ROUTES order.
EXPECTED = {
    "anonymous": [200, 302, 401, 401, 302, 401, 200, 302, 200, 200, 200, 404, 302],
    "alice": [200, 200, 200, 200, 409, 200, 200, 303, 200, 200, 200, 404, 303],
    "bob": [200, 200, 200, 200, 409, 200, 200, 303, 200, 200, 200, 404, 303],
    "alice_from_link": [302, 200, 200, 200, 409, 200, 200, 303, 302, 302, 302, 404, 303],
}


@pytest.fixture
def actors(app, emulator):
    alice, bob = make_user(app, "alice@example.test"), make_user(app, "bob@example.test")
    give_inquiry(app, emulator, alice, "pending")
    give_inquiry(app, emulator, bob, "pending")
    clients = {name: app.test_client() for name in EXPECTED}
    sign_in(clients["alice"], "alice@example.test")
    sign_in(clients["bob"], "bob@example.test")
    link_client = clients["alice_from_link"]
    assert redeem(link_client, open_link(link_client, new_link(app, alice))).status_code == 303
    for client in clients.values():
        client.get("/verify")  # each signed-in actor's page view mints their own token once
    return clients


def test_route_actor_matrix(app, actors, emulator):
    with app.app_context():
        before = {i.persona_id: i.tokens_minted for i in db.session.scalars(select(Inquiry))}
    outcome = {}
    for name, client in actors.items():
        token = csrf_from(client.get("/login" if name == "anonymous" else "/verify").get_data(as_text=True))
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
    # (alice twice: her own session and the one from the link), never anyone else's.
    assert sorted(after[k] - before[k] for k in after) == [1, 2]
