"""Contract: the emulated Persona REST API behaves as FACTS.md documents, over real HTTP."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.emulator_client import API_KEY, EmulatorClient


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_missing_or_wrong_key_is_401_with_persona_errors_and_request_id(emulator: EmulatorClient):
    for key in (None, "persona_sandbox_wrong"):
        response = emulator.call("GET", "/inquiries", key=key)
        assert response.status_code == 401
        assert response.json()["errors"][0]["title"]
        assert response.headers["Request-Id"].startswith("req_")


def test_configured_keys_replace_the_default(emulator: EmulatorClient):
    emulator.configure(api_keys=["persona_sandbox_other"])
    assert emulator.call("GET", "/inquiries").status_code == 401
    assert emulator.call("GET", "/inquiries", key="persona_sandbox_other").status_code == 200


def test_create_returns_201_with_kebab_case_attributes(emulator: EmulatorClient):
    response = emulator.call(
        "POST",
        "/inquiries",
        headers={"Persona-Version": "2025-10-27"},
        json={
            "data": {
                "attributes": {
                    "inquiry-template-id": "itmpl_x",
                    "reference-id": "usr_1",
                    "fields": {"name-first": "Ada"},
                    "note": "hi",
                }
            }
        },
    )
    assert response.status_code == 201
    data = response.json()["data"]
    attrs = data["attributes"]
    assert data["type"] == "inquiry" and data["id"].startswith("inq_")
    assert attrs["status"] == "created" and attrs["reference-id"] == "usr_1"
    assert attrs["fields"]["name-first"] == {"type": "string", "value": "Ada"}
    for name in (
        "created-at",
        "started-at",
        "completed-at",
        "failed-at",
        "expired-at",
        "expires-at",
        "decisioned-at",
        "redacted-at",
        "next-step-name",
    ):
        assert name in attrs
    assert (_when(attrs["expires-at"]) - _when(attrs["created-at"])).total_seconds() == 86400


def test_template_id_alias_and_missing_template(emulator: EmulatorClient):
    ok = emulator.call("POST", "/inquiries", json={"data": {"attributes": {"template-id": "tmpl_1"}}})
    assert ok.status_code == 201
    missing = emulator.call("POST", "/inquiries", json={"data": {"attributes": {}}})
    assert missing.status_code == 422 and missing.json()["errors"]


def test_idempotency_key_replays_and_refuses_another_body(emulator: EmulatorClient):
    body = {"data": {"attributes": {"inquiry-template-id": "itmpl_x", "reference-id": "usr_2"}}}
    first = emulator.call("POST", "/inquiries", json=body, headers={"Idempotency-Key": "k1"})
    again = emulator.call("POST", "/inquiries", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert first.json()["data"]["id"] == again.json()["data"]["id"]
    assert len(emulator.inquiries()) == 1
    other = dict(body, data={"attributes": {"inquiry-template-id": "itmpl_x", "reference-id": "usr_3"}})
    clash = emulator.call("POST", "/inquiries", json=other, headers={"Idempotency-Key": "k1"})
    assert clash.status_code == 422 and clash.json()["errors"]


def test_retrieve_and_unknown_id(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    assert emulator.call("GET", f"/inquiries/{inquiry['id']}").json()["data"]["id"] == inquiry["id"]
    missing = emulator.call("GET", "/inquiries/inq_doesnotexist")
    assert missing.status_code == 404 and missing.json()["errors"]
    assert missing.headers["Request-Id"]


def test_list_filters_newest_first_and_page_size(emulator: EmulatorClient):
    a = emulator.create_inquiry("usr_a")
    b = emulator.create_inquiry("usr_a")
    c = emulator.create_inquiry("usr_a")
    emulator.create_inquiry("usr_other")
    emulator.set_status(b["id"], "pending")
    emulator.set_status(c["id"], "pending", "completed")

    def ids(query: str) -> list[str]:
        return [i["id"] for i in emulator.call("GET", "/inquiries?" + query).json()["data"]]

    assert ids("filter[reference-id]=usr_a") == [c["id"], b["id"], a["id"]]
    assert ids("filter[reference-id]=usr_a&filter[status]=created,pending") == [b["id"], a["id"]]
    assert ids("filter[reference-id]=usr_a&filter[status]=created,pending&page[size]=1") == [b["id"]]
    assert emulator.call("GET", "/inquiries?page[size]=0").status_code == 400


@pytest.mark.parametrize("walk", [[], ["pending"], ["pending", "expired"]])
def test_resume_allowed_for_created_pending_expired(emulator: EmulatorClient, walk):
    inquiry = emulator.create_inquiry()
    emulator.set_status(inquiry["id"], *walk)
    response = emulator.call("POST", f"/inquiries/{inquiry['id']}/resume", json={"meta": {}})
    assert response.status_code == 200
    body = response.json()
    assert body["data"]["id"] == inquiry["id"]
    assert isinstance(body["meta"]["session-token"], str) and body["meta"]["session-token"]
    expected = "created" if not walk else "pending"
    assert body["data"]["attributes"]["status"] == expected


def test_resume_of_created_can_be_switched_off(emulator: EmulatorClient):
    emulator.configure(resume_allows_created=False)
    inquiry = emulator.create_inquiry()
    assert emulator.call("POST", f"/inquiries/{inquiry['id']}/resume").status_code == 409


@pytest.mark.parametrize(
    "walk",
    [
        ["pending", "completed"],
        ["pending", "failed"],
        ["pending", "completed", "approved"],
        ["pending", "completed", "declined"],
        ["pending", "completed", "needs_review"],
        ["redacted"],
    ],
)
def test_resume_of_final_or_redacted_is_409(emulator: EmulatorClient, walk):
    inquiry = emulator.create_inquiry()
    emulator.set_status(inquiry["id"], *walk)
    response = emulator.call("POST", f"/inquiries/{inquiry['id']}/resume")
    assert response.status_code == 409
    assert response.json()["errors"][0]["title"]


def test_resume_of_expired_sets_a_new_expiry(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    emulator.set_status(inquiry["id"], "pending")
    emulator.advance(86400 + 60)
    assert emulator.status(inquiry["id"]) == "expired"
    resumed = emulator.call("POST", f"/inquiries/{inquiry['id']}/resume").json()["data"]["attributes"]
    assert resumed["status"] == "pending"
    assert (_when(resumed["expires-at"]) - _when(inquiry["attributes"]["expires-at"])).total_seconds() > 86400


def test_resume_reuses_an_unused_session_then_opens_new_ones_up_to_the_cap(emulator: EmulatorClient):
    emulator.configure(max_sessions_per_inquiry=2)
    inquiry = emulator.create_inquiry()
    emulator.set_status(inquiry["id"], "pending")
    path = f"/inquiries/{inquiry['id']}/resume"
    first = emulator.call("POST", path).json()["meta"]["session-token"]
    emulator.call("POST", path)
    assert emulator.sessions(inquiry["id"]) == 1  # unused session reused
    _open_in_widget(emulator, inquiry["id"], first)  # now it is used
    second = emulator.call("POST", path).json()["meta"]["session-token"]
    assert emulator.sessions(inquiry["id"]) == 2
    _open_in_widget(emulator, inquiry["id"], second)
    capped = emulator.call("POST", path)
    assert capped.status_code == 429 and capped.json()["errors"]


def _open_in_widget(emulator: EmulatorClient, inquiry_id: str, token: str | None):
    return emulator.http.post(
        emulator.origin + "/widget/api/session", json={"inquiryId": inquiry_id, "sessionToken": token}, timeout=5
    )


def test_sessions_die_with_the_inquiry_expiry_they_were_born_with(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    emulator.set_status(inquiry["id"], "pending")
    token = emulator.call("POST", f"/inquiries/{inquiry['id']}/resume").json()["meta"]["session-token"]
    assert _open_in_widget(emulator, inquiry["id"], token).status_code == 200
    emulator.advance(86400 + 1)
    dead = _open_in_widget(emulator, inquiry["id"], token)
    assert dead.status_code == 409 and dead.json()["error"]["code"] == "unauthenticated"
    fresh = emulator.call("POST", f"/inquiries/{inquiry['id']}/resume").json()["meta"]["session-token"]
    assert _open_in_widget(emulator, inquiry["id"], fresh).status_code == 200
    assert _open_in_widget(emulator, inquiry["id"], token).status_code == 409


def test_expire_endpoint(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    emulator.set_status(inquiry["id"], "pending")
    token = emulator.call("POST", f"/inquiries/{inquiry['id']}/resume").json()["meta"]["session-token"]
    expired = emulator.call("POST", f"/inquiries/{inquiry['id']}/expire").json()["data"]["attributes"]
    assert expired["status"] == "expired" and expired["expired-at"]
    assert _open_in_widget(emulator, inquiry["id"], token).status_code == 409
    assert emulator.call("POST", f"/inquiries/{inquiry['id']}/resume").status_code == 200


def test_decisions_follow_the_lifecycle(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    iid = inquiry["id"]
    emulator.set_status(iid, "pending")
    assert emulator.call("POST", f"/inquiries/{iid}/approve").status_code == 409
    emulator.set_status(iid, "completed")
    review = emulator.call("POST", f"/inquiries/{iid}/mark-for-review")
    assert review.json()["data"]["attributes"]["status"] == "needs_review"
    approved = emulator.call("POST", f"/inquiries/{iid}/approve").json()["data"]["attributes"]
    assert approved["status"] == "approved" and approved["decisioned-at"]
    assert emulator.call("POST", f"/inquiries/{iid}/mark-for-review").status_code == 409
    assert emulator.status(iid) == "approved"
    declined = emulator.call("POST", f"/inquiries/{iid}/decline").json()["data"]["attributes"]
    assert declined["status"] == "declined"


def test_rate_limit_answers_429_with_headers(emulator: EmulatorClient):
    emulator.configure(rate_limit_per_minute=3)
    answers = [emulator.call("GET", "/inquiries") for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    limited = answers[3]
    if limited.status_code == 200:  # the minute rolled over between calls: try once more
        limited = [emulator.call("GET", "/inquiries") for _ in range(4)][-1]
    assert limited.status_code == 429
    assert limited.headers["RateLimit-Limit"] == "3"
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert 0 < int(limited.headers["RateLimit-Reset"]) <= 60


def test_bad_json_body_is_a_400(emulator: EmulatorClient):
    response = emulator.call("POST", "/inquiries", data="{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["errors"]


def test_request_log_never_holds_the_key_or_a_token(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    token = emulator.call("POST", f"/inquiries/{inquiry['id']}/resume").json()["meta"]["session-token"]
    log = json.dumps(emulator.control("GET", "/requests").json())
    assert API_KEY not in log and token not in log
    assert any(r["path"].endswith("/resume") and r["status"] == 200 for r in emulator.requests())


def test_idempotency_keys_are_pruned_after_24_hours_of_emulator_time(emulator: EmulatorClient):
    body = {"data": {"attributes": {"inquiry-template-id": "itmpl_x", "reference-id": "usr_p"}}}
    first = emulator.call("POST", "/inquiries", json=body, headers={"Idempotency-Key": "kp"})
    emulator.advance(86400 - 60)
    again = emulator.call("POST", "/inquiries", json=body, headers={"Idempotency-Key": "kp"})
    assert again.json()["data"]["id"] == first.json()["data"]["id"]  # still remembered
    emulator.advance(120)
    other = dict(body, data={"attributes": {"inquiry-template-id": "itmpl_x", "reference-id": "usr_q"}})
    later = emulator.call("POST", "/inquiries", json=other, headers={"Idempotency-Key": "kp"})
    assert later.status_code == 201 and later.json()["data"]["id"] != first.json()["data"]["id"]


def test_a_5xx_answered_under_a_key_is_replayed_for_that_key(emulator: EmulatorClient):
    body = {"data": {"attributes": {"inquiry-template-id": "itmpl_x", "reference-id": "usr_5"}}}
    emulator.fault(method="POST", path="^/api/v1/inquiries$", action="status", status=500, count=1)
    failed = emulator.call("POST", "/inquiries", json=body, headers={"Idempotency-Key": "k5"})
    assert failed.status_code == 500
    replayed = emulator.call("POST", "/inquiries", json=body, headers={"Idempotency-Key": "k5"})
    assert replayed.status_code == 500 and replayed.json() == failed.json()
    fresh = emulator.call("POST", "/inquiries", json=body, headers={"Idempotency-Key": "k6"})
    assert fresh.status_code == 201
    assert len(emulator.inquiries()) == 1
