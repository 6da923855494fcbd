"""When Persona is slow, down, rate limiting or broken: a fast 503 page, never a traceback.

Faults are injected in the emulator (over a real socket). Only the redirect case mocks
the HTTP boundary, because the emulator never redirects.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
import requests

from tests.builders import make_user
from tests.pages import sign_in, state_of
from webapp.persona import (
    PersonaBadResponseError,
    PersonaClient,
    PersonaConflictError,
    PersonaCredentialsError,
    PersonaNotFoundError,
    PersonaRequestError,
    PersonaUnavailableError,
)

RESUME = r"/resume$"


def client_for(emulator, **kwargs) -> PersonaClient:
    settings = {
        "version": "2025-10-27",
        "connect_timeout_seconds": 1,
        "read_timeout_seconds": 1,
        "max_retries": 1,
        "retry_after_cap_seconds": 0.5,
    }
    settings.update(kwargs)
    return PersonaClient(emulator.api, "persona_sandbox_emulator_key", **settings)


@pytest.mark.parametrize(
    "rule",
    [
        {"action": "status", "status": 500},
        {"action": "status", "status": 502},
        {"action": "status", "status": 503},
        {"action": "status", "status": 504},
        {"action": "drop"},
        {"action": "truncated"},
        {"action": "malformed"},
        {"action": "status", "status": 200, "body": '{"data": {"type": "inquiry"}}'},
        {
            "action": "status",
            "status": 200,
            "body": '{"data": {"type": "inquiry", "id": "inq_1", "attributes": {"status": "pending"}}}',
        },  # no token
    ],
)
def test_broken_upstream_gives_the_unavailable_page(client, emulator, pending_user, rule):
    emulator.fault(path=RESUME, **rule)
    response = client.get("/verify")
    assert response.status_code == 503
    assert state_of(response) == "unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["Cache-Control"] == "no-store"
    assert "Traceback" not in response.get_data(as_text=True)
    assert "Injected fault" not in response.get_data(as_text=True)  # no upstream text


def test_5xx_is_retried_once_with_a_new_idempotency_key(client, emulator, pending_user):
    emulator.fault(path=RESUME, action="status", status=500, count=1)
    assert state_of(client.get("/verify")) == "continue"
    calls = [r for r in emulator.requests() if r["path"].endswith("/resume")]
    assert [c["status"] for c in calls] == [500, 200]
    assert calls[0]["idempotency_key"] != calls[1]["idempotency_key"]


def test_reset_connection_is_retried_with_the_same_key(client, emulator, pending_user):
    emulator.fault(path=RESUME, action="drop", count=1)
    assert state_of(client.get("/verify")) == "continue"
    calls = [r for r in emulator.requests() if r["path"].endswith("/resume")]
    assert len(calls) == 2 and calls[0]["idempotency_key"] == calls[1]["idempotency_key"]


def test_read_timeout_degrades_within_the_budget(client, emulator, pending_user, app):
    emulator.fault(path=RESUME, action="timeout", seconds=5)
    started = time.monotonic()
    response = client.get("/verify")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    # One read timeout, not two and not the 5 s fault (slack for a busy machine).
    assert elapsed < app.config["PERSONA_READ_TIMEOUT_SECONDS"] + 1.5
    emulator.clear_faults()


def test_connect_refused_degrades_fast(make_app, emulator):
    from tests.servers import free_port

    app = make_app(PERSONA_API_BASE_URL=f"http://127.0.0.1:{free_port()}/api/v1")
    client = app.test_client()
    make_user(app)
    sign_in(client)
    started = time.monotonic()
    response = client.get("/verify")  # no inquiry yet: create fails
    assert response.status_code == 503 and state_of(response) == "unavailable"
    assert time.monotonic() - started < 1.5


def test_429_within_the_cap_is_waited_for_once(emulator):
    persona = client_for(emulator)
    inquiry = emulator.create_inquiry()
    emulator.clear_requests()
    emulator.fault(path="/inquiries", action="status", status=429, headers={"RateLimit-Reset": "0.2"}, count=1)
    assert persona.get_inquiry(inquiry["id"]).id == inquiry["id"]
    assert [r["status"] for r in emulator.requests()] == [429, 200]


def test_429_beyond_the_cap_never_sleeps_long(emulator):
    emulator.fault(path="/inquiries", action="status", status=429, headers={"Retry-After": "21600"})
    persona = client_for(emulator)
    started = time.monotonic()
    with pytest.raises(PersonaUnavailableError) as caught:
        persona.get_inquiry("inq_abc")
    assert time.monotonic() - started < 0.9  # below even the 1 s cap: no sleep at all
    assert caught.value.retry_after_seconds == 21600


def test_bad_credentials_are_not_retried_and_logged_without_the_key(emulator, caplog):
    caplog.set_level(logging.DEBUG)
    persona = PersonaClient(
        emulator.api,
        "persona_sandbox_wrong_key",
        version="2025-10-27",
        connect_timeout_seconds=1,
        read_timeout_seconds=1,
    )
    with pytest.raises(PersonaCredentialsError):
        persona.get_inquiry("inq_abc")
    assert len(emulator.requests()) == 1
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    assert "persona_sandbox_wrong_key" not in caplog.text
    assert "wrong_key" not in repr(persona)


def test_a_403_logs_personas_title_and_details_never_the_key(emulator, caplog):
    """ERR: 403 is a missing permission or an exhausted quota, not always a bad key. The emulator
    models neither (no key permissions, no creation quotas), so the answer is injected in
    Persona's error shape; its words are assumed (ERR gives none for a quota)."""
    caplog.set_level(logging.DEBUG)
    key = "persona_sandbox_" + "k" * 24
    emulator.configure(api_keys=[key])
    said = {"errors": [{"title": "Quota exceeded", "details": f"Inquiry creation quota used up for {key}"}]}
    emulator.fault(path=r"/inquiries$", action="status", status=403, body=json.dumps(said))
    persona = PersonaClient(emulator.api, key, version="2025-10-27", connect_timeout_seconds=1, read_timeout_seconds=1)
    with pytest.raises(PersonaCredentialsError):
        persona.create_inquiry(template_id="itmpl_x", reference_id="usr_1", idempotency_key="k1")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("Quota exceeded: Inquiry creation quota used up for [redacted]" in line for line in errors), errors
    assert key not in caplog.text


