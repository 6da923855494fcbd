"""Races: two tabs at once, two app processes (gunicorn) redeeming one link."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select

from tests.builders import PASSWORD, give_inquiry, make_user, new_link
from tests.pages import csrf_from
from tests.servers import ROOT, free_port, process_ended, wait_for_port
from webapp.extensions import db
from webapp.models import Inquiry

pytestmark = pytest.mark.postgres_too


def signed_in_session(base: str, email: str = "ada@example.test") -> requests.Session:
    http = requests.Session()
    page = http.get(base + "/login", timeout=10).text
    http.post(
        base + "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page)},
        timeout=10,
        allow_redirects=False,
    )
    return http


def in_parallel(count: int, fn) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        results[index] = fn(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def tabs(http: requests.Session, count: int) -> list[requests.Session]:
    """`count` tabs of one browser: separate connections, the same cookies."""
    copies = []
    for _ in range(count):
        tab = requests.Session()
        tab.cookies.update(http.cookies)
        copies.append(tab)
    return copies


def test_two_tabs_resume_at_most_twice_and_stay_under_the_session_cap(app, live_server, emulator):
    user = make_user(app)
    inquiry_id = give_inquiry(app, emulator, user, "pending")
    browser = signed_in_session(live_server.url)
    emulator.clear_requests()
    pages = in_parallel(2, lambda i: tabs(browser, 2)[i].get(live_server.url + "/verify", timeout=10))
    assert [p.status_code for p in pages] == [200, 200]
    assert all('data-verification-state="continue"' in p.text for p in pages)
    resumes = [r for r in emulator.requests() if r["path"].endswith("/resume")]
    assert 1 <= len(resumes) <= 2
    for _ in range(50):
        assert browser.get(live_server.url + "/verify", timeout=10).status_code == 200
    assert emulator.sessions(inquiry_id) < 25


def test_two_tabs_creating_at_once_make_one_inquiry(app, live_server, emulator):
    make_user(app)
    browser = signed_in_session(live_server.url)
    pages = in_parallel(2, lambda i: tabs(browser, 2)[i].get(live_server.url + "/verify", timeout=10))
    assert [p.status_code for p in pages] == [200, 200]
    assert len(emulator.inquiries()) == 1  # the same Idempotency-Key: Persona made one
    with app.app_context():
        assert db.session.scalar(select(func.count(Inquiry.id))) == 1


@contextmanager
def gunicorn(database_url: str, emulator, tmp_path, log_name: str = "gunicorn.log") -> Iterator[str]:
    """The production server, with its config file (access log on, tokens redacted)."""
    port = free_port()
    env = dict(
        os.environ,
        APP_ENV="development",
        DATABASE_URL=database_url,
        SECRET_KEY="test-secret-key-for-the-test-suite-only",
        PERSONA_API_BASE_URL=emulator.api,
        PERSONA_FLOW_HOST=emulator.host,
        PERSONA_FLOW_ORIGIN=emulator.origin,
        MAIL_OUTBOX_DIR=str(tmp_path / "outbox"),
        PUBLIC_BASE_URL=f"http://localhost:{port}",
    )
    env.update(BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="1")
    log = open(tmp_path / log_name, "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process_ended(proc)
        log.close()


def test_two_app_processes_redeem_one_link_exactly_once(app, database_url, emulator, tmp_path):
    user = make_user(app)
    give_inquiry(app, emulator, user, "pending")
    path = urlsplit(new_link(app, user)).path
    with (
        gunicorn(database_url, emulator, tmp_path, "one.log") as one,
        gunicorn(database_url, emulator, tmp_path, "two.log") as two,
    ):
        visitors = []
        for index in range(20):
            base = (one, two)[index % 2]
            http = requests.Session()
            http.get(base + path, timeout=10)
            visitors.append((base, http, csrf_from(http.get(base + "/r", timeout=10).text)))
        outcomes = in_parallel(
            20,
            lambda i: (
                visitors[i][1]
                .post(visitors[i][0] + "/r", data={"csrf_token": visitors[i][2]}, allow_redirects=False, timeout=10)
                .status_code
            ),
        )
    assert sorted(outcomes) == [303] + [404] * 19
    access_logs = (tmp_path / "one.log").read_text() + (tmp_path / "two.log").read_text()
    assert access_logs.count("GET /r/[redacted]") == 20
    assert path.removeprefix("/r/") not in access_logs
