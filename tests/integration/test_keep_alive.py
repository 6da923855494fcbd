"""/verify/keep-alive: the page script's "still here" counts as activity for the idle limit."""

from __future__ import annotations

from tests.pages import csrf_from


def keep_alive(client):
    """What the page script sends: a POST with the page's CSRF token (read from /verify once)."""
    if "csrf" not in vars(client):
        vars(client)["csrf"] = csrf_from(client.get("/verify").get_data(as_text=True))
    return client.post("/verify/keep-alive", headers={"X-CSRFToken": vars(client)["csrf"]})


def test_keep_alive_extends_an_idle_sign_in_and_says_for_how_long(app, client, pending_user, server_clock):
    idle = app.config["LOGIN_SESSION_IDLE_SECONDS"]
    keep_alive(client)
    for _ in range(3):  # three times most of the idle limit: alive only because each call counts
        server_clock.move(idle * 0.8 / 60)
        answer = keep_alive(client)
        assert answer.status_code == 200
        assert idle - 5 <= answer.get_json()["expiresInSeconds"] <= idle


def test_after_the_idle_limit_the_answer_is_a_json_401(app, client, pending_user, server_clock):
    keep_alive(client)
    server_clock.move(app.config["LOGIN_SESSION_IDLE_SECONDS"] / 60 + 1)
    answer = keep_alive(client)
    assert answer.status_code == 401
    assert answer.get_json()["error"]["status"] == 401


def test_the_answer_never_outlasts_the_absolute_limit(app, client, pending_user, server_clock):
    absolute, idle = app.config["LOGIN_SESSION_ABSOLUTE_SECONDS"], app.config["LOGIN_SESSION_IDLE_SECONDS"]
    keep_alive(client)
    while server_clock.offset.total_seconds() < absolute - idle / 2:
        server_clock.move(idle / 2 / 60)
        assert keep_alive(client).status_code == 200
    left = keep_alive(client).get_json()["expiresInSeconds"]
    assert left <= absolute - server_clock.offset.total_seconds() + 5
    assert left < idle