def test_credentials_error_gives_the_unavailable_page(make_app, emulator):
    app = make_app(PERSONA_API_KEY="persona_sandbox_not_configured_here")
    client = app.test_client()
    make_user(app)
    sign_in(client)
    assert client.get("/verify").status_code == 503


def test_typed_errors(emulator):
    persona = client_for(emulator)
    with pytest.raises(PersonaNotFoundError):
        persona.get_inquiry("inq_missing")
    with pytest.raises(PersonaRequestError):  # never reaches the network: our own bad request
        persona.get_inquiry("../../inquiries")
    inquiry = emulator.create_inquiry()
    emulator.set_status(inquiry["id"], "pending", "completed")
    with pytest.raises(PersonaConflictError):
        persona.resume_inquiry(inquiry["id"])


def test_redirects_are_not_followed(monkeypatch):
    """The emulator never redirects, so this one case mocks the HTTP boundary."""
    sent = []

    def fake_request(self, method, url, **kwargs):
        sent.append(kwargs)
        response = requests.Response()
        response.status_code = 302
        response.headers["Location"] = "https://evil.example/steal"
        response.request = requests.Request(method, url).prepare()
        return response

    monkeypatch.setattr(requests.Session, "request", fake_request)
    persona = PersonaClient(
        "https://api.example.test/api/v1", "k", version="v", connect_timeout_seconds=1, read_timeout_seconds=1
    )
    with pytest.raises(PersonaBadResponseError):
        persona.get_inquiry("inq_abc")
    assert sent[0]["allow_redirects"] is False


class FakeClock:
    """The breaker's clock, moved by hand: a busy machine cannot stretch a cooldown."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_circuit_breaker_opens_fails_fast_then_a_probe_closes_it(emulator):
    persona = client_for(emulator, max_retries=0, breaker_threshold=3, breaker_cooldown_seconds=30)
    persona.breaker.clock = clock = FakeClock()
    inquiry = emulator.create_inquiry()
    emulator.clear_requests()
    emulator.fault(path="/inquiries/", action="status", status=503)
    for _ in range(3):
        with pytest.raises(PersonaUnavailableError):
            persona.get_inquiry(inquiry["id"])
    assert len(emulator.requests()) == 3
    clock.now += 29
    started = time.monotonic()
    with pytest.raises(PersonaUnavailableError) as caught:
        persona.get_inquiry(inquiry["id"])
    assert time.monotonic() - started < 0.25 and str(caught.value) == "circuit open"
    assert caught.value.retry_after_seconds == 2  # what is left of the cooldown, rounded up
    assert len(emulator.requests()) == 3  # no call while open
    emulator.clear_faults()
    clock.now += 1.5
    assert persona.get_inquiry(inquiry["id"]).id == inquiry["id"]  # the probe succeeds: closed
    assert persona.get_inquiry(inquiry["id"]).id == inquiry["id"]


def test_a_failed_probe_opens_the_breaker_again(emulator):
    persona = client_for(emulator, max_retries=0, breaker_threshold=1, breaker_cooldown_seconds=30)
    persona.breaker.clock = clock = FakeClock()
    emulator.fault(path="/inquiries/", action="status", status=502)
    with pytest.raises(PersonaUnavailableError):
        persona.get_inquiry("inq_abc")
    clock.now += 31
    with pytest.raises(PersonaUnavailableError) as probe:
        persona.get_inquiry("inq_abc")
    assert str(probe.value) == "HTTP 502"
    clock.now += 29  # a fresh cooldown started at the probe
    with pytest.raises(PersonaUnavailableError) as fast:
        persona.get_inquiry("inq_abc")
    assert str(fast.value) == "circuit open"
    assert len(emulator.requests()) == 2


def test_not_found_and_conflict_count_as_persona_answering(emulator):
    persona = client_for(emulator, breaker_threshold=1)
    for _ in range(3):
        with pytest.raises(PersonaNotFoundError):
            persona.get_inquiry("inq_missing")
    assert len(emulator.requests()) == 3
