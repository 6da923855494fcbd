"""Recovery links: single use, scanner-proof, bound to one person, expiring; "send me a link"."""

from __future__ import annotations

import re
import statistics
import threading
import time
from datetime import timedelta

import pytest
import redis
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update

from tests.builders import give_inquiry, make_user, new_link
from tests.mailbox import link_in, outbox
from tests.pages import csrf_from, open_link, path_of, redeem, resend, sign_in, state_of
from tests.servers import LiveServer, redis_server
from tests.webhook_signer import event_body, later, signature
from webapp import clock, recovery
from webapp import outbox as outbox_rows
from webapp.extensions import db
from webapp.models import OutboxEmail, RecoveryLink, User

pytestmark = pytest.mark.postgres_too


def normalized(html: str) -> str:
    return re.sub(r'(nonce|value)="[^"]*"', "", html)


def test_token_is_256_bits_and_only_its_hash_is_stored(app, person, caplog):
    url = new_link(app, person)
    token = path_of(url).removeprefix("/r/")
    assert len(token) == 43 and url.startswith(app.config["PUBLIC_BASE_URL"])
    with app.app_context():
        dump = "\n".join(
            str(tuple(row))
            for table in ("recovery_links", "users", "login_sessions")
            for row in db.session.execute(text(f"SELECT * FROM {table}"))
        )
    assert token not in dump
    assert token not in caplog.text


def test_scanners_do_not_use_the_link_and_a_person_can(app, person, emulator):
    url = new_link(app, person)
    for _ in range(3):
        scanner = app.test_client()
        assert scanner.head(path_of(url)).status_code == 303
        assert scanner.get(path_of(url), follow_redirects=True).status_code == 200
    client = app.test_client()
    client.get("/login")
    cookie_before = client.get_cookie("session").value
    landing = open_link(client, url)
    assert landing.status_code == 200 and b"Continue verification" in landing.data
    assert landing.headers["Referrer-Policy"] == "same-origin"  # its POST needs a Referer over HTTPS
    assert landing.headers["Cache-Control"] == "no-store"
    response = redeem(client, landing)
    assert response.status_code == 303 and response.headers["Location"] == "/verify"
    assert "/r/" not in response.headers["Location"] and response.headers["Cache-Control"] == "no-store"
    assert client.get_cookie("session").value != cookie_before
    assert state_of(client.get("/verify")) == "continue"


def test_a_used_link_is_refused_with_no_persona_call(app, person, emulator):
    url = new_link(app, person)
    client = app.test_client()
    redeem(client, open_link(client, url))
    other = app.test_client()
    landing = open_link(other, url)
    assert landing.status_code == 404 and b"Send me a new link" in landing.data
    emulator.clear_requests()
    assert other.post("/r", data={"csrf_token": csrf_from(landing.get_data(as_text=True))}).status_code == 404
    assert emulator.requests() == []


def test_tampered_truncated_unknown_links_get_the_same_page(app, person):
    url = new_link(app, person)
    token = path_of(url).removeprefix("/r/")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    pages = []
    for bad in (flipped, token[:-3], token + "x", "x" * 43, "", "%00", "a" * 4000):
        client = app.test_client()
        if bad:
            client.get(f"/r/{bad}")
        page = client.get("/r")
        assert page.status_code == 404
        pages.append(normalized(page.get_data(as_text=True)))
    assert len(set(pages)) == 1


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    token=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#%"), min_size=1, max_size=200
    )
)
def test_fuzzed_tokens_are_never_a_500(client, token):
    client.get("/r/" + token)
    assert client.get("/r").status_code == 404


def test_expiry_boundary_with_a_frozen_clock(app, person, monkeypatch):
    url = new_link(app, person)
    with app.app_context():
        expires = db.session.scalar(select(RecoveryLink.expires_at))
    client = app.test_client()
    monkeypatch.setattr(clock, "frozen_at", expires - timedelta(seconds=1))
    assert open_link(client, url).status_code == 200
    monkeypatch.setattr(clock, "frozen_at", expires + timedelta(seconds=1))
    assert client.get("/r").status_code == 404


