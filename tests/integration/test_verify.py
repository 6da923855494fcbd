"""The continue page's decision table, counted in calls the emulator received."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import event, select

from tests.builders import give_inquiry, make_user
from tests.pages import boot_config, csrf_from, sign_in, state_of
from webapp.extensions import db
from webapp.models import Inquiry, User

pytestmark = pytest.mark.postgres_too


def persona_calls(emulator, kind: str = "") -> list[str]:
    return [f"{r['method']} {r['path']}" for r in emulator.requests() if kind in r["path"]]


def test_no_inquiry_creates_one_with_reference_id_and_idempotency_key(app, signed_in, user, emulator):
    """One call: the create brings the first session token (auto-create-inquiry-session) and
    carries the email we know (prefilled `fields`)."""
    response = signed_in.get("/verify")
    assert state_of(response) == "continue"
    calls = emulator.requests()
    # Persona knows none by this reference id (DUP: look before creating), so one is created.
    assert [(c["method"], c["path"]) for c in calls] == [("GET", "/api/v1/inquiries"), ("POST", "/api/v1/inquiries")]
    assert f"filter%5Breference-id%5D={user.public_id}" in calls[0]["query"]
    assert calls[1]["idempotency_key"] == f"create-inquiry:{user.public_id}:1"
    created = emulator.inquiries()
    assert created[0]["reference_id"] == user.public_id
    config = boot_config(response)
    assert config["inquiryId"] == created[0]["id"] and config["sessionToken"]
    assert config["customHost"] == emulator.host and config["environmentId"] is None
    assert response.headers["Cache-Control"] == "no-store"
    fields = emulator.inquiry(created[0]["id"])["attributes"]["fields"]
    assert fields == {"email-address": {"type": "string", "value": "ada@example.test"}}
    assert emulator.sessions(created[0]["id"]) == 1
    emulator.clear_requests()
    again = signed_in.get("/verify")  # the stored token again: no call, no new session
    assert boot_config(again)["sessionToken"] == config["sessionToken"]
    assert emulator.requests() == [] and emulator.sessions(created[0]["id"]) == 1


# -- what the database lost, Persona still knows (#12 app item 8) -----------------------------
def forget_local_inquiries(app) -> None:
    with app.app_context():
        db.session.execute(Inquiry.__table__.delete())
        db.session.commit()


@pytest.mark.parametrize(
    ("walk", "state"), [([], "continue"), (["pending"], "continue"), (["pending", "completed"], "processing")]
)
def test_an_inquiry_the_database_lost_is_found_by_reference_id(app, signed_in, user, emulator, walk, state):
    inquiry_id = give_inquiry(app, emulator, user, *walk)
    forget_local_inquiries(app)
    response = signed_in.get("/verify")
    assert state_of(response) == state
    assert "POST /api/v1/inquiries" not in persona_calls(emulator)  # no second inquiry
    assert len(emulator.inquiries()) == 1
    if state == "continue":
        assert boot_config(response)["inquiryId"] == inquiry_id
    with app.app_context():
        assert db.session.scalar(select(Inquiry)).persona_id == inquiry_id


def test_a_redacted_or_someone_elses_inquiry_is_not_recovered(app, signed_in, user, emulator):
    redacted = give_inquiry(app, emulator, user, "pending")
    emulator.call("DELETE", f"/inquiries/{redacted}")
    emulator.create_inquiry(reference_id="usr_someone_else")
    forget_local_inquiries(app)
    config = boot_config(signed_in.get("/verify"))
    assert config["inquiryId"] not in (redacted, *[i["id"] for i in emulator.inquiries()[:2]])
    assert "POST /api/v1/inquiries" in persona_calls(emulator)


def test_a_list_persona_refuses_does_not_stop_the_create(app, signed_in, user, emulator):
    emulator.fault(method="GET", path=r"/inquiries$", action="status", status=400, count=1)
    assert state_of(signed_in.get("/verify")) == "continue"
    assert persona_calls(emulator, "/inquiries") == ["GET /api/v1/inquiries", "POST /api/v1/inquiries"]


def test_create_without_a_session_or_fields_when_so_configured(make_app, emulator):
    app = make_app(PERSONA_CREATE_WITH_SESSION=False, PERSONA_EMAIL_FIELD="", PERSONA_ENVIRONMENT_ID="env_abc")
    make_user(app)
    browser = app.test_client()
    sign_in(browser)
    config = boot_config(browser.get("/verify"))
    assert config["sessionToken"] is None and config["environmentId"] == "env_abc"
    assert emulator.inquiry(config["inquiryId"])["attributes"]["fields"] == {}
    assert emulator.sessions(config["inquiryId"]) == 0


def test_a_template_that_refuses_the_field_still_gets_its_inquiry(app, signed_in, user, emulator, caplog):
    """The emulator takes any field; its injected 422 (once) stands for a template without one."""
    emulator.fault(method="POST", path=r"/inquiries$", action="status", status=422, count=1)
    config = boot_config(signed_in.get("/verify"))
    calls = emulator.requests("/inquiries")
    assert [c["status"] for c in calls] == [200, 422, 201]
    assert calls[2]["idempotency_key"] == f"create-inquiry:{user.public_id}:1:no-fields"
    assert emulator.inquiry(config["inquiryId"])["attributes"]["fields"] == {}
    assert config["sessionToken"]
    assert "PERSONA_EMAIL_FIELD='email-address'" in caplog.text


def test_created_boots_without_token_and_no_call(app, signed_in, user, emulator):
    inquiry_id = give_inquiry(app, emulator, user)
    response = signed_in.get("/verify")
    assert state_of(response) == "continue"
    assert boot_config(response) == {**boot_config(response), "inquiryId": inquiry_id, "sessionToken": None}
    assert persona_calls(emulator) == []


@pytest.mark.parametrize("walk", [["pending"], ["pending", "expired"]])
def test_pending_or_expired_resumes_once_then_reuses_the_stored_token(app, signed_in, user, emulator, walk):
    inquiry_id = give_inquiry(app, emulator, user, *walk)
    first = signed_in.get("/verify")
    token = boot_config(first)["sessionToken"]
    assert token and persona_calls(emulator) == [f"POST /api/v1/inquiries/{inquiry_id}/resume"]
    emulator.clear_requests()
    again = signed_in.get("/verify")
    assert boot_config(again)["sessionToken"] == token
    assert persona_calls(emulator) == []
    with app.app_context():
        row = db.session.scalar(select(Inquiry))
        assert row.tokens_minted == 1 and row.status == "pending"
        assert token not in (row.session_token_ciphertext or "")  # encrypted at rest


@pytest.mark.parametrize("idle_minutes", [0, 2])
def test_a_reload_with_a_stored_token_reads_the_database_once(
    app, signed_in, user, emulator, server_clock, idle_minutes
):
    """The page reloaded most: its login session, user and inquiry come in one statement (each
    round trip costs more than the join under load, PERFORMANCE.md). After a minute or more,
    the sign-in's last activity is written too, and nothing read is read again."""
    give_inquiry(app, emulator, user, "pending")
    signed_in.get("/verify")  # mints and stores the token
    server_clock.move(idle_minutes)
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement.split()[0])

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        again = signed_in.get("/verify")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert state_of(again) == "continue" and boot_config(again)["sessionToken"]
    assert statements == (["SELECT", "UPDATE"] if idle_minutes else ["SELECT"])


