"""The official Persona SDK (npm, pinned) embeds the emulator's /widget and gets every callback."""

from __future__ import annotations

from urllib.parse import urlencode

from playwright.sync_api import Page, expect

from tests.emulator_client import EmulatorClient


def events(page: Page) -> list[dict]:
    return page.evaluate("window.events")


def wait_for_event(page: Page, name: str) -> dict:
    page.wait_for_function(f"window.events.some(e => e.name === {name!r})", timeout=10000)
    return next(e for e in events(page) if e["name"] == name)


def boot(page: Page, harness: str, emulator: EmulatorClient, inquiry_id: str, token: str | None = None):
    query = {"inquiryId": inquiry_id, "host": emulator.host}
    if token:
        query["sessionToken"] = token
    page.goto(f"{harness}/?{urlencode(query)}")
    return page.frame_locator("iframe.persona-widget__iframe")


def test_load_ready_then_complete(page: Page, sdk_harness: str, emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    flow = boot(page, sdk_harness, emulator, inquiry["id"])
    wait_for_event(page, "ready")
    assert [e["name"] for e in events(page)][:2] == ["load", "ready"]
    flow.get_by_role("button", name="Continue").click()
    expect(flow.get_by_role("heading", name="Take a photo of your ID")).to_be_visible()
    assert emulator.status(inquiry["id"]) == "pending"
    flow.get_by_role("button", name="Continue").click()
    flow.get_by_role("button", name="Submit").click()
    complete = wait_for_event(page, "complete")["data"]
    assert complete["inquiryId"] == inquiry["id"] and complete["status"] == "completed"
    assert emulator.status(inquiry["id"]) == "completed"


def test_fail_reaches_on_complete_with_failed(page: Page, sdk_harness: str, emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    flow = boot(page, sdk_harness, emulator, inquiry["id"])
    wait_for_event(page, "ready")
    flow.get_by_role("button", name="Fail").click()
    assert wait_for_event(page, "complete")["data"]["status"] == "failed"


def test_exit_reaches_on_cancel_with_the_session(page: Page, sdk_harness: str, emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    emulator.set_status(inquiry["id"], "pending")
    token = emulator.call("POST", f"/inquiries/{inquiry['id']}/resume").json()["meta"]["session-token"]
    flow = boot(page, sdk_harness, emulator, inquiry["id"], token)
    wait_for_event(page, "ready")
    flow.get_by_role("button", name="Exit").click()
    cancel = wait_for_event(page, "cancel")["data"]
    assert cancel == {"inquiryId": inquiry["id"], "sessionToken": token}


def test_sdk_cancel_action_asks_first_unless_forced(page: Page, sdk_harness: str, emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    flow = boot(page, sdk_harness, emulator, inquiry["id"])
    wait_for_event(page, "ready")
    page.evaluate("window.client.cancel(false)")
    expect(flow.get_by_role("heading", name="Leave verification?")).to_be_visible()
    flow.get_by_role("button", name="Exit").click()
    wait_for_event(page, "cancel")


def test_pending_without_token_is_session_expired(page: Page, sdk_harness: str, emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    emulator.set_status(inquiry["id"], "pending")
    flow = boot(page, sdk_harness, emulator, inquiry["id"])
    error = wait_for_event(page, "error")["data"]
    assert error["status"] == 409 and error["code"] == "unauthenticated"
    assert "ready" not in [e["name"] for e in events(page)]
    # The SDK keeps its overlay hidden until open(): the screen is there, not yet shown.
    expect(flow.locator("#expired h1")).to_have_text("Session expired")
    assert flow.locator("#expired").evaluate("el => el.hidden") is False


def test_sessions_expired_mid_flow(page: Page, sdk_harness: str, emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    flow = boot(page, sdk_harness, emulator, inquiry["id"])
    wait_for_event(page, "ready")
    emulator.expire_sessions(inquiry["id"])
    flow.get_by_role("button", name="Continue").click()
    error = wait_for_event(page, "error")["data"]
    assert error["code"] == "unauthenticated"
    expect(flow.get_by_role("heading", name="Session expired")).to_be_visible()
