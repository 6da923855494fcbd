"""Liveness and readiness for a load balancer, and the request id that ties logs to answers."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.postgres_too


def test_live_and_ready(client):
    live, ready = client.get("/healthz"), client.get("/readyz")
    assert live.status_code == 200 and live.get_json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ok", "database": "ok", "persona": "ok"}
    assert live.headers["X-Request-Id"] != ready.headers["X-Request-Id"]


def test_a_database_outage_is_not_ready_but_alive_and_logged_with_the_request_id(make_app, tmp_path, app_log):
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/no/such/dir/app.db")
    client = app.test_client()
    assert client.get("/healthz").status_code == 200  # a restart would not help: stay alive
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
    assert ready.get_json() == {"status": "unavailable", "database": "unavailable", "persona": "ok"}
    assert "Traceback" not in ready.get_data(as_text=True)
    line = f"WARNING webapp.views.main [{ready.headers['X-Request-Id']}] not ready: the database does not answer"
    assert line in app_log.getvalue()


def test_persona_failing_is_reported_but_keeps_the_app_ready(app, client):
    breaker = app.extensions["persona"].breaker
    for _ in range(breaker.threshold):
        breaker.record(False)
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["persona"] == "failing"


def test_a_mail_job_logs_under_the_request_that_queued_it(app, emulator, app_log):
    from tests.builders import make_user
    from tests.pages import csrf_from

    make_user(app)
    client = app.test_client()
    page = client.get("/recovery/resend")
    answer = client.post(
        "/recovery/resend", data={"email": "ada@example.test", "csrf_token": csrf_from(page.get_data(as_text=True))}
    )
    sent = [line for line in app_log.getvalue().splitlines() if "webapp.outbox" in line and "sent to" in line]
    assert len(sent) == 1 and f"[{answer.headers['X-Request-Id']}]" in sent[0]


def test_metrics_need_the_token_or_a_direct_loopback_connection(make_app):
    open_app = make_app(METRICS_TOKEN="")
    direct = open_app.test_client().get("/metrics")  # the test client connects from 127.0.0.1
    assert direct.status_code == 200 and direct.mimetype == "text/plain"
    assert b"outbox_open 0.0" in direct.data and b"persona_breaker_open 0.0" in direct.data
    assert open_app.test_client().get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    assert open_app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "10.0.0.5"}).status_code == 404
    locked = make_app(METRICS_TOKEN="a-scrape-token").test_client()
    assert locked.get("/metrics").status_code == 404
    assert locked.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert locked.get("/metrics", headers={"Authorization": "Bearer a-scrape-token"}).status_code == 200