@pytest.mark.parametrize(
    "walk, state",
    [
        (["pending", "completed"], "processing"),
        (["pending", "completed", "needs_review"], "review"),
        (["pending", "completed", "approved"], "approved"),
        (["pending", "completed", "declined"], "declined"),
        (["pending", "failed"], "failed"),
    ],
)
def test_final_statuses_show_their_page_with_no_call(app, signed_in, user, emulator, walk, state):
    give_inquiry(app, emulator, user, *walk)
    response = signed_in.get("/verify")
    assert state_of(response) == state
    assert "verify-config" not in response.get_data(as_text=True)
    assert persona_calls(emulator) == []


def test_stale_local_status_409_refetches_and_shows_the_status_page(app, signed_in, user, emulator):
    inquiry_id = give_inquiry(app, emulator, user, "pending")
    emulator.set_status(inquiry_id, "completed", "approved")  # no webhook reached us
    emulator.clear_requests()
    response = signed_in.get("/verify")
    assert state_of(response) == "approved"
    assert persona_calls(emulator) == [
        f"POST /api/v1/inquiries/{inquiry_id}/resume",
        f"GET /api/v1/inquiries/{inquiry_id}",
    ]
    emulator.clear_requests()
    assert state_of(signed_in.get("/verify")) == "approved" and persona_calls(emulator) == []


