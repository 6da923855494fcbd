"""What a web worker loads: only what serving requests needs; what a rare path, a command or a
Celery worker needs waits for it (memory: docs/PERFORMANCE.md, scripts/memory_profile.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
# Top-level packages a web worker does without until something asks, with what they cost it.
LOADED_ON_FIRST_USE = {
    # Migrations (Flask-Migrate, Alembic, and Mako and Pygments through them): about 12 MiB a
    # process, for what only `flask db` does.
    "migrations": ("flask_migrate", "alembic", "mako", "pygments"),
    # Celery and what it imports (about 7 MiB): made when the process first sends a task.
    "celery": ("celery", "kombu", "billiard", "amqp", "vine"),
    # QR codes: only the "Continue on your phone" panel draws them.
    "qr codes": ("segno",),
}
# In a production worker: import the app, render a page's <html> tag (language and direction,
# no date) in French, and report what was loaded and read.
WORKER = """
import json, sys
from babel import localedata
read = []
load = localedata.load
localedata.load = lambda name, *args, **kwargs: read.append(name) or load(name, *args, **kwargs)
import wsgi
from flask import render_template_string
from webapp.passwords import common_passwords
with wsgi.app.test_request_context("/", headers={"Accept-Language": "fr"}):
    page = render_template_string('<html lang="{{ html_lang() }}" dir="{{ text_direction() }}">')
print(json.dumps({
    "modules": sorted(sys.modules),
    "locale_data": read,
    "page": page,
    "password_lists": common_passwords.cache_info().currsize,
}))
"""


@cache
def a_production_worker() -> dict:
    env = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": "a-long-random-secret-key-for-this-test-0123456789",
        "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none",
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "PERSONA_WEBHOOK_SECRETS": "wbhsec_test",
        "PYTHONPATH": str(ROOT),
    }
    output = subprocess.run(
        [sys.executable, "-c", WORKER], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.splitlines()[-1])


@pytest.mark.parametrize("what", LOADED_ON_FIRST_USE)
def test_the_production_app_loads_it_only_when_asked(what: str):
    modules = {name.split(".")[0] for name in a_production_worker()["modules"]}
    assert "flask" in modules  # the app did load
    assert modules.isdisjoint(LOADED_ON_FIRST_USE[what]), sorted(modules & set(LOADED_ON_FIRST_USE[what]))


def test_a_page_without_dates_reads_no_locale_data():
    # CLDR's data is about 1 MiB a language (5 MiB for the first): only dates need it.
    worker = a_production_worker()
    assert worker["page"] == '<html lang="fr" dir="ltr">'
    assert worker["locale_data"] == []


def test_the_common_passwords_are_read_only_when_a_password_is_chosen():
    assert a_production_worker()["password_lists"] == 0
