"""Extensions, created unbound; `create_app` binds them."""

from __future__ import annotations

from typing import cast

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.expression import Executable


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


def execute_for_rowcount(statement: Executable) -> int:
    """Execute an INSERT/UPDATE/DELETE in the current session (no commit); how many rows it touched."""
    result = db.session.execute(statement)
    return cast(CursorResult, result).rowcount


migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
