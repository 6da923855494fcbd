"""Extensions, created unbound; `create_app` binds them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import click
from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.expression import Executable


class Base(DeclarativeBase):
    pass


class RetryingSession(Session):
    """A session that retries, once, a statement that found its pooled connection dropped
    (the database restarted, a proxy closed an idle connection), when nothing can be lost: the
    statement was to open a new transaction and the session holds no unflushed change. This
    replaces `pool_pre_ping`, which cost every request a round trip to the database
    (docs/PERFORMANCE.md); `pool_recycle` retires connections before servers drop idle ones."""

    def _execute_internal(self, *args: Any, **kwargs: Any) -> Any:
        # Every ORM statement (execute, scalar(s), get, lazy loads) passes through here.
        retry_safe = not self.in_transaction() and not (self.new or self.dirty or self.deleted)
        try:
            return super()._execute_internal(*args, **kwargs)
        except DBAPIError as exc:
            if not (retry_safe and exc.connection_invalidated):
                raise
        self.rollback()  # ends the failed transaction; the pool has already let the dead connections go
        return super()._execute_internal(*args, **kwargs)


db = SQLAlchemy(model_class=Base, session_options={"class_": RetryingSession})


def commit_keeping_loaded() -> None:
    """Commit, leaving what this session has loaded as it is rather than expired: for a request
    that only renders its page after its last write, which would otherwise load each object
    again (a transaction and a round trip per object: three after minting a session token)."""
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def execute_for_rowcount(statement: Executable) -> int:
    """Execute an INSERT/UPDATE/DELETE in the current session (no commit); how many rows it touched."""
    result = db.session.execute(statement)
    return cast(CursorResult, result).rowcount


class Migrations:
    """Flask-Migrate (`flask db ...`, `flask_migrate.upgrade()`), loaded the first time a
    migration is asked for: Alembic, Mako and Pygments (about 9 MiB a process) stay out of the web and
    task workers, which never migrate (docs/PERFORMANCE.md)."""

    def init_app(self, app: Flask, directory: Path) -> None:
        app.extensions["migrate"] = _MigrateOnFirstUse(app, directory)
        app.cli.add_command(_MigrationCommands(app, directory))


def _load_flask_migrate(app: Flask, directory: Path) -> click.Group:
    """Registers the real Flask-Migrate on `app` (replacing both stand-ins); its `db` commands."""
    from flask_migrate import Migrate
    from flask_migrate.cli import db as commands

    Migrate(app, db, directory=str(directory))
    return commands


class _MigrateOnFirstUse:
    """Stands in `app.extensions["migrate"]` until Flask-Migrate's functions first read it."""

    def __init__(self, app: Flask, directory: Path) -> None:
        self._app, self._directory = app, directory

    def __getattr__(self, name: str) -> Any:
        _load_flask_migrate(self._app, self._directory)
        return getattr(self._app.extensions["migrate"], name)


class _MigrationCommands(click.Command):
    """Stands in for Flask-Migrate's `db` command group: running `flask db ...` runs the real one."""

    def __init__(self, app: Flask, directory: Path) -> None:
        super().__init__("db", help="Perform database migrations (Flask-Migrate).")
        self._app, self._directory = app, directory

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        commands = _load_flask_migrate(self._app, self._directory)
        return commands.make_context(info_name, args, parent=parent, **extra)


migrations = Migrations()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
