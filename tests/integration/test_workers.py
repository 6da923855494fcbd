"""Mail through real processes: a Redis broker, Celery workers and beat, the app under gunicorn,
an SMTP server that comes and goes. Nothing here runs eagerly."""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import create_engine, text

from tests import stack
from tests.builders import PASSWORD, make_user
from tests.pages import csrf_from
from tests.servers import redis_server
from tests.smtp_sink import SmtpSink
from tests.webhook_signer import WEBHOOK_SECRET

pytestmark = pytest.mark.postgres_too


def env_for(database_url: str, broker: str, emulator, tmp_path, sink: SmtpSink, **overrides: str) -> dict[str, str]:
    return stack.app_env(
        {
            "APP_ENV": "development",
            "DATABASE_URL": database_url,
            "REDIS_URL": broker,
            "PERSONA_API_BASE_URL": emulator.api,
            "PERSONA_FLOW_HOST": emulator.host,
            "PERSONA_FLOW_ORIGIN": emulator.origin,
            "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET,
            "PUBLIC_BASE_URL": "http://localhost",
            "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
            "OUTBOX_SWEEP_SECONDS": "1",
            "OUTBOX_STALE_SECONDS": "4",
            "OUTBOX_RETRY_BASE_SECONDS": "1",
            "OUTBOX_RETRY_CAP_SECONDS": "2",
            **sink.env(),
        },
        **overrides,
    )


def ask_for_link(base_url: str, address: str) -> None:
    http = requests.Session()
    page = http.get(base_url + "/recovery/resend", timeout=10)
    answer = http.post(
        base_url + "/recovery/resend", data={"email": address, "csrf_token": csrf_from(page.text)}, timeout=10
    )
    assert answer.status_code == 200


def outbox_rows(database_url: str) -> list[tuple[str, int]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT status, attempts FROM outbox ORDER BY id"))]
    finally:
        engine.dispose()


def test_a_worker_sends_what_a_request_asked_for(app, database_url, emulator, tmp_path, processes):
    """The integration: gunicorn writes the row, Redis carries its id, a worker sends it."""
    make_user(app)
    sink = SmtpSink().start()
    try:
        with redis_server() as broker:
            env = env_for(database_url, broker, emulator, tmp_path, sink)
            processes.append(worker := stack.worker("worker", env, tmp_path))
            web, port = stack.gunicorn("web", env, tmp_path)
            processes.append(web)
            stack.wait_for_worker(worker)
            ask_for_link(f"http://127.0.0.1:{port}", "ada@example.test")
            ask_for_link(f"http://127.0.0.1:{port}", "nobody@example.test")
            stack.wait_until(lambda: sink.to("ada@example.test"), 30, "the email")
            stack.wait_until(lambda: ("dropped", 1) in outbox_rows(database_url), 30, "the unknown address")
    finally:
        sink.stop()
    assert sorted(outbox_rows(database_url)) == [("dropped", 1), ("sent", 1)]
    assert "sent to a***@example.test" in worker.output()
    assert "ada@example.test" not in worker.output() + web.output()  # masked in every log line
    assert "/r/" not in worker.output() + web.output()


def test_an_email_asked_for_while_smtp_is_down_survives_a_kill_of_everything(
    app, database_url, emulator, tmp_path, processes
):
    """SMTP refuses; web, worker, beat and Redis are SIGKILLed (Redis loses every queued task);
    everything restarts; SMTP comes back: the email arrives, once."""
    make_user(app)
    sink = SmtpSink()  # down: nothing listens on its port
    with redis_server() as broker:
        env = env_for(database_url, broker, emulator, tmp_path, sink)
        first = [stack.worker("worker-1", env, tmp_path), stack.beat(env, tmp_path)]
        web, port = stack.gunicorn("web-1", env, tmp_path)
        first.append(web)
        processes.extend(first)
        stack.wait_for_worker(first[0])
        ask_for_link(f"http://127.0.0.1:{port}", "ada@example.test")
        stack.wait_until(lambda: outbox_rows(database_url)[0][1] >= 2, 30, "two failed attempts")
        for process in first:
            process.kill()
        assert outbox_rows(database_url)[0][0] in {"queued", "sending"}
    with redis_server() as fresh_broker:  # a new, empty Redis
        env = env_for(database_url, fresh_broker, emulator, tmp_path, sink)
        second = [stack.worker("worker-2", env, tmp_path), stack.beat(env, tmp_path)]
        processes.extend(second)
        stack.wait_for_worker(second[0])
        time.sleep(2)  # still down for a while after the restart
        assert sink.messages == []
        sink.start()
        try:
            stack.wait_until(lambda: sink.to("ada@example.test"), 60, "the email after SMTP came back")
            time.sleep(6)  # longer than a stale claim: a second copy would have come by now
            assert len(sink.messages) == 1 and sink.delivered_twice() == 0
        finally:
            sink.stop()
    status, attempts = outbox_rows(database_url)[0]
    assert status == "sent" and attempts >= 3


def test_persona_sessions_end_after_persona_comes_back(app, database_url, emulator, tmp_path, processes):
    """Sign out everywhere while Persona refuses `expire-all`: the person is signed out at once;
    the workers (retry, then beat's sweep) end Persona's sessions once it answers again."""
    make_user(app)
    inquiry_id = emulator.create_inquiry(reference_id="pending-later")["id"]
    sink = SmtpSink()
    with redis_server() as broker:
        env = env_for(database_url, broker, emulator, tmp_path, sink)
        processes.append(worker := stack.worker("worker", env, tmp_path))
        processes.append(stack.beat(env, tmp_path))
        web, port = stack.gunicorn("web", env, tmp_path)
        processes.append(web)
        base = f"http://127.0.0.1:{port}"
        http = requests.Session()
        page = http.get(base + "/login", timeout=10)
        login = {"email": "ada@example.test", "password": PASSWORD, "csrf_token": csrf_from(page.text)}
        assert http.post(base + "/login", data=login, timeout=10).status_code == 200
        assert http.get(base + "/verify", timeout=10).status_code == 200  # creates Ada's inquiry
        ada_inquiry = emulator.inquiries()[-1]["id"]
        assert ada_inquiry != inquiry_id
        emulator.call("POST", f"/inquiries/{ada_inquiry}/resume")  # a session Persona holds for her

        def statuses() -> list[str]:
            answer = emulator.call("GET", "/inquiry-sessions", params={"filter[inquiry-id]": ada_inquiry})
            return [s["attributes"]["status"] for s in answer.json()["data"]]

        assert statuses() == ["active"]
        stack.wait_for_worker(worker)
        emulator.fault(path=r"/expire-all$", action="status", status=503)
        account = http.get(base + "/account", timeout=10)
        answer = http.post(
            base + "/account/sign-out-everywhere", data={"csrf_token": csrf_from(account.text)}, timeout=10
        )
        assert answer.status_code == 200 and answer.url.endswith("/login")
        stack.wait_until(lambda: emulator.requests("/expire-all"), 30, "the worker's first try")
        assert statuses() == ["active"]
        emulator.clear_faults()
        stack.wait_until(lambda: statuses() == ["expired"], 60, "Persona's sessions ended by the sweep")
        # The worker clears the mark (and says so) just after Persona's answer.
        stack.wait_until(lambda: "Persona sessions of inquiry" in worker.output(), 30, "the worker's log line")
