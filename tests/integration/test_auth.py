"""Accounts: sign-up, sign-in, sign-out that really ends the session, CSRF, safe redirects."""

from __future__ import annotations

import pytest

from tests.builders import PASSWORD, make_user
from tests.pages import csrf_from, sign_in

pytestmark = pytest.mark.postgres_too


def test_sign_up_asks_to_confirm_the_address(client):
    page = client.get("/signup")
    response = client.post(
        "/signup",
        data={
            "email": "New.Person@Example.test",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )
    assert response.status_code == 200 and b"Check your email" in response.data
    assert "n•••@example.test" in response.get_data(as_text=True)
    sign_in(client, "NEW.person@example.TEST")  # stored in one form: any case signs in
    assert client.get("/verify").headers["Location"] == "/confirm-email"


def test_sign_up_refuses_short_and_common_passwords(app, client):
    token = csrf_from(client.get("/signup").get_data(as_text=True))
    short = client.post(
        "/signup", data={"email": "x@example.test", "password": "short", "confirm": "short", "csrf_token": token}
    )
    assert short.status_code == 200 and b"at least 10" in short.data.replace(b"\n", b" ").lower()
    for common in ("1234567890", "QWERTYUIOP", "1q2w3e4r5t"):
        answer = client.post(
            "/signup", data={"email": "x@example.test", "password": common, "confirm": common, "csrf_token": token}
        )
        assert answer.status_code == 200 and b"most common" in answer.data, common


def test_wrong_password_and_unknown_email_get_the_same_answer(app, client):
    make_user(app)
    wrong = sign_in(client, password="not the password")
    unknown = sign_in(client, email="nobody@example.test")
    assert wrong.status_code == unknown.status_code == 200
    assert b"Email or password is incorrect." in wrong.data
    assert b"Email or password is incorrect." in unknown.data


def test_login_needs_csrf(app, client):
    make_user(app)
    response = client.post("/login", data={"email": "ada@example.test", "password": PASSWORD})
    assert response.status_code == 400
    assert b"This form has expired" in response.data


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/verify", "/verify"),
        ("https://evil.example/x", "/verify"),
        ("//evil.example", "/verify"),
        ("/\\evil.example", "/verify"),
    ],
)
def test_next_is_followed_only_on_this_site(app, client, target, expected):
    make_user(app)
    page = client.get("/login", query_string={"next": target})
    response = client.post(
        "/login",
        data={
            "email": "ada@example.test",
            "password": PASSWORD,
            "next": target,
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )
    assert response.headers["Location"] == expected


def test_sign_out_kills_the_old_cookie(app, client, emulator):
    make_user(app)
    sign_in(client)
    assert client.get("/verify").status_code == 200
    old_cookie = client.get_cookie("session").value
    token = csrf_from(client.get("/").get_data(as_text=True))
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    emulator.clear_requests()
    client.set_cookie("session", old_cookie)  # replay the pre-logout cookie
    replay = client.get("/verify")
    assert replay.status_code == 302 and replay.headers["Location"].startswith("/login")
    assert emulator.requests() == []


def test_session_cookie_changes_at_sign_in(app, client):
    make_user(app)
    client.get("/login")
    before = client.get_cookie("session").value
    sign_in(client)
    assert client.get_cookie("session").value != before


def test_disabled_account_is_signed_out(app, client, emulator):
    from webapp.extensions import db
    from webapp.models import User

    make_user(app)
    sign_in(client)
    with app.app_context():
        db.session.query(User).update({"active": False})
        db.session.commit()
    emulator.clear_requests()
    assert client.get("/verify").status_code == 302
    assert emulator.requests() == []


def test_idle_login_session_expires(app, client, monkeypatch):
    from datetime import timedelta

    from webapp import clock

    make_user(app)
    sign_in(client)
    later = clock.utcnow() + timedelta(seconds=app.config["LOGIN_SESSION_IDLE_SECONDS"] + 1)
    monkeypatch.setattr(clock, "frozen_at", later)
    assert client.get("/verify").status_code == 302


def test_sign_in_is_rate_limited(make_app):
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    answers = [sign_in(client, password="wrong password!").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]


def test_anonymous_json_calls_get_401_and_pages_redirect(client, emulator):
    assert client.get("/verify").status_code == 302
    no_csrf = client.post("/verify/session-token")
    assert no_csrf.status_code == 400 and no_csrf.is_json
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/verify/session-token", headers={"X-CSRFToken": token})
    assert response.status_code == 401 and response.is_json
    assert b"inq_" not in response.data
    assert emulator.requests() == []
