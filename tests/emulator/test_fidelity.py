"""Contract: where the emulator once parted from Persona's documented behaviour (issue #12).

Each test names the Persona page it follows (FACTS.md source keys); UNCONFIRMED readings are
settings, listed in docs/PERSONA-ASSUMPTIONS.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import requests

from tests.emulator_client import API_KEY, EmulatorClient

DAY = 86400


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def widget(emulator: EmulatorClient, path: str, **body) -> requests.Response:
    return emulator.http.post(f"{emulator.origin}/widget/api/{path}", json=body, timeout=5)


def start_in_flow(emulator: EmulatorClient, inquiry_id: str) -> str:
    """Open a created inquiry in the flow and press Continue (the start); returns the token."""
    token = widget(emulator, "session", inquiryId=inquiry_id).json()["sessionToken"]
    assert widget(emulator, "step", inquiryId=inquiry_id, sessionToken=token, action="continue").status_code == 200
    return token


def resume(emulator: EmulatorClient, inquiry_id: str) -> requests.Response:
    return emulator.call("POST", f"/inquiries/{inquiry_id}/resume", json={"meta": {}})


def event_names(emulator: EmulatorClient, inquiry_id: str | None = None) -> list[str]:
    return [e["name"] for e in emulator.webhooks()["events"] if inquiry_id is None or e["inquiry_id"] == inquiry_id]


# -- 1. expiry (EXP) -------------------------------------------------------------------------
def test_expiry_restarts_when_the_inquiry_starts(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    emulator.advance(23 * 3600)
    start_in_flow(emulator, inquiry["id"])
    attrs = emulator.inquiry(inquiry["id"])["attributes"]
    assert attrs["status"] == "pending"
    assert _when(attrs["expires-at"]) - _when(attrs["started-at"]) == timedelta(days=1)
    emulator.advance(2 * 3600)  # past creation + 24 h: still pending (someone who starts late gets a day)
    assert emulator.status(inquiry["id"]) == "pending"
    emulator.advance(DAY)
    assert emulator.status(inquiry["id"]) == "expired"


def test_start_interval_setting_and_the_old_behaviour_as_a_setting(emulator: EmulatorClient):
    emulator.configure(expiry_after_start_seconds=3600)
    quick = emulator.create_inquiry()
    start_in_flow(emulator, quick["id"])
    attrs = emulator.inquiry(quick["id"])["attributes"]
    assert _when(attrs["expires-at"]) - _when(attrs["started-at"]) == timedelta(hours=1)
    emulator.configure(expiry_after_start_seconds=0, expiry_restarts_at_start=False)
    fixed = emulator.create_inquiry()
    start_in_flow(emulator, fixed["id"])
    assert emulator.inquiry(fixed["id"])["attributes"]["expires-at"] == fixed["attributes"]["expires-at"]


def test_create_time_expiry_overrides(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry(
        **{"expiration-after-create-interval-seconds": 600, "expiration-after-start-interval-seconds": 1200}
    )
    assert _when(inquiry["attributes"]["expires-at"]) - _when(inquiry["attributes"]["created-at"]) == timedelta(
        minutes=10
    )
    start_in_flow(emulator, inquiry["id"])
    attrs = emulator.inquiry(inquiry["id"])["attributes"]
    assert _when(attrs["expires-at"]) - _when(attrs["started-at"]) == timedelta(minutes=20)
    in_meta = emulator.call(
        "POST",
        "/inquiries",
        json={
            "data": {"attributes": {"inquiry-template-id": "itmpl_x"}},
            "meta": {"expiration_after_create_interval_seconds": 300},
        },
    ).json()["data"]["attributes"]
    assert _when(in_meta["expires-at"]) - _when(in_meta["created-at"]) == timedelta(minutes=5)
    bad = emulator.call(
        "POST",
        "/inquiries",
        json={"data": {"attributes": {"inquiry-template-id": "x", "expiration-after-create-interval-seconds": "soon"}}},
    )
    assert bad.status_code == 400 and bad.json()["errors"]


# -- 2. created inquiries in the flow --------------------------------------------------------
def test_created_inquiry_opens_in_the_flow_when_resume_refuses_created(emulator: EmulatorClient):
    emulator.configure(resume_allows_created=False)
    inquiry = emulator.create_inquiry()
    opened = widget(emulator, "session", inquiryId=inquiry["id"])
    assert opened.status_code == 200 and opened.json()["sessionToken"]


def test_created_inquiry_at_the_session_cap_is_a_defined_flow_error(emulator: EmulatorClient):
    emulator.configure(max_sessions_per_inquiry=1)
    inquiry = emulator.create_inquiry()
    assert widget(emulator, "session", inquiryId=inquiry["id"]).status_code == 200  # one device, one session
    capped = widget(emulator, "session", inquiryId=inquiry["id"])  # another device: a new session is needed
    assert capped.headers["Content-Type"].startswith("application/json")
    error = capped.json()["error"]
    assert capped.status_code == 429 and error["code"] == "unknown" and error["status"] == 429


# -- 3. list ---------------------------------------------------------------------------------
def test_list_pages_with_cursors_and_links(emulator: EmulatorClient):
    made = [emulator.create_inquiry("usr_page")["id"] for _ in range(5)]
    newest_first = list(reversed(made))

    def page(url: str) -> dict:
        response = emulator.http.get(emulator.origin + url, headers={"Authorization": "Bearer " + API_KEY})
        assert response.status_code == 200, response.text
        return response.json()

    first = page("/api/v1/inquiries?filter[reference-id]=usr_page&page[size]=2")
    assert [i["id"] for i in first["data"]] == newest_first[:2] and first["links"]["prev"] is None
    query = parse_qs(urlsplit(first["links"]["next"]).query)
    assert query["page[after]"] == [newest_first[1]] and query["filter[reference-id]"] == ["usr_page"]
    second = page(first["links"]["next"])
    assert [i["id"] for i in second["data"]] == newest_first[2:4]
    third = page(second["links"]["next"])
    assert [i["id"] for i in third["data"]] == newest_first[4:] and third["links"]["next"] is None
    back = page(second["links"]["prev"])
    assert [i["id"] for i in back["data"]] == newest_first[:2]
    assert emulator.call("GET", "/inquiries?page[after]=inq_unknown").status_code == 400


def test_list_filters_persona_documents_and_400_for_others(emulator: EmulatorClient):
    a = emulator.create_inquiry("usr_f")
    b = emulator.create_inquiry("usr_f", **{"inquiry-template-id": "itmpl_other"})
    c = emulator.create_inquiry("usr_g")
    emulator.set_status(b["id"], "pending")
    account = a["relationships"]["account"]["data"]["id"]
    assert b["relationships"]["account"]["data"]["id"] == account != c["relationships"]["account"]["data"]["id"]

    def ids(query: str) -> set[str]:
        response = emulator.call("GET", "/inquiries?" + query)
        assert response.status_code == 200, (query, response.text)
        return {i["id"] for i in response.json()["data"]}

    assert ids(f"filter[account-id]={account}") == {a["id"], b["id"]}
    assert ids("filter[inquiry-template-id]=itmpl_other") == {b["id"]}
    assert ids("filter[template-id]=itmpl_test") == {a["id"], c["id"]}
    assert ids(f"filter[inquiry-id]={a['id']},{c['id']}") == {a["id"], c["id"]}
    assert ids("filter[status][]=pending&filter[status][]=completed") == {b["id"]}
    assert ids("filter[status]=created") == {a["id"], c["id"]}
    created = c["attributes"]["created-at"]
    assert ids(f"filter[created-at-start]={created}") == {c["id"]}
    assert c["id"] not in ids(f"filter[created-at-end]={a['attributes']['created-at']}")
    for bad in ("filter[reference_idd]=x", "filter[email]=a@b", "filter[inquiry-id]=" + ",".join(["inq_x"] * 101)):
        refused = emulator.call("GET", "/inquiries?" + bad)
        assert refused.status_code == 400 and refused.json()["errors"], bad


# -- 4. flow errors (ECB) --------------------------------------------------------------------
def test_an_unknown_inquiry_in_the_flow_is_not_invalid_config_with_404(emulator: EmulatorClient):
    answer = widget(emulator, "session", inquiryId="inq_doesnotexist")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "unknown"
    emulator.configure(widget_not_found_error_code="invalid_config")
    answer = widget(emulator, "session", inquiryId="inq_doesnotexist")
    assert answer.json()["error"] == {"status": 400, "code": "invalid_config", "message": "Inquiry not found"}


# -- 5. webhook events (EVT) -----------------------------------------------------------------
def test_transitions_and_session_events(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    iid = inquiry["id"]
    token = start_in_flow(emulator, iid)
    assert event_names(emulator, iid) == [
        "inquiry.created",
        "inquiry-session.started",
        "inquiry.started",
        "inquiry.transitioned",
    ]
    session_event = emulator.webhooks()["events"][1]
    assert session_event["inquiry_id"] == iid
    emulator.call("POST", f"/inquiries/{iid}/expire")
    assert event_names(emulator, iid)[-2:] == ["inquiry-session.expired", "inquiry.expired"]
    assert widget(emulator, "session", inquiryId=iid, sessionToken=token).status_code == 409
    fresh = resume(emulator, iid).json()["meta"]["session-token"]
    widget(emulator, "session", inquiryId=iid, sessionToken=fresh)
    emulator.call("DELETE", f"/inquiries/{iid}")
    assert event_names(emulator, iid)[-2:] == ["inquiry-session.canceled", "inquiry.redacted"]


# -- 7. unused session tokens (RES) ----------------------------------------------------------
def test_an_unused_token_dies_24_hours_after_minting_a_used_one_lives_on(emulator: EmulatorClient):
    emulator.configure(expiry_after_create_seconds=3 * DAY, expiry_after_resume_seconds=3 * DAY)
    unused, used = emulator.create_inquiry(), emulator.create_inquiry()
    for inquiry in (unused, used):
        emulator.set_status(inquiry["id"], "pending")
    unused_token = resume(emulator, unused["id"]).json()["meta"]["session-token"]
    used_token = resume(emulator, used["id"]).json()["meta"]["session-token"]
    assert widget(emulator, "session", inquiryId=used["id"], sessionToken=used_token).status_code == 200
    emulator.advance(DAY + 60)
    dead = widget(emulator, "session", inquiryId=unused["id"], sessionToken=unused_token)
    assert dead.status_code == 409 and dead.json()["error"]["code"] == "unauthenticated"
    assert widget(emulator, "session", inquiryId=used["id"], sessionToken=used_token).status_code == 200
    fresh = resume(emulator, unused["id"]).json()["meta"]["session-token"]
    assert fresh != unused_token
    assert widget(emulator, "session", inquiryId=unused["id"], sessionToken=fresh).status_code == 200


def test_an_unused_token_dies_with_the_inquiry_when_that_is_sooner(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry(**{"expiration-after-create-interval-seconds": 3600})
    token = resume(emulator, inquiry["id"]).json()["meta"]["session-token"]
    emulator.advance(3601)
    assert widget(emulator, "session", inquiryId=inquiry["id"], sessionToken=token).status_code == 409


# -- 8. the SDK's parameters (EPAR) ----------------------------------------------------------
def test_the_flow_speaks_the_language_it_is_given(emulator: EmulatorClient):
    expected = {"es": "Continuar", "fr": "Continuer", "de": "Weiter", "pt-BR": "Continuar", "ar": "متابعة"}
    for language, word in expected.items():
        page = emulator.http.get(emulator.origin + "/widget", params={"inquiry-id": "inq_1", "language": language})
        assert f">{word}</button>" in page.text, language
        assert f'lang="{language}"' in page.text
    assert 'dir="rtl"' in emulator.http.get(emulator.origin + "/widget?language=ar").text
    assert 'lang="es"' in emulator.http.get(emulator.origin + "/widget?language=es-MX").text
    assert 'lang="pt-BR"' in emulator.http.get(emulator.origin + "/widget?language=pt").text
    fallback = emulator.http.get(emulator.origin + "/widget?language=ja").text
    assert 'lang="en"' in fallback and ">Continue</button>" in fallback


def test_the_sdk_parameters_are_recorded_never_the_token(emulator: EmulatorClient):
    emulator.http.get(
        emulator.origin + "/widget",
        params={
            "inquiry-id": "inq_1",
            "session-token": "secret-token-value",
            "environment-id": "env_123",
            "reference-id": "usr_9",
            "language": "de",
            "fields[email-address]": "ada@example.test",
        },
        timeout=5,
    )
    loads = emulator.control("GET", "/flows").json()
    assert loads[-1]["environment_id"] == "env_123" and loads[-1]["reference_id"] == "usr_9"
    assert loads[-1]["fields"] == {"email-address": "ada@example.test"} and loads[-1]["language"] == "de"
    assert "secret-token-value" not in str(loads)


# -- 9. more of the API (APIR) ---------------------------------------------------------------
def test_inquiry_sessions_api(emulator: EmulatorClient):
    inquiry, other = emulator.create_inquiry(), emulator.create_inquiry()
    emulator.set_status(inquiry["id"], "pending")  # a pending inquiry opens only with a live token
    first = resume(emulator, inquiry["id"]).json()["meta"]["session-token"]
    assert widget(emulator, "session", inquiryId=inquiry["id"], sessionToken=first).status_code == 200
    second = resume(emulator, inquiry["id"]).json()["meta"]["session-token"]  # first is used: a second session
    widget(emulator, "session", inquiryId=other["id"])
    listed = emulator.call("GET", f"/inquiry-sessions?filter[inquiry-id]={inquiry['id']}").json()["data"]
    assert len(listed) == 2 and all(s["type"] == "inquiry-session" for s in listed)
    assert {s["attributes"]["status"] for s in listed} == {"active"}
    assert all(s["relationships"]["inquiry"]["data"]["id"] == inquiry["id"] for s in listed)
    started = [s for s in listed if s["attributes"]["started-at"]]
    assert len(started) == 1
    expired = emulator.call("POST", f"/inquiry-sessions/{started[0]['id']}/expire").json()["data"]
    assert expired["attributes"]["status"] == "expired" and expired["attributes"]["expired-at"]
    assert widget(emulator, "session", inquiryId=inquiry["id"], sessionToken=first).status_code == 409
    assert widget(emulator, "session", inquiryId=inquiry["id"], sessionToken=second).status_code == 200
    all_expired = emulator.call(
        "POST", "/inquiry-sessions/expire-all", json={"meta": {"inquiry-ids": [inquiry["id"], other["id"]]}}
    )
    assert all_expired.status_code == 200 and len(all_expired.json()["data"]) == 2
    assert widget(emulator, "session", inquiryId=inquiry["id"], sessionToken=second).status_code == 409
    assert emulator.call("GET", "/inquiry-sessions?filter[status]=active").status_code == 400
    assert emulator.call("POST", "/inquiry-sessions/expire-all", json={"meta": {}}).status_code == 400
    assert emulator.call("POST", "/inquiry-sessions/iqse_nope/expire").status_code == 404


def test_delete_redacts_the_inquiry(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry(fields={"name-first": "Ada"})
    emulator.set_status(inquiry["id"], "pending")
    redacted = emulator.call("DELETE", f"/inquiries/{inquiry['id']}")
    assert redacted.status_code == 200
    attrs = redacted.json()["data"]["attributes"]
    assert attrs["redacted-at"] and attrs["fields"] == {}
    assert resume(emulator, inquiry["id"]).status_code == 409
    assert event_names(emulator, inquiry["id"])[-1] == "inquiry.redacted"


def test_generate_one_time_link(emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    answer = emulator.call("POST", f"/inquiries/{inquiry['id']}/generate-one-time-link", json={"meta": {}})
    assert answer.status_code == 200
    meta = answer.json()["meta"]
    assert "/verify?code=" in meta["one-time-link"] and meta["one-time-link-short"]
    emulator.call("POST", f"/inquiries/{inquiry['id']}/expire")
    refused = emulator.call("POST", f"/inquiries/{inquiry['id']}/generate-one-time-link")
    assert refused.status_code == 409 and refused.json()["errors"]


def test_create_with_an_inquiry_session(emulator: EmulatorClient):
    answer = emulator.call(
        "POST",
        "/inquiries",
        json={
            "data": {"attributes": {"inquiry-template-id": "itmpl_x"}},
            "meta": {"auto-create-inquiry-session": True},
        },
    )
    assert answer.status_code == 201
    token = answer.json()["meta"]["session-token"]
    inquiry_id = answer.json()["data"]["id"]
    assert emulator.sessions(inquiry_id) == 1
    assert widget(emulator, "session", inquiryId=inquiry_id, sessionToken=token).json()["sessionToken"] == token
    assert emulator.sessions(inquiry_id) == 1  # the flow used that session, not a new one


# -- template versions (RES: compare the inquiry's version with the template's latest) ----------
def test_an_inquiry_keeps_its_template_version_and_include_shows_the_latest(emulator: EmulatorClient):
    first = emulator.create_inquiry()
    version = first["relationships"]["inquiry-template-version"]["data"]["id"]
    assert version.startswith("itmplv_")

    def read(inquiry_id: str, include: str = "inquiry-template") -> requests.Response:
        return emulator.call("GET", f"/inquiries/{inquiry_id}", params={"include": include} if include else None)

    (template,) = read(first["id"]).json()["included"]
    assert template["type"] == "inquiry-template" and template["id"] == "itmpl_test"
    assert template["relationships"]["latest-published-version"]["data"]["id"] == version
    newer = emulator.publish_template_version("itmpl_test")
    assert newer.startswith("itmplv_") and newer != version
    again = read(first["id"]).json()
    assert again["data"]["relationships"]["inquiry-template-version"]["data"]["id"] == version
    assert again["included"][0]["relationships"]["latest-published-version"]["data"]["id"] == newer
    second = emulator.create_inquiry()
    assert second["relationships"]["inquiry-template-version"]["data"]["id"] == newer
    assert read(first["id"], include="").json()["included"] == []
    assert read(first["id"], include="reports").status_code == 400
