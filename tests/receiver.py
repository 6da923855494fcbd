"""A webhook receiver on a real socket that records what arrives and answers as told."""

from __future__ import annotations

import time

from werkzeug.wrappers import Request, Response

from tests.servers import LiveServer


class Receiver(LiveServer):
    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])  # answered in turn; then 200
        self.received: list[dict] = []
        super().__init__(self._app)
        self.url = f"{self.url}/hook"

    def _app(self, environ, start_response):
        request = Request(environ)
        self.received.append({"headers": dict(request.headers), "body": request.get_data()})
        status = self.statuses.pop(0) if self.statuses else 200
        return Response("ok", status)(environ, start_response)

    def wait(self, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"got {len(self.received)} webhook(s), wanted {count}")
            time.sleep(0.02)
        return self.received
