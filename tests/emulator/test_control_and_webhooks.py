"""Contract: the widget's rules, webhooks (signing, retries, ordering), clock, faults, state."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time

import pytest
import requests

from tests.emulator_client import EmulatorClient
from tests.receiver import Receiver
from tests.servers import ROOT, emulator_process, free_port, wait_for_port


def widget(emulator: EmulatorClient, path: str, **body) -> requests.Response:
    return emulator.http.post(f"{emulator.origin}/widget/api/{path}", json=body, timeout=5)


# -- the widget's rules --------------------------------------------------------------------
def test_created_inquiry_opens_without_a_token_and_gets_one(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    opened = widget(emulator, "session", inquiryId=inquiry["id"])
    assert opened.status_code == 200
    assert opened.json()["sessionToken"] and opened.json()["step"] == "select_id_type"


def test_pending_inquiry_needs_a_valid_token(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    emulator.set_status(inquiry["id"], "pending")
    for token in (None, "garbage", "eyJhbGciOiJIUzI1NiJ9.e30.x"):
        refused = widget(emulator, "session", inquiryId=inquiry["id"], sessionToken=token)
        assert refused.status_code == 409
        assert refused.json()["error"] == {"status": 409, "code": "unauthenticated", "message": "Session expired"}
    token = emulator.call("POST", f"/inquiries/{inquiry['id']}/resume").json()["meta"]["session-token"]
    assert widget(emulator, "session", inquiryId=inquiry["id"], sessionToken=token).status_code == 200


def test_a_token_for_another_inquiry_does_not_open_this_one(emulator: EmulatorClient):
    mine, theirs = emulator.create_inquiry(), emulator.create_inquiry()
    emulator.set_status(mine["id"], "pending")
    emulator.set_status(theirs["id"], "pending")
    token = emulator.call("POST", f"/inquiries/{theirs['id']}/resume").json()["meta"]["session-token"]
    assert widget(emulator, "session", inquiryId=mine["id"], sessionToken=token).status_code == 409


def test_steps_continue_submit_and_fail(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    token = widget(emulator, "session", inquiryId=inquiry["id"]).json()["sessionToken"]
    step = widget(emulator, "step", inquiryId=inquiry["id"], sessionToken=token, action="continue")
    assert step.json()["status"] == "pending" and step.json()["step"] == "document_front"
    assert (
        widget(emulator, "step", inquiryId=inquiry["id"], sessionToken=token, action="submit").status_code == 400
    )  # not the last step yet
    widget(emulator, "step", inquiryId=inquiry["id"], sessionToken=token, action="continue")
    done = widget(emulator, "step", inquiryId=inquiry["id"], sessionToken=token, action="submit")
    assert done.json()["status"] == "completed"
    assert emulator.inquiry(inquiry["id"])["attributes"]["completed-at"]
    other = emulator.create_inquiry()
    t2 = widget(emulator, "session", inquiryId=other["id"]).json()["sessionToken"]
    failed = widget(emulator, "step", inquiryId=other["id"], sessionToken=t2, action="fail")
    assert failed.json()["status"] == "failed"


def test_killed_sessions_stop_the_next_step(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    token = widget(emulator, "session", inquiryId=inquiry["id"]).json()["sessionToken"]
    assert emulator.expire_sessions(inquiry["id"]) == 1
    step = widget(emulator, "step", inquiryId=inquiry["id"], sessionToken=token, action="continue")
    assert step.status_code == 409 and step.json()["error"]["code"] == "unauthenticated"


def test_final_inquiry_in_the_widget_is_a_409(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    emulator.set_status(inquiry["id"], "pending", "completed")
    answer = widget(emulator, "session", inquiryId=inquiry["id"])
    assert answer.status_code == 409 and answer.json()["inquiryStatus"] == "completed"


def test_widget_page_carries_the_sdk_parameters(emulator: EmulatorClient):
    page = emulator.http.get(
        emulator.origin + "/widget",
        params={
            "container-id": "persona-widget-abc",
            "iframe-origin": "http://localhost:5000",
            "inquiry-id": "inq_1",
            "session-token": "tok",
        },
        timeout=5,
    )
    assert page.status_code == 200
    assert 'data-container-id="persona-widget-abc"' in page.text
    assert 'data-iframe-origin="http://localhost:5000"' in page.text
    for name in ("Continue", "Submit", "Fail", "Exit"):
        assert f">{name}</button>" in page.text


# -- webhooks ------------------------------------------------------------------------------
def _verify(header: str, body: bytes, secret: str) -> bool:
    for part in header.split(" "):
        fields = dict(item.split("=", 1) for item in part.split(","))
        expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, fields["v1"]):
            return True
    return False


def test_every_status_change_is_a_signed_event(emulator: EmulatorClient):
    with Receiver() as receiver:
        emulator.configure(webhook_urls=[receiver.url], webhook_secrets=["wbhsec_new", "wbhsec_old"])
        inquiry = emulator.create_inquiry()
        emulator.set_status(inquiry["id"], "pending", "completed", "needs_review", "approved")
        got = receiver.wait(5)
    names = [json.loads(r["body"])["data"]["attributes"]["name"] for r in got]
    assert sorted(names) == sorted(
        ["inquiry.created", "inquiry.started", "inquiry.completed", "inquiry.marked-for-review", "inquiry.approved"]
    )
    first = got[0]
    header = first["headers"]["Persona-Signature"]
    assert len(header.split(" ")) == 2  # two secrets: two sets (rotation)
    assert _verify(header, first["body"], "wbhsec_new") and _verify(header, first["body"], "wbhsec_old")
    assert not _verify(header, first["body"], "wbhsec_other")
    assert first["headers"]["Persona-Webhook-Attempts-Made"] == "1"
    assert first["headers"]["Persona-Webhook-Attempts-Left"] == "7"
    event = json.loads(first["body"])["data"]
    assert event["type"] == "event" and event["id"].startswith("evt_")
    assert event["attributes"]["payload"]["data"]["id"] == inquiry["id"]
    assert event["attributes"]["created-at"]


def test_failed_deliveries_are_retried_then_logged(emulator: EmulatorClient):
    with Receiver(statuses=[500, 503, 200]) as receiver:
        emulator.configure(webhook_urls=[receiver.url], webhook_secrets=["s"])
        emulator.create_inquiry()
        got = receiver.wait(3)
        deliveries = emulator.wait_for_deliveries(lambda ds: ds and ds[0]["state"] == "delivered")
    assert [r["headers"]["Persona-Webhook-Attempts-Made"] for r in got] == ["1", "2", "3"]
    assert len({r["headers"]["Persona-Webhook-First-Attempted-At"] for r in got}) == 1
    assert [a.get("status") for a in deliveries[0]["attempts"]] == [500, 503, 200]


def test_non_listed_2xx_is_not_a_success(emulator: EmulatorClient):
    with Receiver(statuses=[203]) as receiver:
        emulator.configure(webhook_urls=[receiver.url], webhook_secrets=["s"])
        emulator.create_inquiry()
        receiver.wait(2)


def test_pause_and_release_in_reverse_order(emulator: EmulatorClient):
    with Receiver() as receiver:
        emulator.configure(webhook_urls=[receiver.url], webhook_secrets=["s"])
        emulator.control("POST", "/webhooks/pause")
        inquiry = emulator.create_inquiry()
        emulator.set_status(inquiry["id"], "pending", "completed")
        time.sleep(0.3)
        assert receiver.received == []
        emulator.control("POST", "/webhooks/release", {"order": "reverse"})
        got = receiver.wait(3)
    names = [json.loads(r["body"])["data"]["attributes"]["name"] for r in got]
    assert names == ["inquiry.completed", "inquiry.started", "inquiry.created"]


def test_redeliver_makes_duplicates(emulator: EmulatorClient):
    with Receiver() as receiver:
        emulator.configure(webhook_urls=[receiver.url], webhook_secrets=["s"])
        emulator.create_inquiry()
        receiver.wait(1)
        event_id = emulator.webhooks()["events"][0]["id"]
        emulator.control("POST", f"/events/{event_id}/redeliver", {"count": 2})
        got = receiver.wait(3)
    assert {json.loads(r["body"])["data"]["id"] for r in got} == {event_id}


# -- clock and expiry ----------------------------------------------------------------------
def test_clock_makes_inquiries_expire_and_emit_the_event(emulator: EmulatorClient):
    with Receiver() as receiver:
        emulator.configure(webhook_urls=[receiver.url], webhook_secrets=["s"])
        inquiry = emulator.create_inquiry()
        emulator.advance(86400 - 10)
        assert emulator.status(inquiry["id"]) == "created"
        emulator.advance(20)
        got = receiver.wait(2)
    assert emulator.status(inquiry["id"]) == "expired"
    assert json.loads(got[1]["body"])["data"]["attributes"]["name"] == "inquiry.expired"


# -- faults ----------------------------------------------------------------------------------
def test_fault_status_with_headers_for_n_requests(emulator: EmulatorClient):
    emulator.fault(
        method="GET", path="^/api/v1/inquiries$", action="status", status=503, headers={"Retry-After": "7"}, count=2
    )
    first, second, third = (emulator.call("GET", "/inquiries") for _ in range(3))
    assert first.status_code == second.status_code == 503 and first.headers["Retry-After"] == "7"
    assert third.status_code == 200


@pytest.mark.parametrize(
    "action, error",
    [
        ("drop", requests.ConnectionError),
        ("truncated", requests.exceptions.ChunkedEncodingError),
    ],
)
def test_broken_connections(emulator: EmulatorClient, action, error):
    emulator.fault(path="/inquiries", action=action, count=1)
    with pytest.raises(error):
        emulator.call("GET", "/inquiries")
    assert emulator.call("GET", "/inquiries").status_code == 200


def test_malformed_body(emulator: EmulatorClient):
    emulator.fault(path="/inquiries", action="malformed", count=1)
    response = emulator.call("GET", "/inquiries")
    with pytest.raises(ValueError):
        response.json()


def test_delay_and_timeout(emulator: EmulatorClient):
    emulator.fault(path="/inquiries", action="delay", seconds=0.3, count=1)
    started = time.monotonic()
    assert emulator.call("GET", "/inquiries").status_code == 200
    assert time.monotonic() - started >= 0.3
    emulator.fault(path="/inquiries", action="timeout", seconds=1.5, count=1)
    with pytest.raises(requests.ReadTimeout):
        emulator.http.get(emulator.api + "/inquiries", timeout=(1, 0.3))
    emulator.clear_faults()
    assert emulator.control("GET", "/faults").json() == []


def test_bad_control_input_is_a_400_never_a_500(emulator: EmulatorClient):
    for settings in (
        {"rate_limit_per_minute": "many"},
        {"webhook_urls": "not a list"},
        {"nope": 1},
        {"resume_allows_created": 1},
        {"token_secret": "x"},
    ):
        response = emulator.http.post(emulator.origin + "/_emulator/config", json=settings, timeout=5)
        assert response.status_code == 400, settings
    assert emulator.call("GET", "/inquiries").status_code == 200  # nothing half-applied
    for body in ([], "x"):
        response = emulator.http.post(emulator.origin + "/_emulator/clock", json=body, timeout=5)
        assert response.status_code == 400
    assert emulator.http.post(emulator.origin + "/_emulator/clock", timeout=5).status_code == 415  # no JSON


def test_bad_fault_rules_are_refused(emulator: EmulatorClient):
    for rule in (
        {"action": "explode"},
        {"action": "delay", "path": "("},
        {"action": "drop", "count": 0},
        {"action": "status", "status": "abc"},
        {"action": "delay", "seconds": "x"},
        {"action": "status", "headers": []},
        {"action": "status", "status": 42},
    ):
        response = emulator.http.post(emulator.origin + "/_emulator/faults", json=rule, timeout=5)
        assert response.status_code == 400


# -- state and the control switch ------------------------------------------------------------
def test_state_survives_a_restart_and_reset_clears_it(tmp_path):
    with emulator_process(tmp_path) as origin:
        first = EmulatorClient(origin)
        inquiry = first.create_inquiry()
        first.set_status(inquiry["id"], "pending")
        token = first.call("POST", f"/inquiries/{inquiry['id']}/resume").json()["meta"]["session-token"]
        first.advance(3600)
    port = free_port()
    env = {**os.environ, "PERSONA_EMULATOR_STATE_FILE": str(tmp_path / "emulator.db")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "persona_emulator", "--port", str(port), "--quiet"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        again = EmulatorClient(f"http://localhost:{port}")
        assert again.status(inquiry["id"]) == "pending"  # written at shutdown (SIGTERM), not lost
        assert widget(again, "session", inquiryId=inquiry["id"], sessionToken=token).status_code == 200
        assert again.inquiry(inquiry["id"])["relationships"]["sessions"]["data"]
        # the control API is off unless enabled
        assert again.http.get(again.origin + "/_emulator/inquiries", timeout=5).status_code == 404
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.parametrize(
    ("inflection", "event_time", "expiry", "next_step", "kebab_key"),
    [
        ("camel", "createdAt", "expiresAt", "nextStepName", "created-at"),
        ("snake", "created_at", "expires_at", "next_step_name", "created-at"),
        ("kebab", "created-at", "expires-at", "next-step-name", "created_at"),
    ],
)
def test_webhook_bodies_follow_the_webhooks_key_inflection(
    emulator: EmulatorClient, inflection, event_time, expiry, next_step, kebab_key
):
    """KI: a webhook's payloads use the key inflection configured on the webhook itself."""
    with Receiver() as receiver:
        emulator.configure(webhook_urls=[receiver.url], webhook_secrets=["s"], webhook_key_inflection=inflection)
        inquiry = emulator.create_inquiry()
        got = receiver.wait(1)
    event = json.loads(got[0]["body"])["data"]
    assert event["attributes"]["name"] == "inquiry.created"  # values are never inflected
    assert event_time in event["attributes"] and kebab_key not in event["attributes"]
    subject = event["attributes"]["payload"]["data"]
    assert subject["id"] == inquiry["id"] and subject["attributes"]["status"] == "created"
    assert expiry in subject["attributes"] and next_step in subject["attributes"]


def test_an_unknown_key_inflection_is_refused(emulator: EmulatorClient):
    response = emulator.http.post(
        emulator.origin + "/_emulator/config", json={"webhook_key_inflection": "pascal"}, timeout=5
    )
    assert response.status_code == 400
