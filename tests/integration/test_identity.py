"""Whose identity is verified: strict addresses, confirmed addresses, the account on every page,
"Not you?", forgot password (issue #9, part 1)."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, insert, select

from tests.builders import PASSWORD, give_inquiry, make_user, new_link
from tests.mailbox import outbox, text_of
from tests.pages import csrf_from, open_link, resend, sign_in, state_of
from webapp import accounts, recovery
from webapp.extensions import db
from webapp.models import LoginSession, RecoveryLink, User, utcnow

pytestmark = pytest.mark.postgres_too

LINK = re.compile(r"https?://[^\s\"<>]+/(?:confirm-email|password/reset|r)/[A-Za-z0-9_-]{43}")
# Forms that are not a plain local@domain. Each one, before #9, became an account (or a
# lookup) of its own; the first is the one SMTP delivered to the victim.
REFUSED_ADDRESSES = [
    "0<victim@target.example>",
    "Victim <victim@target.example>",
    "victim(comment)@target.example",
    '"victim"@target.example',
    "victim@[127.0.0.1]",
    "a@[x.co",
    "@route.example:victim@target.example",
    "victim@target.example\r\nBcc: x@y.example",
    "vic\ttim@target.example",
    "victim@target.example,other@target.example",
    "vïctim@target.example",
]


def mails(app) -> list:
    return outbox(app.config["MAIL_OUTBOX_DIR"])


def links_in(message) -> list[str]:
    return LINK.findall(text_of(message))


def sign_up(client, email: str, password: str = PASSWORD):
    page = client.get("/signup")
    return client.post(
        "/signup",
        data={"email": email, "password": password, "confirm": password, "csrf_token": csrf_from(page.text)},
    )


def count_users(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(User.id))) or 0


def follow(client, url: str, landing: str):
    first = client.get(urlsplit(url).path)
    assert first.status_code == 303 and first.headers["Location"] == landing
    return client.get(landing)


def post_form(client, path: str, page, **data):
    return client.post(path, data={"csrf_token": csrf_from(page.text), **data})


# -- strict addresses --------------------------------------------------------------------------
@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_odd_addresses_are_refused_everywhere_they_enter(app, client, runner, address):
    signup = sign_up(client, address)
    assert signup.status_code == 200 and "Enter an email address like name@example.com" in signup.text
    login = sign_in(client, address)
    assert login.status_code == 200 and "Enter an email address like name@example.com" in login.text
    assert resend(client, address).status_code == 200
    assert runner.invoke(args=["recovery", "send", address]).exit_code != 0
    assert count_users(app) == 0 and mails(app) == []


def test_one_normal_form_for_each_mailbox(app, client):
    make_user(app, "Ada.Lovelace@EXAMPLE.test")
    with app.app_context():
        assert db.session.scalar(select(User.email)) == "ada.lovelace@example.test"
    assert sign_in(client, "ADA.LOVELACE@example.TEST").status_code == 303
    with pytest.raises(accounts.EmailTakenError), app.app_context():
        accounts.create_user("ada.lovelace@example.test", PASSWORD)


def test_international_domains_are_stored_in_ascii(app):
    make_user(app, "ada@bücher.example")
    with app.app_context():
        assert db.session.scalar(select(User.email)) == "ada@xn--bcher-kva.example"


def test_test_domains_are_refused_in_production(make_app):
    app = make_app(EMAIL_ALLOW_TEST_DOMAINS=False)
    with app.app_context(), pytest.raises(ValueError):
        accounts.create_user("ada@example.test", PASSWORD)


def test_mail_goes_to_exactly_the_stored_address_and_never_to_an_odd_old_one(make_app, emulator, smtp_sink):
    port, sink = smtp_sink
    app = make_app(MAIL_SMTP_HOST="127.0.0.1", MAIL_SMTP_PORT=port, MAIL_SMTP_STARTTLS=False)
    ada = make_user(app)
    give_inquiry(app, emulator, ada, "pending")
    with app.app_context():
        # A row from before the strict rule: SMTP would parse this To: and deliver to the victim.
        db.session.execute(
            insert(User).values(
                public_id="usr_legacy",
                email="0<victim@target.example>",
                password_hash="x",
                active=True,
                reminders_opt_out=False,
                created_at=utcnow(),
                email_confirmed_at=utcnow(),
            )
        )
        db.session.commit()
        assert recovery.send_link_to_user(db.session.get(User, ada.id))
        legacy = db.session.scalar(select(User).where(User.public_id == "usr_legacy"))
        with pytest.raises(recovery.MailError):
            recovery.send_link_to_user(legacy)
    assert sink.recipients == [["ada@example.test"]]


# -- confirming the address ----------------------------------------------------------------------
def test_sign_up_confirm_then_verify(app, client, emulator):
    assert sign_up(client, "new@example.test").status_code == 200
    [message] = mails(app)
    assert message["To"] == "new@example.test" and message["Subject"] == "Confirm your email address"
    [link] = links_in(message)
    assert "/confirm-email/" in link
    # Opened on another device: it asks for the account's password first, and uses nothing.
    phone = app.test_client()
    page = follow(phone, link, "/confirm-email")
    assert page.status_code == 200 and "Sign in to confirm" in page.text and "n•••@example.test" in page.text
    assert sign_in(phone, "new@example.test").headers["Location"] == "/verify"
    confirm = phone.get("/confirm-email")
    assert "Confirm my email" in confirm.text
    done = post_form(phone, "/confirm-email", confirm)
    assert done.status_code == 303 and done.headers["Location"] == "/verify"
    assert state_of(phone.get("/verify")) == "continue"
    # Single use.
    again = app.test_client()
    assert follow(again, link, "/confirm-email").status_code == 404


def test_pressing_confirm_again_after_a_lost_answer_says_it_is_confirmed(app, client, emulator):
    sign_up(client, "new@example.test")
    [link] = links_in(mails(app)[0])
    client = app.test_client()
    follow(client, link, "/confirm-email")
    sign_in(client, "new@example.test")
    confirm = client.get("/confirm-email")
    before = client.get_cookie("session").value  # the cookie the browser keeps if the answer is lost
    assert post_form(client, "/confirm-email", confirm).headers["Location"] == "/verify"
    client.set_cookie("session", before)
    again = post_form(client, "/confirm-email", confirm)  # the retry: the link is used by now
    assert again.status_code == 303 and again.headers["Location"] == "/verify"
    assert state_of(client.get("/verify")) == "continue"


def test_an_unconfirmed_account_sees_only_the_confirm_page_and_gets_no_mail(app, client, runner, emulator):
    user = make_user(app, confirmed=False)
    give_inquiry(app, emulator, user, "pending")
    assert sign_in(client).status_code == 303
    page = client.get("/verify")
    assert page.status_code == 302 and page.headers["Location"] == "/confirm-email"
    confirm_page = client.get("/confirm-email")
    assert "Confirm your email address" in confirm_page.text and "a•••@example.test" in confirm_page.text
    token = csrf_from(confirm_page.text)
    for path in ("/verify/email-link", "/verify/session-token", "/verify/complete", "/verify/restart"):
        assert client.post(path, data={"csrf_token": token}).headers["Location"] == "/confirm-email"
    assert resend(app.test_client(), "ada@example.test").status_code == 200
    assert runner.invoke(args=["recovery", "send", "ada@example.test"]).exit_code != 0
    assert "not confirmed" in runner.invoke(args=["recovery", "link", "ada@example.test"]).output
    with app.app_context():
        inquiry = db.session.get(User, user.id).inquiries[0]
        inquiry.expires_at = utcnow() + timedelta(hours=2)
        inquiry.last_activity_at = utcnow() - timedelta(days=1)
        db.session.commit()
    assert "0 due" in runner.invoke(args=["reminders", "send"]).output
    assert mails(app) == []
    assert emulator.requests() == []
    # The one thing it may ask for: the confirmation link again.
    assert client.post("/resend-confirmation", data={"csrf_token": token}).status_code == 303
    assert [m["Subject"] for m in mails(app)] == ["Confirm your email address"]


def test_someone_elses_confirmation_link_confirms_nothing(app, emulator):
    attacker = app.test_client()
    sign_up(attacker, "victim@example.test")
    [link] = links_in(mails(app)[0])
    # The victim, signed in to their own (other) account, clicks it: refused, nothing confirmed.
    make_user(app, "someone@example.test")
    victim = app.test_client()
    sign_in(victim, "someone@example.test")
    assert follow(victim, link, "/confirm-email").status_code == 403
    # Or signed out: it asks for the account's password, which the victim doesn't have.
    assert "Sign in to confirm" in follow(app.test_client(), link, "/confirm-email").text
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "victim@example.test")).email_confirmed_at is None


def test_a_second_sign_up_with_the_same_address_reveals_nothing(app):
    first, second = sign_up(app.test_client(), "ada@example.test"), sign_up(app.test_client(), "ada@example.test")
    strip = re.compile(r'(nonce|value)="[^"]*"')
    assert first.status_code == second.status_code == 200
    assert strip.sub("", first.text) == strip.sub("", second.text)
    assert count_users(app) == 1
    confirmation, notice = mails(app)
    assert notice["Subject"] == "You already have an account" and notice["To"] == "ada@example.test"
    assert links_in(notice) == []  # no link that signs anyone in or confirms anything
    assert len(links_in(confirmation)) == 1


def test_mail_is_capped_per_mailbox_across_look_alike_accounts(app):
    for n in range(6):
        sign_up(app.test_client(), f"victim+{n}@example.test")
    assert count_users(app) == 6
    assert len(mails(app)) == app.config["MAIL_PER_ADDRESS_PER_HOUR"] == 3


def test_demo_users_are_confirmed(app):
    make_user(app, "new@demo.test", confirmed=False)
    with app.app_context():
        accounts.confirm_email(db.session.scalar(select(User)))
        assert db.session.scalar(select(User)).email_confirmed


# -- the account on every page, and "Not you?" -----------------------------------------------
@pytest.mark.parametrize("walk", [("pending",), ("pending", "completed", "approved"), ("pending", "failed")])
def test_verify_and_status_pages_name_the_account(app, client, emulator, walk):
    user = make_user(app)
    give_inquiry(app, emulator, user, *walk)
    sign_in(client)
    page = client.get("/verify")
    assert page.status_code == 200
    assert "a•••@example.test" in page.text and "Not you?" in page.text and "ada@example.test" not in page.text


def test_the_unavailable_page_names_the_account(app, client, emulator):
    user = make_user(app)
    give_inquiry(app, emulator, user, "pending")
    sign_in(client)
    emulator.fault(method="POST", path="/resume", action="status", status=503)
    page = client.get("/verify")
    assert page.status_code == 503 and "a•••@example.test" in page.text and "Not you?" in page.text


def test_recovery_landing_names_the_account_and_not_you_signs_out_and_explains(app, person):
    client = app.test_client()
    landing = open_link(client, new_link(app, person))
    assert "This link is for" in landing.text and "a•••@example.test" in landing.text
    answer = post_form(client, "/not-you", landing)
    assert answer.status_code == 200 and "isn't yours" in answer.text
    assert client.get("/r").status_code == 404  # the link is forgotten by this browser
    # Signed in: "Not you?" ends the server-side session too.
    sign_in(client)
    answer = post_form(client, "/not-you", client.get("/verify"))
    assert "You're signed out" in answer.text
    assert client.get("/verify").status_code == 302
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(LoginSession.revoked_at.is_(None))) == 0


# -- forgot password ----------------------------------------------------------------------------
def ask_for_reset(client, address: str):
    page = client.get("/password/forgot")
    return post_form(client, "/password/forgot", page, email=address)


def test_forgot_password_end_to_end(app, person):
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop)
    assert "Forgot your password?" in app.test_client().get("/login").text
    asked = ask_for_reset(app.test_client(), "ada@example.test")
    unknown = ask_for_reset(app.test_client(), "nobody@example.test")
    strip = re.compile(r'(nonce|value)="[^"]*"')
    assert strip.sub("", asked.text) == strip.sub("", unknown.text)
    [message] = mails(app)
    [link] = links_in(message)
    assert message["Subject"] == "Reset your password" and "/password/reset/" in link
    form = follow(phone, link, "/password/reset")
    assert "a•••@example.test" in form.text
    common = post_form(phone, "/password/reset", form, password="1234567890", confirm="1234567890")
    assert "most common" in common.text
    done = post_form(
        phone, "/password/reset", form, password="a brand new passphrase", confirm="a brand new passphrase"
    )
    assert done.status_code == 303 and done.headers["Location"] == "/login"
    assert laptop.get("/verify").status_code == 302  # every other session ended
    assert sign_in(phone, password=PASSWORD).status_code == 200  # the old password is gone
    assert sign_in(phone, password="a brand new passphrase").status_code == 303
    assert follow(app.test_client(), link, "/password/reset").status_code == 404  # single use


def test_reset_links_are_short_lived_and_only_for_resetting(app, person):
    with app.app_context():
        user = db.session.get(User, person.id)
        reset = recovery.issue_link(user, None, "reset_password")
        row = db.session.scalar(select(RecoveryLink).where(RecoveryLink.purpose == "reset_password"))
        lifetime = row.expires_at - row.created_at
        assert abs(lifetime - timedelta(seconds=app.config["PASSWORD_RESET_LINK_TTL_SECONDS"])) < timedelta(seconds=1)
        assert app.config["PASSWORD_RESET_LINK_TTL_SECONDS"] <= 3600
    # A reset token is not a continue link, nor the other way round.
    token = urlsplit(reset).path.rsplit("/", 1)[1]
    client = app.test_client()
    client.get(f"/r/{token}")
    assert client.get("/r").status_code == 404
    continue_token = urlsplit(new_link(app, person)).path.rsplit("/", 1)[1]
    assert follow(client, f"/password/reset/{continue_token}", "/password/reset").status_code == 404


def test_a_reset_confirms_an_unconfirmed_address(app):
    make_user(app, confirmed=False)
    ask_for_reset(app.test_client(), "ada@example.test")
    [link] = links_in(mails(app)[0])
    client = app.test_client()
    form = follow(client, link, "/password/reset")
    post_form(client, "/password/reset", form, password="a brand new passphrase", confirm="a brand new passphrase")
    with app.app_context():
        assert db.session.scalar(select(User)).email_confirmed


@pytest.mark.parametrize("path", ["/signup", "/login", "/recovery/resend", "/password/forgot"])
def test_a_nul_byte_is_a_400_not_a_database_error(app, client, path):
    page = client.get(path)
    answer = post_form(client, path, page, email="ada\x00@example.test", password=PASSWORD, confirm=PASSWORD)
    assert answer.status_code == 400
    assert client.get("/login", query_string={"next": "/verify\x00"}).status_code == 400
    assert count_users(app) == 0 and mails(app) == []