def test_a_link_for_another_purpose_is_not_accepted(app, person):
    url = new_link(app, person)
    with app.app_context():
        db.session.execute(update(RecoveryLink).values(purpose="confirm_email"))
        db.session.commit()
    client = app.test_client()
    assert open_link(client, url).status_code == 404
    assert (
        client.post("/r", data={"csrf_token": csrf_from(client.get("/login").get_data(as_text=True))}).status_code
        == 404
    )


def test_someone_else_signed_in_cannot_use_it_and_keeps_their_session(app, person, emulator):
    url = new_link(app, person)
    make_user(app, "bob@example.test")
    client = app.test_client()
    sign_in(client, "bob@example.test")
    landing = open_link(client, url)
    assert landing.status_code == 403 and b"belongs to another account" in landing.data
    client.get(path_of(url))  # try again, straight to the POST
    assert client.post("/r", data={"csrf_token": csrf_from(client.get("/").get_data(as_text=True))}).status_code == 403
    stranger = app.test_client()
    assert redeem(stranger, open_link(stranger, url)).status_code == 303  # still unused
    with app.app_context():
        bob = db.session.scalar(select(User).where(User.email == "bob@example.test"))
        assert client.get("/").status_code == 200 and bob is not None


def test_the_recovery_session_reaches_verification_only_and_expires(app, person, monkeypatch):
    client = app.test_client()
    redeem(client, open_link(client, new_link(app, person)))
    assert client.get("/verify").status_code == 200
    assert client.get("/").headers["Location"] == "/verify"
    assert client.get("/recovery/resend").headers["Location"] == "/verify"
    later_now = clock.utcnow() + timedelta(seconds=app.config["RECOVERY_SESSION_ABSOLUTE_SECONDS"] + 1)
    monkeypatch.setattr(clock, "frozen_at", later_now)
    assert client.get("/verify").headers["Location"].startswith("/login")


def test_links_die_when_the_inquiry_is_final_or_the_account_disabled(app, client, person, emulator):
    url = new_link(app, person)
    with app.app_context():
        from webapp.verification import get_current_inquiry

        inquiry_id = get_current_inquiry(db.session.get(User, person.id)).persona_id
    body = event_body("inquiry.completed", inquiry_id, at=later(5))
    client.post(
        "/webhooks/persona",
        data=body,
        headers={"Content-Type": "application/json", "Persona-Signature": signature(body, "wbhsec_test_secret")},
    )
    assert open_link(app.test_client(), url).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(RecoveryLink.revoked_at)) is not None

    other = make_user(app, "carol@example.test")
    give_inquiry(app, emulator, other, "pending")
    url2 = new_link(app, other)
    with app.app_context():
        db.session.get(User, other.id).active = False
        db.session.commit()
    assert open_link(app.test_client(), url2).status_code == 404