def test_inquiry_unknown_to_persona_says_so_and_offers_a_new_start(app, signed_in, user, emulator):
    with app.app_context():
        db.session.add(Inquiry(persona_id="inq_gone00000000", user_id=user.id, status="pending"))
        db.session.commit()
    response = signed_in.get("/verify")
    assert state_of(response) == "closed"
    assert b"We can&#39;t find your verification" in response.data or b"can't find" in response.data
    assert b"Start again" in response.data
    restart = signed_in.post("/verify/restart", data={"csrf_token": csrf_from(response.get_data(as_text=True))})
    assert restart.status_code == 303
    assert state_of(signed_in.get("/verify")) == "continue"


def test_another_persons_inquiry_is_never_reached(app, client, emulator):
    alice = make_user(app, "alice@example.test")
    bob = make_user(app, "bob@example.test")
    bobs = give_inquiry(app, emulator, bob, "pending")
    give_inquiry(app, emulator, alice, "pending")
    sign_in(client, "alice@example.test")
    emulator.clear_requests()
    for value in (bobs, "inq_unknown", "../x", "%2F", "</script>", "x" * 10000):
        response = client.get("/verify", query_string={"inquiry": value})
        assert response.status_code == 404
    assert persona_calls(emulator) == []


def test_each_person_s_page_opens_their_own_newest_inquiry(app, client, emulator):
    """The user loader reads the newest inquiry of the signed-in person, not the newest of all
    (Alice's is older than Bob's), and the first ask after making one finds the new one."""
    alice = make_user(app, "alice@example.test")
    bob = make_user(app, "bob@example.test")
    alices = give_inquiry(app, emulator, alice, "pending")
    give_inquiry(app, emulator, bob, "pending")
    sign_in(client, "alice@example.test")
    assert boot_config(client.get("/verify"))["inquiryId"] == alices

    with app.test_request_context():
        from webapp.verification import get_current_inquiry, start_inquiry

        signed_in_alice = db.session.get(User, alice.id)
        signed_in_alice.newest_inquiry_at_load = get_current_inquiry(signed_in_alice)  # as the loader leaves it
        made = start_inquiry(signed_in_alice)
        assert get_current_inquiry(signed_in_alice) is made


