"""The models and the migrations describe the same schema."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from webapp.extensions import db

pytestmark = pytest.mark.postgres_too


def test_models_match_the_migrated_schema(app):
    """Alembic's autogenerate finds nothing to add: a model change without its migration fails here."""
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_flask_db_runs_flask_migrate_though_the_app_does_not_load_it_until_asked(runner):
    """`flask db ...` (Flask-Migrate, loaded on first use: web workers never migrate)."""
    result = runner.invoke(args=["db", "current"])
    assert result.exit_code == 0, result.output
    assert "Context impl" in result.output  # Alembic's own log line: it ran
    assert "upgrade" in runner.invoke(args=["db", "--help"]).output
