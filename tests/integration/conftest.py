"""Fixtures shared by the integration tests: people in a known state, and services."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import timedelta

import flask_migrate
import pytest
from sqlalchemy import text

from tests import stack
from tests.builders import give_inquiry, make_user, new_link
from tests.pages import open_link, redeem, sign_in
from tests.servers import postgres_cluster
from tests.smtp_sink import SmtpSink
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import User
from webapp.verification import get_current_inquiry


@pytest.fixture
def user(app):
    """Ada, signed up, with no inquiry yet."""
    return make_user(app)


@pytest.fixture
def signed_in(client, user):
    """The test client, signed in as `user`."""
    sign_in(client)
    return client


@pytest.fixture
def person(app, emulator):
    """Ada, signed up, with a pending inquiry in the emulator (and none of her sessions open)."""
    user = make_user(app)
    give_inquiry(app, emulator, user, "pending")
    return user


@pytest.fixture
def pending_user(app, client, emulator) -> str:
    """Ada with a pending inquiry, signed in on `client`. Returns the inquiry's Persona id."""
    user = make_user(app)
    inquiry_id = give_inquiry(app, emulator, user, "pending")
    sign_in(client)
    return inquiry_id


@pytest.fixture
def idle_person(app, emulator):
    """A pending inquiry that expires in 2 h and was last touched a day ago."""
    user = make_user(app)
    give_inquiry(app, emulator, user, "pending")
    with app.app_context():
        inquiry = get_current_inquiry(db.session.get(User, user.id))
        inquiry.expires_at = utcnow() + timedelta(hours=2)
        inquiry.last_activity_at = utcnow() - timedelta(days=1)
        db.session.commit()
    return user


@pytest.fixture
def inquiry_id(app, emulator) -> str:
    """A pending inquiry of a person who is not signed in anywhere: its Persona id."""
    return give_inquiry(app, emulator, make_user(app), "pending")


@pytest.fixture
def actors(app, emulator) -> dict:
    """A test client per kind of visitor: anonymous, alice and bob (each signed in, each with a
    pending inquiry), alice again from a recovery link, and carol, signed in with a pending
    inquiry but her address not confirmed. Each signed-in actor has loaded /verify once, so
    each confirmed one has minted their own token."""
    alice, bob = make_user(app, "alice@example.test"), make_user(app, "bob@example.test")
    carol = make_user(app, "carol@example.test", confirmed=False)
    for person in (alice, bob, carol):
        give_inquiry(app, emulator, person, "pending")
    names = ("anonymous", "alice", "bob", "alice_from_link", "carol_unconfirmed")
    clients = {name: app.test_client() for name in names}
    sign_in(clients["alice"], "alice@example.test")
    sign_in(clients["bob"], "bob@example.test")
    sign_in(clients["carol_unconfirmed"], "carol@example.test")
    link_client = clients["alice_from_link"]
    assert redeem(link_client, open_link(link_client, new_link(app, alice))).status_code == 303
    for client in clients.values():
        client.get("/verify")
    return clients


@pytest.fixture
def app_log() -> Iterator[io.StringIO]:
    """What the app's own log handler (its format, its filters) writes, as text."""
    handler = next(h for h in logging.getLogger("webapp").handlers if isinstance(h, logging.StreamHandler))
    previous = handler.setStream(io.StringIO())
    yield handler.stream
    handler.setStream(previous)


@pytest.fixture
def shared_redis(redis_url: str) -> str:
    """The module's Redis, emptied for this test (app instances given it share one budget)."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


@pytest.fixture
def sink():
    """An SMTP server on a free port, running (tests.smtp_sink)."""
    running = SmtpSink().start()
    yield running
    running.stop()


@pytest.fixture
def processes():
    """Every process a test starts (tests.stack); stopped (SIGTERM, then SIGKILL) at its end."""
    started: list[stack.Process] = []
    yield started
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL of its own for the tests of one module, whatever TEST_DATABASE says."""
    with postgres_cluster() as url:
        yield url


@pytest.fixture
def pg_app(make_app, postgres_url):
    """The app on that PostgreSQL, migrated, its tables emptied for this test."""
    app = make_app(SQLALCHEMY_DATABASE_URI=postgres_url)
    with app.app_context():
        flask_migrate.upgrade()
        db.session.execute(text("TRUNCATE users, login_sessions, inquiries RESTART IDENTITY CASCADE"))
        db.session.commit()
    return app
