"""The security review's other findings (issue #9, part 2): each test fails on the main of
before the fix."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import insert, select

from tests.builders import PASSWORD, give_inquiry, make_user
from tests.pages import csrf_from, sign_in, state_of
from tests.webhook_signer import WEBHOOK_SECRET, event_body, signature
from webapp import create_app, recovery
from webapp.config import ProductionConfig
from webapp.extensions import db
from webapp.models import Inquiry, LoginSession, User, WebhookEvent, utcnow
from webapp.persona import PersonaRequestError

pytestmark = pytest.mark.postgres_too
WEBHOOK = "/webhooks/persona"


def inquiry_of(app, persona_id: str) -> Inquiry:
    with app.app_context():
        inquiry = db.session.scalar(select(Inquiry).where(Inquiry.persona_id == persona_id))
        db.session.expunge(inquiry)
        return inquiry


def deliver(client, body: bytes):
    return client.post(
        WEBHOOK,
        data=body,
        headers={"Content-Type": "application/json", "Persona-Signature": signature(body, WEBHOOK_SECRET)},
    )


def post_with_page_token(client, path: str, page: str = "/verify", **kwargs):
    return client.post(path, data={"csrf_token": csrf_from(client.get(page).text)}, **kwargs)


# -- a 404 is final only after a confirming read ---------------------------------------------------
def test_one_transient_404_on_resume_does_not_lose_the_inquiry(app, client, emulator, pending_user):
    emulator.fault(method="POST", path=r"/resume$", action="status", status=404, count=1)
    first = client.get("/verify")
    assert first.status_code == 503 and state_of(first) == "unavailable"
    assert inquiry_of(app, pending_user).status == "pending"
    assert state_of(client.get("/verify")) == "continue"


def test_one_transient_404_on_a_read_does_not_lose_the_inquiry(app, client, emulator, pending_user):
    emulator.fault(method="GET", path=r"/inquiries/inq_", action="status", status=404, count=1)
    post_with_page_token(client, "/verify/complete", headers={"Accept": "application/json"})
    assert inquiry_of(app, pending_user).status == "pending"


def test_two_404s_in_a_row_mark_it_missing_and_sync_looks_again(app, client, runner, emulator, pending_user):
    emulator.fault(method="GET", path=r"/inquiries/inq_", action="status", status=404, count=2)
    post_with_page_token(client, "/verify/complete", headers={"Accept": "application/json"})
    assert inquiry_of(app, pending_user).status == "missing"
    result = runner.invoke(args=["inquiries", "sync"])
    assert f"{pending_user}: missing -> pending" in result.output
    assert state_of(client.get("/verify")) == "continue"


def test_inquiry_ids_are_opaque_to_us(app, emulator):
    persona = app.extensions["persona"]
    emulator.clear_requests()
    with pytest.raises(Exception) as caught:  # Persona's own answer: 404 for an id it doesn't know
        persona.get_inquiry("inqv2_Some-Future-Format")
    assert type(caught.value).__name__ == "PersonaNotFoundError"
    assert [r["path"] for r in emulator.requests()] == ["/api/v1/inquiries/inqv2_Some-Future-Format"]
    with pytest.raises(PersonaRequestError):  # only what would break the URL is refused locally
        persona.get_inquiry("../../inquiries")


# -- odd upstream answers end on the unavailable page, never a 500 -------------------------------
@pytest.mark.parametrize(
    "rule",
    [
        {"method": "POST", "path": r"/resume$", "status": 429, "headers": {"Retry-After": "inf"}},
        {"method": "POST", "path": r"/resume$", "status": 429, "headers": {"Retry-After": "nan"}},
        {"method": "POST", "path": r"/resume$", "status": 429, "headers": {"RateLimit-Reset": "-inf"}},
        {"method": "POST", "path": r"/resume$", "status": 400},
        {"method": "POST", "path": r"/resume$", "status": 422},
        {
            "method": "POST",
            "path": r"/resume$",
            "status": 200,
            "body": '{"data": {"type": "inquiry", "id": "inq_x", "attributes": {"status": "pending",'
            ' "expires-at": "9999-12-31T23:59:59-10:00"}}, "meta": {"session-token": "tok"}}',
        },
    ],
)
def test_odd_answers_to_resume_give_the_unavailable_page_or_the_flow(client, emulator, pending_user, rule):
    emulator.fault(action="status", **rule)
    response = client.get("/verify")
    assert response.status_code in (200, 503), response.status_code
    assert state_of(response) in ("continue", "unavailable", "waiting")  # 429: the waiting page


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_odd_answers_to_create_give_the_unavailable_page(client, emulator, signed_in, status):
    emulator.fault(method="POST", path=r"/inquiries$", action="status", status=status)
    response = client.get("/verify")
    assert response.status_code == 503 and state_of(response) == "unavailable"


@pytest.mark.parametrize("status", [400, 409, 422])
def test_odd_answers_to_a_read_give_the_unavailable_answer(client, emulator, pending_user, status):
    emulator.fault(method="GET", path=r"/inquiries/inq_", action="status", status=status)
    response = post_with_page_token(client, "/verify/complete", headers={"Accept": "application/json"})
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "unavailable"


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59-10:00", "0001-01-01T00:00:00+10:00", "99999-01-01"])
def test_dates_out_of_range_in_a_signed_webhook_are_not_a_500(app, client, inquiry_id, stamp):
    body = event_body("inquiry.completed", inquiry_id).replace(b'"status": "completed"', b'"status": "completed"')
    body = body.replace(b'"created-at": "', b'"created-at": "' + stamp.encode() + b'", "x": "', 1)
    answer = deliver(client, body)
    assert answer.status_code == 200 and answer.get_json()["message"] == "ignored: no event time"
    expiring = event_body("inquiry.expired", inquiry_id).replace(
        b'"status": "expired"', b'"status": "expired", "expires-at": "' + stamp.encode() + b'"'
    )
    assert deliver(client, expiring).status_code == 200


# -- event times and decisions ---------------------------------------------------------------------
def test_a_decision_is_not_undone_by_a_newer_non_decision_event(app, client, inquiry_id):
    now = datetime.now(UTC)
    assert deliver(client, event_body("inquiry.approved", inquiry_id, at=now - timedelta(seconds=5))).status_code == 200
    late = deliver(client, event_body("inquiry.started", inquiry_id, at=now))
    assert late.get_json()["message"] == "ignored: the inquiry was decided"
    assert inquiry_of(app, inquiry_id).status == "approved"
    # A reversal by review is still applied, and so is a redaction.
    assert deliver(client, event_body("inquiry.declined", inquiry_id, at=now + timedelta(seconds=1))).status_code == 200
    assert inquiry_of(app, inquiry_id).status == "declined"


def test_a_far_future_event_time_is_stored_but_never_applied(app, client, inquiry_id):
    future = deliver(client, event_body("inquiry.failed", inquiry_id, at=datetime.now(UTC) + timedelta(days=365)))
    assert future.status_code == 200 and future.get_json()["message"] == "ignored: event time in the future"
    assert deliver(client, event_body("inquiry.completed", inquiry_id)).get_json()["message"] == "status completed"
    assert inquiry_of(app, inquiry_id).status == "completed"


# -- webhook bodies: only what we use, purged on redaction, pruned ------------------------------
def test_webhook_bodies_keep_only_what_the_app_uses_and_are_purged_on_redaction(app, client, runner, inquiry_id):
    body = event_body("inquiry.completed", inquiry_id).replace(
        b'"status": "completed"', b'"status": "completed", "fields": {"name-first": {"value": "Ada"}}'
    )
    assert deliver(client, body).status_code == 200
    with app.app_context():
        stored = db.session.scalar(select(WebhookEvent.payload))
    assert "Ada" not in stored and "fields" not in stored and '"status": "completed"' in stored
    assert deliver(client, event_body("inquiry.redacted", inquiry_id)).status_code == 200
    with app.app_context():
        assert set(db.session.scalars(select(WebhookEvent.payload))) == {"{}"}
        db.session.execute(
            WebhookEvent.__table__.update().values(received_at=utcnow() - timedelta(days=31))  # type: ignore[attr-defined]
        )
        db.session.commit()
    assert "deleted 2 event(s)" in runner.invoke(args=["webhooks", "prune"]).output


# -- mail: per-client limit on "email me a link"; one bad address never stops a batch --------------
def test_email_me_a_link_is_limited_per_client(make_app, emulator):
    app = make_app(RECOVERY_SEND_LIMIT_PER_CLIENT="2 per hour")
    for n in range(3):
        user = make_user(app, f"p{n}@example.test")
        give_inquiry(app, emulator, user, "pending")
    answers = []
    for n in range(3):
        client = app.test_client()
        sign_in(client, f"p{n}@example.test")
        answers.append(post_with_page_token(client, "/verify/email-link").status_code)
    assert answers == [303, 303, 429]


def test_one_bad_address_never_stops_a_reminders_batch(app, runner, emulator):
    with app.app_context():
        for public_id, address in (("usr_bad", "a@[x.co"), ("usr_good", "good@example.test")):
            db.session.execute(
                insert(User).values(
                    public_id=public_id,
                    email=address,
                    password_hash="x",
                    active=True,
                    reminders_opt_out=False,
                    created_at=utcnow(),
                    email_confirmed_at=utcnow(),
                )
            )
        db.session.commit()
        users = list(db.session.scalars(select(User).order_by(User.id)))
        db.session.expunge_all()
    for user in users:
        give_inquiry(app, emulator, user, "pending")
    with app.app_context():
        for inquiry in db.session.scalars(select(Inquiry)):
            inquiry.expires_at = utcnow() + timedelta(hours=2)
            inquiry.last_activity_at = utcnow() - timedelta(days=1)
        db.session.commit()
    result = runner.invoke(args=["reminders", "send"])
    assert result.exit_code == 0, result.output
    assert "2 due, 1 sent" in result.output and "sent: " in result.output


# -- sign-in: per-account back-off, one session per browser ----------------------------------------
def sign_in_from(app, address: str, password: str, ip: str):
    client = app.test_client()
    page = client.get("/login", environ_base={"REMOTE_ADDR": ip})
    return client.post(
        "/login",
        data={"email": address, "password": password, "csrf_token": csrf_from(page.text)},
        environ_base={"REMOTE_ADDR": ip},
    )


def test_guesses_on_one_account_from_many_addresses_back_off(make_app):
    app = make_app(LOGIN_ACCOUNT_FAILURE_LIMIT="4 per 1 minute")
    make_user(app)
    answers = [sign_in_from(app, "ada@example.test", "wrong guess!", f"10.0.0.{n}").status_code for n in range(6)]
    assert answers == [200, 200, 200, 200, 429, 429]
    # Unknown addresses back off just the same (the limit says nothing about which exist).
    unknown = [sign_in_from(app, "nobody@example.test", "wrong guess!", f"10.0.1.{n}").status_code for n in range(5)]
    assert unknown == [200, 200, 200, 200, 429]
    # Another account is not affected, and successes don't count.
    make_user(app, "bob@example.test")
    assert [sign_in_from(app, "bob@example.test", PASSWORD, "10.0.0.1").status_code for _ in range(6)] == [303] * 6


def test_the_back_off_is_a_window_not_a_lock(make_app):
    app = make_app(LOGIN_ACCOUNT_FAILURE_LIMIT="2 per 3 seconds")
    make_user(app)
    answers = [sign_in_from(app, "ada@example.test", "wrong guess!", f"10.0.0.{n}").status_code for n in range(3)]
    assert answers == [200, 200, 429]
    time.sleep(3.1)
    assert sign_in_from(app, "ada@example.test", PASSWORD, "10.0.0.99").status_code == 303


def test_signing_in_over_a_session_ends_the_previous_one(app, client):
    make_user(app)
    make_user(app, "bob@example.test")
    sign_in(client)
    first = client.get_cookie("session").value
    sign_in(client, "bob@example.test")
    with app.app_context():
        assert len(db.session.scalars(select(LoginSession).where(LoginSession.revoked_at.is_(None))).all()) == 1
    client.set_cookie("session", first)
    assert client.get("/account").status_code == 302


def test_sign_out_everywhere_drops_the_stored_persona_token(app, client, emulator, pending_user):
    assert state_of(client.get("/verify")) == "continue"
    assert inquiry_of(app, pending_user).session_token_ciphertext is not None
    post_with_page_token(client, "/account/sign-out-everywhere", page="/account")
    assert inquiry_of(app, pending_user).session_token_ciphertext is None


# -- production settings ----------------------------------------------------------------------------
def production(**overrides) -> type:
    redis = "redis://127.0.0.1:1/0"
    settings = {
        "SECRET_KEY": "0123456789abcdefghijklmnopqrstuvwxyzABCD",
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
        "PERSONA_WEBHOOK_SECRETS": ["wbhsec_x"],
        "REDIS_URL": redis,
        "RATELIMIT_STORAGE_URI": redis,
        **overrides,
    }
    return type("Production", (ProductionConfig,), settings)


def test_production_refuses_per_process_rate_limits_even_with_redis():
    assert production().problem() is None
    assert "RATELIMIT_STORAGE_URI is memory://" in production(RATELIMIT_STORAGE_URI="memory://").problem()


def test_production_warns_when_no_proxy_hop_is_trusted(caplog):
    with caplog.at_level(logging.WARNING, logger="webapp.config"):
        production(TRUSTED_PROXY_HOPS=0).check()
    assert "TRUSTED_PROXY_HOPS is 0" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="webapp.config"):
        production(TRUSTED_PROXY_HOPS=1).check()
    assert caplog.text == ""


def test_redirects_never_echo_a_foreign_host_and_are_not_cached(make_app):
    app = make_app(TRUSTED_HOSTS=["verify.example"])
    client = app.test_client()
    assert client.get("//login", base_url="https://evil.example").status_code == 400
    own = client.get("//login", base_url="https://verify.example")
    assert 300 <= own.status_code < 400 and urlsplit(own.headers["Location"]).hostname in (None, "verify.example")
    assert own.headers["Cache-Control"] == "no-store"
    assert production().TRUSTED_HOSTS[0] == "localhost"  # from PUBLIC_BASE_URL


# -- health checks with the database down and a session cookie ----------------------------------------
def test_health_checks_never_500_with_the_database_down_and_a_session_cookie(make_app, app, tmp_path):
    make_user(app)
    signed = app.test_client()
    sign_in(signed)
    cookie = signed.get_cookie("session").value
    down = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/no/such/dir/app.db").test_client()
    down.set_cookie("session", cookie)
    assert down.get("/healthz").status_code == 200
    assert down.get("/readyz").status_code == 503


# -- unsubscribe links ---------------------------------------------------------------------------------
def test_unsubscribe_tokens_expire_and_hide_the_account_id(app, person, monkeypatch):
    import base64

    with app.app_context():
        user = db.session.get(User, person.id)
        url = recovery.unsubscribe_url(user)
    token = urlsplit(url).path.rsplit("/", 1)[1]
    padded = token + "=" * (-len(token) % 4)
    assert person.public_id not in token
    assert person.public_id.encode() not in base64.urlsafe_b64decode(padded)
    client = app.test_client()
    assert client.get(f"/unsubscribe/{token}").status_code == 200
    app.config["UNSUBSCRIBE_TOKEN_TTL_SECONDS"] = 0
    time.sleep(1.1)
    assert client.get(f"/unsubscribe/{token}").status_code == 404


def test_create_app_refuses_memory_storage_in_production():
    with pytest.raises(SystemExit, match="RATELIMIT_STORAGE_URI"):
        create_app(production(RATELIMIT_STORAGE_URI="memory://"))