def test_concurrent_redemptions_exactly_one_wins(app, make_app, person):
    url = new_link(app, person)
    second_app = make_app()  # a second app instance on the same database
    with LiveServer(app) as one, LiveServer(second_app) as two:
        sessions = []
        for index in range(20):
            server = (one, two)[index % 2]
            http = requests.Session()
            http.get(server.url + path_of(url), timeout=10)
            landing = http.get(server.url + "/r", timeout=10)
            sessions.append((server, http, csrf_from(landing.text)))
        barrier = threading.Barrier(20)
        outcomes: list[int] = []

        def go(server, http, token):
            barrier.wait()
            outcomes.append(
                http.post(server.url + "/r", data={"csrf_token": token}, allow_redirects=False, timeout=10).status_code
            )

        threads = [threading.Thread(target=go, args=s) for s in sessions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(outcomes) == [303] + [404] * 19


# -- "send me a new link" ------------------------------------------------------------------
def test_send_me_a_link_does_not_reveal_accounts(make_app, emulator, capsys):
    """As it runs: the request only writes an outbox row and hands its id to a real Redis
    broker; a worker (here: the test, afterwards) looks the address up."""
    with redis_server() as broker:
        app = make_app(CELERY_BROKER_URL=broker, RECOVERY_SEND_LIMIT_PER_CLIENT="1000 per hour")
        make_user(app)
        known, unknown = resend(app.test_client(), "ada@example.test"), resend(app.test_client(), "nobody@example.test")
        assert known.status_code == unknown.status_code == 200
        assert normalized(known.get_data(as_text=True)) == normalized(unknown.get_data(as_text=True))
        assert {k for k, _ in known.headers} == {k for k, _ in unknown.headers}

        timings: dict[str, list[float]] = {"known": [], "unknown": []}
        fast = app.test_client()
        for _ in range(30):
            for kind, address in (("known", "ada@example.test"), ("unknown", "nobody@example.test")):
                page = fast.get("/recovery/resend")
                data = {"email": address, "csrf_token": csrf_from(page.get_data(as_text=True))}
                started = time.perf_counter()
                fast.post("/recovery/resend", data=data)
                timings[kind].append(time.perf_counter() - started)
        queued = redis.Redis.from_url(broker).llen("celery")
    difference_ms = abs(statistics.median(timings["known"]) - statistics.median(timings["unknown"])) * 1000
    with capsys.disabled():
        print(f"\n[enumeration] median time difference known vs unknown: {difference_ms:.2f} ms over 30 each")
    assert difference_ms < 25
    assert queued == 62  # one task per request, known or not
    with app.app_context():
        ids = db.session.scalars(select(OutboxEmail.id).order_by(OutboxEmail.id)).all()
        outcomes = [outbox_rows.deliver(i) for i in ids]
    assert [o.status for o in outcomes if o].count("sent") == 3  # the per-address limit
    assert {o.status for o in outcomes if o} == {"sent", "dropped"}
    messages = outbox(app.config["MAIL_OUTBOX_DIR"])
    assert len(messages) == 3 and {m["To"] for m in messages} == {"ada@example.test"}


def test_per_address_limit_sends_no_more_than_three(app, person):
    client = app.test_client()
    for _ in range(5):
        assert resend(client, "ada@example.test").status_code == 200
    assert len(outbox(app.config["MAIL_OUTBOX_DIR"])) == 3


def test_per_client_limit(make_app, emulator):
    app = make_app(RECOVERY_SEND_LIMIT_PER_CLIENT="2 per hour")
    client = app.test_client()
    assert [resend(client, "x@example.test").status_code for _ in range(3)] == [200, 200, 429]


def test_links_use_the_configured_base_url_not_the_host_header(app, person):
    client = app.test_client()
    answer = resend(client, "ada@example.test", base_url="http://evil.example", **{"X-Forwarded-Host": "evil.example"})
    assert answer.status_code == 200
    link = link_in(outbox(app.config["MAIL_OUTBOX_DIR"])[0])
    assert link.startswith(app.config["PUBLIC_BASE_URL"] + "/r/") and "evil" not in link


def test_email_me_a_link_from_verify(app, client, person):
    sign_in(client)
    page = client.get("/verify")
    assert b"Email me a link to continue on another device" in page.data
    response = client.post(
        "/verify/email-link",
        headers={"Accept": "application/json"},
        data={"csrf_token": csrf_from(page.get_data(as_text=True))},
    )
    assert response.get_json() == {"sent": True, "to": "a***@example.test"}
    message = outbox(app.config["MAIL_OUTBOX_DIR"])[0]
    fresh = app.test_client()
    assert redeem(fresh, open_link(fresh, link_in(message))).status_code == 303


def test_support_commands(app, runner, person):
    result = runner.invoke(args=["recovery", "link", "ada@example.test"])
    assert result.exit_code == 0
    link = result.output.strip().splitlines()[-1]
    assert link.startswith(app.config["PUBLIC_BASE_URL"] + "/r/")
    assert outbox(app.config["MAIL_OUTBOX_DIR"]) == []
    client = app.test_client()
    assert redeem(client, open_link(client, link)).status_code == 303
    assert runner.invoke(args=["recovery", "send", "ada@example.test"]).exit_code == 0
    assert len(outbox(app.config["MAIL_OUTBOX_DIR"])) == 1
    assert runner.invoke(args=["recovery", "link", "nobody@example.test"]).exit_code != 0


# -- reminders -----------------------------------------------------------------------------
def test_reminders_dry_run_then_send_once_per_window(app, runner, idle_person):
    dry = runner.invoke(args=["reminders", "send", "--dry-run"])
    assert "would send" in dry.output and "before-expiry" in dry.output
    assert outbox(app.config["MAIL_OUTBOX_DIR"]) == []
    assert "1 due, 1 sent" in runner.invoke(args=["reminders", "send"]).output
    assert "0 due, 0 sent" in runner.invoke(args=["reminders", "send"]).output
    message = outbox(app.config["MAIL_OUTBOX_DIR"])[0]
    assert message["List-Unsubscribe"]
    client = app.test_client()
    assert redeem(client, open_link(client, link_in(message))).status_code == 303


def test_overlapping_runs_send_one_reminder(app, idle_person):
    with app.app_context():
        first, second = recovery.due_reminders(), recovery.due_reminders()
    results = []

    def run(reminder):
        with app.app_context():
            from webapp.models import Inquiry

            reminder.inquiry = db.session.get(Inquiry, reminder.inquiry.id)
            results.append(recovery.send_reminder(reminder))

    threads = [threading.Thread(target=run, args=(r,)) for r in (first[0], second[0])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    assert len(outbox(app.config["MAIL_OUTBOX_DIR"])) == 1


def test_after_expiry_reminder_then_the_cap(app, runner, idle_person, monkeypatch):
    runner.invoke(args=["reminders", "send"])
    with app.app_context():
        from webapp.models import Inquiry

        expires = db.session.scalar(select(Inquiry.expires_at))
    monkeypatch.setattr(clock, "frozen_at", expires + timedelta(hours=1))
    with app.app_context():
        due = recovery.due_reminders(expires + timedelta(hours=1))
    assert [r.window.split(":")[0] for r in due] == ["after-expiry"]
    runner.invoke(args=["reminders", "send"])
    with app.app_context():
        assert recovery.due_reminders(expires + timedelta(hours=2)) == []  # max 2 per inquiry


def test_no_reminders_once_final_or_unsubscribed(app, runner, idle_person, emulator):
    with app.app_context():
        url = recovery.unsubscribe_url(db.session.get(User, idle_person.id))
    token = url.rsplit("/", 1)[1]
    client = app.test_client()
    page = client.get(f"/unsubscribe/{token}")
    assert b"Stop reminders" in page.data  # GET changes nothing
    with app.app_context():
        assert len(recovery.due_reminders()) == 1
    client.post(f"/unsubscribe/{token}", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    with app.app_context():
        assert recovery.due_reminders() == []
    assert client.get("/unsubscribe/forged").status_code == 404


def test_reminders_stop_once_the_inquiry_is_final(app, idle_person):
    from webapp.models import Inquiry

    with app.app_context():
        assert len(recovery.due_reminders()) == 1
        db.session.execute(update(Inquiry).values(status="completed"))
        db.session.commit()
        assert recovery.due_reminders() == []


def test_link_attempts_are_rate_limited_per_client(make_app, emulator):
    app = make_app(RECOVERY_LINK_ATTEMPT_LIMIT="3 per minute")
    client = app.test_client()
    answers = [client.get("/r/" + "x" * 43).status_code for _ in range(4)]
    assert answers == [303, 303, 303, 429]
