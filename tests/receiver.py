"""A webhook receiver on a real socket that records what arrives and answers as told."""

from __future__ import annotations

import threading
import time

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.servers import free_port, wait_for_port


class Receiver:
    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])  # answered in turn; then 200
        self.received: list[dict] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._server = make_server("127.0.0.1", self.port, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

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

    def __enter__(self) -> Receiver:
        self._thread.start()
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
