"""Sign out everywhere: every login session ends, every emailed link dies, nothing else changes."""

from __future__ import annotations

import pytest

from tests.builders import PASSWORD, give_inquiry, make_user, new_link
from tests.pages import csrf_from, open_link, redeem, sign_in

pytestmark = pytest.mark.postgres_too


def signed_in_browsers(app, count: int) -> list:
    browsers = [app.test_client() for _ in range(count)]
    for browser in browsers:
        sign_in(browser)
        assert browser.get("/verify").status_code == 200
    return browsers


def test_account_page_lists_where_the_person_is_signed_in(app, person):
    laptop, phone = signed_in_browsers(app, 2)
    redeem(tablet := app.test_client(), open_link(tablet, new_link(app, person)))
    page = laptop.get("/account").get_data(as_text=True)
    assert "ada@example.test" in page
    assert page.count("This browser") == 1
    assert page.count("Signed in with your password") == 1
    assert page.count("Opened from an email link") == 1
    assert "Sign out on all devices" in page


def test_sign_out_everywhere_ends_every_session_and_kills_links(app, person, emulator):
    laptop, phone = signed_in_browsers(app, 2)
    redeem(tablet := app.test_client(), open_link(tablet, new_link(app, person)))
    assert tablet.get("/verify").status_code == 200
    unused_link = new_link(app, person)
    replayed_cookie = laptop.get_cookie("session").value

    token = csrf_from(laptop.get("/account").get_data(as_text=True))
    answer = laptop.post("/account/sign-out-everywhere", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["Location"] == "/login"
    assert answer.headers["Clear-Site-Data"] == '"cache", "storage"'
    assert "every device" in laptop.get("/login").get_data(as_text=True)

    emulator.clear_requests()
    for browser in (laptop, phone, tablet):
        assert browser.get("/verify").headers["Location"].startswith("/login")
    laptop.set_cookie("session", replayed_cookie)
    assert laptop.get("/verify").headers["Location"].startswith("/login")
    assert emulator.requests() == []  # nobody reached Persona on a dead session
    assert open_link(app.test_client(), unused_link).status_code == 404

    fresh = app.test_client()  # the person can simply sign in again and carry on
    sign_in(fresh)
    assert fresh.get("/verify").status_code == 200


def test_it_needs_the_csrf_token_and_a_post(app, person):
    laptop, phone = signed_in_browsers(app, 2)
    assert laptop.post("/account/sign-out-everywhere").status_code == 400
    assert laptop.get("/account/sign-out-everywhere").status_code == 405
    assert phone.get("/verify").status_code == 200  # nothing was ended


def test_it_leaves_other_people_alone(app, person, emulator):
    other = make_user(app, "carol@example.test")
    give_inquiry(app, emulator, other, "pending")
    carol = app.test_client()
    sign_in(carol, "carol@example.test")
    carol_link = new_link(app, other)
    (ada,) = signed_in_browsers(app, 1)
    ada.post("/account/sign-out-everywhere", data={"csrf_token": csrf_from(ada.get("/account").get_data(as_text=True))})
    assert carol.get("/verify").status_code == 200
    assert open_link(app.test_client(), carol_link).status_code == 200


def test_an_email_link_session_cannot_reach_the_account_page(app, person):
    tablet = app.test_client()
    redeem(tablet, open_link(tablet, new_link(app, person)))
    assert tablet.get("/account").headers["Location"] == "/verify"
    assert "Account</a>" not in tablet.get("/verify").get_data(as_text=True)
    token = csrf_from(tablet.get("/verify").get_data(as_text=True))
    assert tablet.post("/account/sign-out-everywhere", data={"csrf_token": token}).headers["Location"] == "/verify"
    assert tablet.get("/verify").status_code == 200  # a link session is not an account session


def test_signed_out_visitors_are_sent_to_sign_in(client):
    assert client.get("/account").headers["Location"].startswith("/login?next=/account")


def test_support_commands_sign_out_disable_enable(app, runner, person):
    (laptop,) = signed_in_browsers(app, 1)
    link = new_link(app, person)
    result = runner.invoke(args=["accounts", "sign-out", "ada@example.test"])
    assert result.exit_code == 0 and "1 session(s) ended, 1 link(s) cancelled" in result.output
    assert laptop.get("/verify").headers["Location"].startswith("/login")
    assert open_link(app.test_client(), link).status_code == 404

    assert runner.invoke(args=["accounts", "disable", "ada@example.test"]).exit_code == 0
    assert b"Email or password is incorrect." in sign_in(app.test_client()).data
    assert runner.invoke(args=["accounts", "enable", "ada@example.test"]).exit_code == 0
    assert sign_in(app.test_client()).status_code == 303
    assert runner.invoke(args=["accounts", "disable", "nobody@example.test"]).exit_code != 0


# -- changing the password -------------------------------------------------------------------
def change_password(browser, current: str, new: str, repeat: str | None = None):
    token = csrf_from(browser.get("/account").get_data(as_text=True))
    return browser.post(
        "/account/password",
        data={
            "current_password": current,
            "password": new,
            "confirm": new if repeat is None else repeat,
            "csrf_token": token,
        },
    )


def test_a_password_change_signs_out_every_other_device_but_this_one(app, person):
    laptop, phone = signed_in_browsers(app, 2)
    link = new_link(app, person)
    answer = change_password(laptop, PASSWORD, "a brand new password")
    assert answer.status_code == 303 and answer.headers["Location"] == "/account"
    page = laptop.get("/account").get_data(as_text=True)
    assert "Your password is changed" in page and page.count("Signed in with your password") == 0
    assert laptop.get("/verify").status_code == 200
    assert phone.get("/verify").headers["Location"].startswith("/login")
    assert open_link(app.test_client(), link).status_code == 404
    assert b"Email or password is incorrect." in sign_in(app.test_client()).data
    assert sign_in(app.test_client(), password="a brand new password").status_code == 303


@pytest.mark.parametrize(
    ("current", "new", "repeat", "message"),
    [
        ("not my password", "a brand new password", None, "That is not your current password."),
        (PASSWORD, "short", None, "at least 10"),
        (PASSWORD, "a brand new password", "another new password", "The passwords do not match."),
    ],
)
def test_a_refused_password_change_changes_nothing(app, person, current, new, repeat, message):
    laptop, phone = signed_in_browsers(app, 2)
    answer = change_password(laptop, current, new, repeat)
    assert answer.status_code == 200 and message in answer.get_data(as_text=True).replace("\n", " ")
    assert phone.get("/verify").status_code == 200
    assert sign_in(app.test_client()).status_code == 303


def test_password_changes_are_rate_limited(make_app, emulator):
    app = make_app(LOGIN_RATE_LIMIT="2 per minute")
    make_user(app)
    (laptop,) = signed_in_browsers(app, 1)
    codes = [change_password(laptop, "wrong guess", "a brand new password").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


# -- Persona's sessions end too (#12, app item 9) ----------------------------------------------
def persona_sessions(emulator, inquiry_id: str) -> list[str]:
    """The statuses of the inquiry's sessions, as Persona's Inquiry Sessions API lists them."""
    answer = emulator.call("GET", "/inquiry-sessions", params={"filter[inquiry-id]": inquiry_id})
    assert answer.status_code == 200, answer.text
    return [session["attributes"]["status"] for session in answer.json()["data"]]


def end_due(app, inquiry_id: str):
    from webapp.extensions import db
    from webapp.models import Inquiry

    with app.app_context():
        return db.session.query(Inquiry).filter_by(persona_id=inquiry_id).one().persona_sessions_end_due_at


def test_signing_out_everywhere_ends_the_sessions_persona_opened(app, emulator, pending_user):
    laptop, phone = signed_in_browsers(app, 2)
    assert persona_sessions(emulator, pending_user) == ["active"]  # both pages share one unused session
    emulator.clear_requests()
    laptop.post(
        "/account/sign-out-everywhere", data={"csrf_token": csrf_from(laptop.get("/account").get_data(as_text=True))}
    )
    assert [r["path"] for r in emulator.requests()] == ["/api/v1/inquiry-sessions/expire-all"]
    assert persona_sessions(emulator, pending_user) == ["expired"]
    assert end_due(app, pending_user) is None


def test_a_password_change_ends_them_and_this_browser_gets_a_new_one(app, emulator, pending_user):
    laptop, phone = signed_in_browsers(app, 2)
    assert change_password(laptop, PASSWORD, "a brand new password").status_code == 303
    assert persona_sessions(emulator, pending_user) == ["expired"]
    assert laptop.get("/verify").status_code == 200
    assert sorted(persona_sessions(emulator, pending_user)) == ["active", "expired"]


def test_disabling_an_account_ends_them(app, runner, emulator, pending_user):
    signed_in_browsers(app, 1)
    assert runner.invoke(args=["accounts", "disable", "ada@example.test"]).exit_code == 0
    assert persona_sessions(emulator, pending_user) == ["expired"]


def test_finished_inquiries_cost_no_call(app, emulator):
    user = make_user(app)
    give_inquiry(app, emulator, user, "pending", "completed")
    browser = app.test_client()
    sign_in(browser)
    browser.post(
        "/account/sign-out-everywhere", data={"csrf_token": csrf_from(browser.get("/account").get_data(as_text=True))}
    )
    assert emulator.requests() == []


def test_persona_away_leaves_the_mark_for_the_sweep(app, emulator, pending_user, server_clock):
    laptop, phone = signed_in_browsers(app, 2)
    emulator.fault(path=r"/expire-all$", action="status", status=503)
    answer = laptop.post(
        "/account/sign-out-everywhere", data={"csrf_token": csrf_from(laptop.get("/account").get_data(as_text=True))}
    )
    assert answer.status_code == 303  # the person is signed out whatever Persona does
    assert persona_sessions(emulator, pending_user) == ["active"]
    assert end_due(app, pending_user) is not None

    emulator.clear_faults()
    with app.app_context():
        from webapp.persona_sessions import sweep

        assert sweep() == 0  # not stale yet: its own task may still be on the way
        server_clock.move(app.config["OUTBOX_STALE_SECONDS"] / 60 + 1)
        assert sweep() == 1
    assert persona_sessions(emulator, pending_user) == ["expired"]
    assert end_due(app, pending_user) is None
