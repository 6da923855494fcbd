"""Pooled database connections the server dropped (a restart, a proxy's idle timeout): the app
no longer pings before every request (docs/PERFORMANCE.md); a statement that finds its
connection dead is retried once on a fresh one, when nothing can be lost.

Always on PostgreSQL (its own cluster, `pg_app` in conftest.py): SQLite has no server that can
drop a connection."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.exc import OperationalError

from tests.builders import give_inquiry, make_user
from tests.pages import sign_in, state_of
from webapp.extensions import db
from webapp.models import User


def drop_every_connection(url: str) -> int:
    """What a database restart does to a pool: every other connection is closed by the server."""
    engine = create_engine(url)
    with engine.begin() as conn:
        dropped = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
        ).scalar_one()
    engine.dispose()
    return dropped


def test_no_ping_before_each_request(pg_app):
    assert not pg_app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_pre_ping")
    assert pg_app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_recycle"] > 0


def test_a_page_after_the_database_dropped_the_pool_is_served(pg_app, emulator, postgres_url):
    user = make_user(pg_app)
    give_inquiry(pg_app, emulator, user, "pending")
    client = pg_app.test_client()
    sign_in(client)
    assert state_of(client.get("/verify")) == "continue"
    assert drop_every_connection(postgres_url) >= 1  # the pooled connection the page used

    again = client.get("/verify")

    assert again.status_code == 200 and state_of(again) == "continue"


def test_a_dropped_connection_with_unflushed_changes_is_not_retried(pg_app, postgres_url):
    user = make_user(pg_app)
    with pg_app.app_context():
        row = db.session.get(User, user.id)
        db.session.commit()  # the connection goes back to the pool, the row stays loaded
        assert drop_every_connection(postgres_url) >= 1
        row.locale = "fr"  # a change a retry would silently throw away
        with pytest.raises(OperationalError):
            db.session.scalar(select(User.id).where(User.id == user.id))
        db.session.rollback()
        assert db.session.scalar(select(User.locale).where(User.id == user.id)) is None


def statements_of(app, client, path: str) -> list[str]:
    """The SQL a request sends, in order: each statement's verb, and COMMIT / ROLLBACK."""
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def statement(conn, cursor, sql, parameters, context, executemany) -> None:
        seen.append(sql.split()[0].upper())

    listeners = {
        "before_cursor_execute": statement,
        "commit": lambda conn: seen.append("COMMIT"),
        "rollback": lambda conn: seen.append("ROLLBACK"),
    }
    for name, listener in listeners.items():
        event.listen(engine, name, listener)
    try:
        assert state_of(client.get(path)) == "continue"
    finally:
        for name, listener in listeners.items():
            event.remove(engine, name, listener)
    return seen


def test_minting_a_token_renders_its_page_without_reading_again(pg_app, emulator):
    """The page after a mint shows what the mint wrote: nothing is loaded again after the
    commit (expired objects would cost a transaction and a round trip each)."""
    give_inquiry(pg_app, emulator, make_user(pg_app), "pending")
    client = pg_app.test_client()
    sign_in(client)
    minted = statements_of(pg_app, client, "/verify")
    assert minted[-1] == "COMMIT", minted
    reload = statements_of(pg_app, client, "/verify")  # a stored token: one read, one transaction
    assert reload == ["SELECT", "ROLLBACK"], reload
