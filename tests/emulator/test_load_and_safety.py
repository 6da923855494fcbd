"""Contract: the emulator as a load upstream (latency, persistence) and what it must never keep or accept."""

from __future__ import annotations

import json
import time

from tests.emulator_client import EmulatorClient


def test_latency_setting_delays_every_api_answer(emulator: EmulatorClient):
    emulator.configure(latency="300ms")
    started = time.monotonic()
    assert emulator.call("GET", "/inquiries").status_code == 200
    assert time.monotonic() - started >= 0.3
    emulator.configure(latency="lognormal:1ms:5ms")  # a distribution: accepted
    assert emulator.control("GET", "/config").json()["latency"] == "lognormal:1ms:5ms"
    for bad in ("fast", "300-100ms", "lognormal:5ms:1ms", 150):
        response = emulator.http.post(emulator.origin + "/_emulator/config", json={"latency": bad}, timeout=5)
        assert response.status_code == 400, bad


def test_request_log_never_keeps_a_session_token_from_the_widget_url(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    token = emulator.call("POST", f"/inquiries/{inquiry['id']}/resume").json()["meta"]["session-token"]
    page = emulator.http.get(
        emulator.origin + "/widget", params={"inquiry-id": inquiry["id"], "session-token": token}, timeout=5
    )
    assert page.status_code == 200
    log = emulator.requests("/widget")
    assert log and log[0]["query"].startswith("inquiry-id=")
    assert token not in json.dumps(emulator.control("GET", "/requests").json())


def test_control_api_refuses_what_a_cross_site_form_can_send(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    for content_type, body in (
        ("application/x-www-form-urlencoded", "status=approved"),
        ("text/plain", '{"status": "approved"}'),
        ("multipart/form-data; boundary=x", "--x--"),
    ):
        refused = emulator.http.post(
            f"{emulator.origin}/_emulator/inquiries/{inquiry['id']}/status",
            data=body,
            headers={"Content-Type": content_type},
            timeout=5,
        )
        assert refused.status_code == 415 and refused.json()["errors"], content_type
    assert emulator.http.post(emulator.origin + "/_emulator/reset", data="", timeout=5).status_code == 415
    assert emulator.status(inquiry["id"]) == "created"  # nothing changed, nothing reset