def test_token_refresh_mints_a_new_token(app, signed_in, user, emulator):
    inquiry_id = give_inquiry(app, emulator, user, "pending")
    page = signed_in.get("/verify")
    old = boot_config(page)["sessionToken"]
    emulator.expire_sessions(inquiry_id)
    emulator.clear_requests()
    response = signed_in.post("/verify/session-token", headers={"X-CSRFToken": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["inquiryId"] == inquiry_id and body["sessionToken"] and body["sessionToken"] != old
    assert persona_calls(emulator) == [f"POST /api/v1/inquiries/{inquiry_id}/resume"]
    assert emulator.sessions(inquiry_id) == 2


def test_token_refresh_for_a_finished_inquiry_redirects(app, signed_in, user, emulator):
    inquiry_id = give_inquiry(app, emulator, user, "pending")
    page = signed_in.get("/verify")
    emulator.set_status(inquiry_id, "completed")
    response = signed_in.post("/verify/session-token", headers={"X-CSRFToken": csrf_from(page.get_data(as_text=True))})
    assert response.get_json() == {"redirect": "/verify"}
    assert state_of(signed_in.get("/verify")) == "processing"


def test_token_refresh_needs_post_csrf_and_is_rate_limited(make_app, emulator):
    app = make_app(VERIFY_TOKEN_REFRESH_LIMIT="2 per hour")
    client = app.test_client()
    user = make_user(app)
    give_inquiry(app, emulator, user, "pending")
    sign_in(client)
    page = client.get("/verify")
    assert client.get("/verify/session-token").status_code == 405
    assert client.post("/verify/session-token").status_code == 400
    headers = {"X-CSRFToken": csrf_from(page.get_data(as_text=True))}
    answers = [client.post("/verify/session-token", headers=headers).status_code for _ in range(3)]
    assert answers == [200, 200, 429]


def test_complete_reads_the_status_from_persona_not_the_browser(app, signed_in, user, emulator):
    inquiry_id = give_inquiry(app, emulator, user, "pending")
    page = signed_in.get("/verify")
    headers = {"X-CSRFToken": csrf_from(page.get_data(as_text=True))}
    # The browser claims completion, Persona says pending: the page stays "continue".
    fake = signed_in.post("/verify/complete", headers=headers, json={"status": "approved"})
    assert fake.get_json() == {"redirect": "/verify"}
    assert state_of(signed_in.get("/verify")) == "continue"
    emulator.set_status(inquiry_id, "completed")
    signed_in.post("/verify/complete", headers=headers)
    assert state_of(signed_in.get("/verify")) == "processing"
    with app.app_context():
        assert db.session.scalar(select(Inquiry)).session_token_ciphertext is None


def test_restart_only_where_policy_allows(app, signed_in, user, emulator):
    give_inquiry(app, emulator, user, "pending", "completed", "declined")
    page = signed_in.get("/verify")
    assert b"Start again" not in page.data  # declined is a decision: not restartable by default
    response = signed_in.post("/verify/restart", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 409
    assert signed_in.get("/verify/restart").status_code == 405


def test_failed_can_start_again(app, signed_in, user, emulator):
    first = give_inquiry(app, emulator, user, "pending", "failed")
    page = signed_in.get("/verify")
    assert b"Start again" in page.data
    signed_in.post("/verify/restart", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    config = boot_config(signed_in.get("/verify"))
    assert config["inquiryId"] != first


def test_no_token_key_or_password_in_logs(app, signed_in, user, emulator, caplog):
    caplog.set_level(logging.DEBUG)
    inquiry_id = give_inquiry(app, emulator, user, "pending")
    page = signed_in.get("/verify")
    token = boot_config(page)["sessionToken"]
    emulator.expire_sessions(inquiry_id)
    fresh = signed_in.post(
        "/verify/session-token", headers={"X-CSRFToken": csrf_from(page.get_data(as_text=True))}
    ).get_json()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "resume" in logged  # the calls are logged...
    for secret in (token, fresh["sessionToken"], "persona_sandbox_emulator_key", "correct horse battery"):
        assert secret not in logged  # ...their secrets are not


def test_past_the_session_cap_it_offers_a_new_start_without_calling_persona(app, signed_in, user, emulator):
    first = give_inquiry(app, emulator, user, "pending")
    with app.app_context():
        db.session.scalar(select(Inquiry)).tokens_minted = app.config["PERSONA_SESSIONS_PER_INQUIRY"]
        db.session.commit()
    page = signed_in.get("/verify")
    assert state_of(page) == "closed" and b"opened too many times" in page.data
    assert persona_calls(emulator) == []
    signed_in.post("/verify/restart", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert boot_config(signed_in.get("/verify"))["inquiryId"] != first


# -- the session cap, on Persona's own count (#12 app item 4) ----------------------------------
def refresh_token(browser, page) -> dict:
    answer = browser.post("/verify/session-token", headers={"X-CSRFToken": csrf_from(page.get_data(as_text=True))})
    assert answer.status_code in (200, 503), answer.status_code
    return answer.get_json() or {}


def test_resumes_that_reuse_a_session_do_not_use_up_the_cap(make_app, emulator):
    """Our mints over-count: resume reuses Persona's unused session, and its answer says so."""
    app = make_app(PERSONA_SESSIONS_PER_INQUIRY=3)
    user = make_user(app)
    inquiry_id = give_inquiry(app, emulator, user, "pending")
    browser = app.test_client()
    sign_in(browser)
    page = browser.get("/verify")
    for _ in range(4):  # the flow never opened it: each refresh gets the same unused session back
        assert refresh_token(browser, page)["inquiryId"] == inquiry_id
    assert emulator.sessions(inquiry_id) == 1
    with app.app_context():
        row = db.session.scalar(select(Inquiry))
        assert row.tokens_minted == 5 and row.persona_sessions == 1
    assert state_of(browser.get("/verify")) == "continue"


def test_persona_s_session_cap_answer_offers_a_new_start_and_holds_no_one_else_back(make_app, emulator):
    """Sessions opened where we could not count them used up the cap: Persona's 429 for this
    inquiry (PERSONA-ASSUMPTIONS row 3) is not its rate limit. The person gets the new-start
    page at once (not the waiting page, which would never end), we stop asking for that
    inquiry, and nobody else waits."""
    app = make_app(PERSONA_SESSIONS_PER_INQUIRY=25)
    emulator.configure(max_sessions_per_inquiry=1)
    alice, bob = make_user(app, "alice@example.test"), make_user(app, "bob@example.test")
    capped = give_inquiry(app, emulator, alice, "pending")
    give_inquiry(app, emulator, bob, "pending")
    emulator.call("POST", f"/inquiries/{capped}/resume")  # the one session, opened elsewhere
    emulator.expire_sessions(capped)
    alices, bobs = app.test_client(), app.test_client()
    sign_in(alices, "alice@example.test")
    sign_in(bobs, "bob@example.test")
    emulator.clear_requests()
    page = alices.get("/verify")
    assert state_of(page) == "closed" and b"opened too many times" in page.data
    assert persona_calls(emulator) == [f"POST /api/v1/inquiries/{capped}/resume"]
    assert state_of(bobs.get("/verify")) == "continue"  # the shared budget was not backed off
    emulator.clear_requests()
    assert state_of(alices.get("/verify")) == "closed" and persona_calls(emulator) == []  # not asked again
    alices.post("/verify/restart", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert boot_config(alices.get("/verify"))["inquiryId"] != capped


def test_sessions_persona_opened_without_us_count_toward_the_cap(make_app, emulator):
    """Our mints under-count: the flow (or another client) opened sessions we never minted.
    Persona's count in the resume's answer stops us before its 429 would."""
    app = make_app(PERSONA_SESSIONS_PER_INQUIRY=3)
    emulator.configure(max_sessions_per_inquiry=3)
    user = make_user(app)
    inquiry_id = give_inquiry(app, emulator, user, "pending")
    for _ in range(2):  # two sessions opened and ended elsewhere
        emulator.call("POST", f"/inquiries/{inquiry_id}/resume")
        emulator.expire_sessions(inquiry_id)
    browser = app.test_client()
    sign_in(browser)
    page = browser.get("/verify")  # the third and last session
    assert boot_config(page)["sessionToken"]
    emulator.expire_sessions(inquiry_id)
    emulator.clear_requests()
    assert refresh_token(browser, page) == {"redirect": "/verify"}
    assert persona_calls(emulator) == []  # no resume Persona would refuse
    closed = browser.get("/verify")
    assert state_of(closed) == "closed" and b"opened too many times" in closed.data
    with app.app_context():
        assert db.session.scalar(select(Inquiry)).tokens_minted == 1
