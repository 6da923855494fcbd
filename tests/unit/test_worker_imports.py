"""What a web worker loads: only what serving requests needs (memory: docs/PERFORMANCE.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# Migrations (Flask-Migrate, Alembic, and Mako and Pygments through them): about 12 MiB a
# process, for what only `flask db` does.
ONLY_FOR_MIGRATIONS = ("flask_migrate", "alembic", "mako", "pygments")


def test_the_production_app_loads_no_migration_machinery():
    env = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": "a-long-random-secret-key-for-this-test-0123456789",
        "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none",
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "PERSONA_WEBHOOK_SECRETS": "wbhsec_test",
        "PYTHONPATH": str(ROOT),
    }
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, json, wsgi; print(json.dumps(sorted(sys.modules)))"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    modules = {name.split(".")[0] for name in json.loads(loaded.splitlines()[-1])}
    assert "flask" in modules  # the app did load
    assert modules.isdisjoint(ONLY_FOR_MIGRATIONS), sorted(modules & set(ONLY_FOR_MIGRATIONS))
