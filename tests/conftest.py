"""Fixtures: the Persona emulator (a real process), the app from the factory, its database
(SQLite, or PostgreSQL with TEST_DATABASE=postgresql), a live server and the browser."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator

import flask_migrate
import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from scripts.translations import compile_catalogs
from tests.clock import MovableClock
from tests.emulator_client import EmulatorClient
from tests.servers import LiveServer, emulator_process, postgres_cluster, redis_server
from tests.webhook_signer import WEBHOOK_SECRET
from webapp import create_app
from webapp.config import TestConfig
from webapp.extensions import db

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TABLES = (
    "outbox",
    "mail_sent",
    "reminders_sent",
    "recovery_links",
    "webhook_events",
    "login_sessions",
    "inquiries",
    "users",
)


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogs() -> None:
    """The language catalogs, compiled as `make test` does (so pytest alone works too)."""
    compile_catalogs()


# -- the emulator --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def emulator_server(tmp_path_factory) -> Iterator[EmulatorClient]:
    with emulator_process(tmp_path_factory.mktemp("emulator")) as origin:
        yield EmulatorClient(origin)


@pytest.fixture
def emulator(emulator_server: EmulatorClient) -> EmulatorClient:
    """The emulator, emptied: no inquiries, faults, request log; default settings."""
    emulator_server.reset()
    return emulator_server


# -- Redis ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A Redis of its own for the tests of one module."""
    with redis_server() as url:
        yield url


# -- the database --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def database_template(tmp_path_factory) -> Iterator[str]:
    """A database migrated once (through Alembic, never create_all)."""
    if os.environ.get("TEST_DATABASE") == "postgresql":
        with postgres_cluster() as url:
            _migrate(url)
            yield url
    else:
        path = tmp_path_factory.mktemp("db") / "template.db"
        url = f"sqlite:///{path}"
        _migrate(url)
        yield url


def _migrate(url: str) -> None:
    app = create_app(type("MigrateConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url}))
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


@pytest.fixture
def database_url(database_template: str, tmp_path) -> str:
    """An empty, migrated database for one test."""
    if database_template.startswith("sqlite"):
        copy = tmp_path / "app.db"
        shutil.copy(database_template.removeprefix("sqlite:///"), copy)
        return f"sqlite:///{copy}"
    engine = create_engine(database_template)
    with engine.begin() as conn:
        _wait_until_no_other_transactions(conn)
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return database_template


def _wait_until_no_other_transactions(conn, timeout: float = 10.0) -> None:
    """The previous test's connections must be done before we empty the tables.

    A request thread of a live server may still be finishing its last response; anything
    still open after `timeout` is a leak in the previous test, named here rather than left
    to surface as a deadlock in this one."""
    busy = text(
        "SELECT pid, state, left(query, 120) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend' AND state IS DISTINCT FROM 'idle'"
    )
    deadline = time.monotonic() + timeout
    while rows := conn.execute(busy).all():
        if time.monotonic() > deadline:
            pytest.fail(f"the previous test left database work running: {rows}")
        time.sleep(0.05)


# -- the app -------------------------------------------------------------------------------
@pytest.fixture
def make_app(database_url: str, emulator: EmulatorClient, tmp_path):
    """Build an app bound to this test's database and the emulator; overrides by keyword."""
    apps: list[Flask] = []

    def make(**overrides) -> Flask:
        settings = {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "PERSONA_API_BASE_URL": emulator.api,
            "PERSONA_FLOW_HOST": emulator.host,
            "PERSONA_FLOW_ORIGIN": emulator.origin,
            "PERSONA_WEBHOOK_SECRETS": [WEBHOOK_SECRET],
            "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
            **overrides,
        }
        app = create_app(type("TestSettings", (TestConfig,), settings))
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


@pytest.fixture
def server_clock(monkeypatch) -> MovableClock:
    """The server's clock (`webapp.clock`, every module at once), moved on demand."""
    return MovableClock(monkeypatch)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def live_server(app: Flask, emulator: EmulatorClient) -> Iterator[LiveServer]:
    """The app on a real socket; the emulator's webhooks go to it, signed with our secret."""
    with LiveServer(app) as server:
        emulator.configure(webhook_urls=[server.url + "/webhooks/persona"], webhook_secrets=[WEBHOOK_SECRET])
        yield server


# -- mail --------------------------------------------------------------------------------------
class SmtpSink:
    """Keeps every message an SMTP client delivers to it."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.recipients: list[list[str]] = []  # each message's envelope RCPT TO

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope.content)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[int, SmtpSink]]:
    """A real SMTP server on a free port: (port, sink)."""
    with socket.socket() as s:  # aiosmtpd's readiness check cannot use port 0
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, sink
    controller.stop()


# -- the browser (pytest-playwright, Debian's Chromium) --------------------------------------
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": shutil.which("chromium") or "/usr/bin/chromium",
        "args": CHROMIUM_ARGS,
    }
