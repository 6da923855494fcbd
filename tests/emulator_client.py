"""A small test-side client for the emulator's API and control API (over real HTTP)."""

from __future__ import annotations

import time

import requests

API_KEY = "persona_sandbox_emulator_key"


class EmulatorClient:
    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.host = origin.removeprefix("http://")
        self.api = origin + "/api/v1"
        self.http = requests.Session()

    # -- the Persona API, as an integrator calls it --------------------------------------
    def call(self, method: str, path: str, *, key: str | None = API_KEY, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.http.request(method, self.api + path, headers=headers, timeout=10, **kwargs)

    def create_inquiry(self, reference_id: str = "usr_test", **attrs) -> dict:
        body = {"data": {"attributes": {"inquiry-template-id": "itmpl_test", "reference-id": reference_id, **attrs}}}
        response = self.call("POST", "/inquiries", json=body)
        assert response.status_code == 201, response.text
        return response.json()["data"]

    def inquiry(self, inquiry_id: str) -> dict:
        return self.call("GET", f"/inquiries/{inquiry_id}").json()["data"]

    def status(self, inquiry_id: str) -> str:
        return self.inquiry(inquiry_id)["attributes"]["status"]

    # -- control ---------------------------------------------------------------------------
    def control(self, method: str, path: str, json: dict | None = None) -> requests.Response:
        """Call the control API; every change is sent as JSON (it refuses anything else)."""
        if json is None and method != "GET":
            json = {}
        response = self.http.request(method, f"{self.origin}/_emulator{path}", json=json, timeout=10)
        response.raise_for_status()
        return response

    def reset(self) -> None:
        self.control("POST", "/reset")

    def set_status(self, inquiry_id: str, *statuses: str) -> None:
        for status in statuses:
            self.control("POST", f"/inquiries/{inquiry_id}/status", {"status": status})

    def expire_sessions(self, inquiry_id: str) -> int:
        return self.control("POST", f"/inquiries/{inquiry_id}/sessions/expire").json()["expired"]

    def advance(self, seconds: float) -> None:
        self.control("POST", "/clock", {"advance_seconds": seconds})

    def fault(self, **rule) -> None:
        self.control("POST", "/faults", rule)

    def clear_faults(self) -> None:
        self.control("DELETE", "/faults")

    def publish_template_version(self, template_id: str) -> str:
        """A new published version of the template (inquiries already made keep theirs); its id."""
        return self.control("POST", f"/templates/{template_id}/publish").json()["latest_published_version_id"]

    def configure(self, **settings) -> None:
        self.control("POST", "/config", settings)

    def requests(self, path_contains: str = "/api/v1") -> list[dict]:
        return [r for r in self.control("GET", "/requests").json() if path_contains in r["path"]]

    def clear_requests(self) -> None:
        self.control("DELETE", "/requests")

    def inquiries(self) -> list[dict]:
        return self.control("GET", "/inquiries").json()

    def sessions(self, inquiry_id: str) -> int:
        return next(i["sessions"] for i in self.inquiries() if i["id"] == inquiry_id)

    def webhooks(self) -> dict:
        return self.control("GET", "/webhooks").json()

    def wait_for_deliveries(self, predicate, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            deliveries = self.webhooks()["deliveries"]
            if predicate(deliveries):
                return deliveries
            if time.monotonic() > deadline:
                raise AssertionError(f"deliveries never matched: {deliveries}")
            time.sleep(0.05)
