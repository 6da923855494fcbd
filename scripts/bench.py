"""Benchmarks: prints numbers, asserts nothing. Compare ratios within one run (shared machines).

    make bench

Measures, against the emulator over loopback and the app on Werkzeug's threaded server:
  1. GET /verify for a pending inquiry: token reused (0 Persona calls) vs. minted (1 resume)
  2. POST /webhooks/persona: signed event, stored and applied
  3. the app process's peak memory (RSS)
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.emulator_client import EmulatorClient  # noqa: E402
from tests.servers import LiveServer, emulator_process  # noqa: E402

N = 200
SECRET = "wbhsec_bench"


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
    return f"p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   ({len(samples)} requests)"


def timed(fn, n: int = N) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    import flask_migrate

    from webapp import accounts, create_app
    from webapp.config import TestConfig
    from webapp.extensions import db
    from webapp.models import Inquiry

    work = Path(tempfile.mkdtemp(prefix="bench-"))
    with emulator_process(work) as origin:
        emulator = EmulatorClient(origin)
        settings = {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'bench.db'}",
            "PERSONA_API_BASE_URL": emulator.api,
            "PERSONA_FLOW_HOST": emulator.host,
            "PERSONA_FLOW_ORIGIN": origin,
            "PERSONA_WEBHOOK_SECRETS": [SECRET],
            "RATELIMIT_ENABLED": False,
            "TESTING": False,
            # Every minted request must really mint: no session cap on either side.
            "PERSONA_SESSIONS_PER_INQUIRY": 1_000_000,
        }
        app = create_app(type("Bench", (TestConfig,), settings))
        logging.getLogger("webapp").setLevel(logging.WARNING)  # numbers, not request logs
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        with app.app_context():
            flask_migrate.upgrade()
            user = accounts.create_user("bench@example.test", "bench password 1", confirmed=True)
            inquiry = emulator.create_inquiry(reference_id=user.public_id)
            emulator.set_status(inquiry["id"], "pending")
            db.session.add(Inquiry(persona_id=inquiry["id"], user_id=user.id, status="pending"))
            db.session.commit()
        with LiveServer(app) as server:
            http = requests.Session()
            page = http.get(server.url + "/login").text
            csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
            http.post(
                server.url + "/login",
                data={"email": "bench@example.test", "password": "bench password 1", "csrf_token": csrf},
            )
            http.get(server.url + "/verify")  # mint once

            emulator.clear_requests()
            reused = timed(lambda: http.get(server.url + "/verify"))
            reused_calls = len(emulator.requests())

            def minted():
                with app.app_context():
                    row = db.session.get(Inquiry, 1)
                    row.drop_session_token()
                    db.session.commit()
                http.get(server.url + "/verify")

            emulator.configure(max_sessions_per_inquiry=1_000_000)
            emulator.clear_requests()
            fresh = timed(minted, N // 2)
            resumes = sum(1 for r in emulator.requests() if r["path"].endswith("/resume") and r["status"] == 200)

            counter = itertools.count()

            def webhook():
                body = json.dumps(
                    {
                        "data": {
                            "type": "event",
                            "id": f"evt_bench{next(counter)}",
                            "attributes": {
                                "name": "inquiry.started",
                                "created-at": "2020-01-01T00:00:00.000Z",
                                "payload": {"data": {"type": "inquiry", "id": inquiry["id"], "attributes": {}}},
                            },
                        }
                    }
                ).encode()
                t = int(time.time())
                sig = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
                http.post(
                    server.url + "/webhooks/persona",
                    data=body,
                    headers={"Content-Type": "application/json", "Persona-Signature": f"t={t},v1={sig}"},
                )

            hooks = timed(webhook)

    print(f"GET /verify, token reused (0 Persona calls): {percentiles(reused)}   Persona calls: {reused_calls}")
    print(f"GET /verify, token minted (1 resume call):   {percentiles(fresh)}   resumes: {resumes}")
    print(f"  ratio minted/reused (p50): {statistics.median(fresh) / statistics.median(reused):.2f}x")
    print(f"POST /webhooks/persona (verify+store+apply): {percentiles(hooks)}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (app + client): {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
