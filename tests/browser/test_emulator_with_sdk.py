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


def boot(
    page: Page, harness: str, emulator: EmulatorClient, inquiry_id: str, token: str | None = None, language: str = ""
):
    query = {"inquiryId": inquiry_id, "host": emulator.host}
    if token:
        query["sessionToken"] = token
    if language:
        query["language"] = language
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


def sdk_events(page: Page, name: str) -> list[dict]:
    return [e["metadata"] for e in page.evaluate("window.sdkEvents") if e["name"] == name]


def test_on_event_gets_start_page_changes_and_camera_events(page: Page, sdk_harness: str, emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    flow = boot(page, sdk_harness, emulator, inquiry["id"])
    wait_for_event(page, "ready")
    page.wait_for_function("window.sdkEvents.some(e => e.name === 'start')")
    assert sdk_events(page, "start") == [{"inquiryId": inquiry["id"]}]
    first = sdk_events(page, "page-change")[0]
    assert first["name"] == "select_id_type" and first["nameDisplay"] == "Choose your ID type"
    assert first["path"] and isinstance(first["metadata"]["pageHeight"], int)  # 0 while the SDK hides it
    flow.get_by_role("button", name="Continue").click()
    page.wait_for_function("window.sdkEvents.filter(e => e.name === 'page-change').length === 2")
    second = sdk_events(page, "page-change")[1]
    assert second["name"] == "document_front" and second["metadata"]["pageHeight"] > 0
    assert sdk_events(page, "document-camera-select")
    flow.get_by_role("button", name="Continue").click()
    page.wait_for_function("window.sdkEvents.some(e => e.name === 'selfie-camera-select')")
    assert sdk_events(page, "document-camera-capture")


def test_a_network_failure_offers_a_retry_in_the_frame_not_on_error(
    page: Page, sdk_harness: str, emulator: EmulatorClient
):
    inquiry = emulator.create_inquiry()
    page.route("**/widget/api/session", lambda route: route.abort())
    flow = boot(page, sdk_harness, emulator, inquiry["id"])
    # The SDK keeps its overlay hidden until ready: the screen is there, not yet shown.
    expect(flow.locator("#offline h1")).to_have_text("No connection")
    assert flow.locator("#offline").evaluate("el => el.hidden") is False
    assert "error" not in [e["name"] for e in events(page)]
    page.evaluate("window.client.open()")
    page.unroute("**/widget/api/session")
    flow.get_by_role("button", name="Try again").click()
    wait_for_event(page, "ready")
    expect(flow.get_by_role("heading", name="Choose your ID type")).to_be_visible()
    assert "error" not in [e["name"] for e in events(page)]


def test_the_sdk_language_option_reaches_the_flow(page: Page, sdk_harness: str, emulator: EmulatorClient):
    inquiry = emulator.create_inquiry()
    flow = boot(page, sdk_harness, emulator, inquiry["id"], language="ar")
    wait_for_event(page, "ready")
    expect(flow.get_by_role("button", name="متابعة")).to_be_visible()
    assert flow.locator("html").get_attribute("dir") == "rtl"
    assert emulator.control("GET", "/flows").json()[-1]["language"] == "ar"
