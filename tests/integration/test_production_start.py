"""The production configuration as it is started: gunicorn with gunicorn.conf.py and APP_ENV=production.

It starts with good settings, and refuses bad ones with one line that names the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.servers import ROOT, free_port, redis_server, wait_for_port

GOOD_KEY = "k7Qp2vX9sL4mN8rT1wY6zB3cD5fG0hJ-"


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONA_", "REDIS", "RATELIMIT", "CELERY"))}
    env.update(
        APP_ENV="production",
        SECRET_KEY=GOOD_KEY,
        DATABASE_URL=f"sqlite:///{tmp_path}/app.db",
        PERSONA_WEBHOOK_SECRETS="wbhsec_production_test",
        REDIS_URL="redis://127.0.0.1:1/0",
        PUBLIC_BASE_URL="https://localhost",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def gunicorn(env: dict[str, str], port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env={**env, "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_production_starts_under_gunicorn(tmp_path):
    port = free_port()
    with redis_server() as redis_url:
        proc = gunicorn(production_env(tmp_path, REDIS_URL=redis_url), port)
        try:
            wait_for_port(port, timeout=30)
            live = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            login = requests.get(f"http://127.0.0.1:{port}/login", timeout=10)
        finally:
            proc.terminate()
            output = proc.communicate(timeout=20)[0]
    assert live.status_code == 200, output
    assert live.headers["Strict-Transport-Security"].startswith("max-age=")
    assert login.status_code == 200
    cookie = login.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=") and "Secure" in cookie and "Path=/" in cookie


def refusal_of(env: dict[str, str]) -> str:
    """Start the production app as gunicorn loads it; returns what it printed (it must exit 1)."""
    done = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stderr.strip()


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "dev-only-secret-key-change-me"}, "SECRET_KEY"),
        ({"SECRET_KEY": "short-key"}, "SECRET_KEY"),
        ({"SECRET_KEY": "a" * 40}, "SECRET_KEY"),
        ({"PERSONA_WEBHOOK_SECRETS": ""}, "PERSONA_WEBHOOK_SECRETS"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"REDIS_URL": ""}, "REDIS_URL"),
        ({"PERSONA_FLOW_HOST": "production"}, "PERSONA_FLOW_HOST"),
        ({"OUTBOX_STALE_SECONDS": "60", "MAIL_SMTP_TIMEOUT_SECONDS": "10"}, "OUTBOX_STALE_SECONDS"),
    ],
)
def test_production_refuses_bad_settings_with_one_line(tmp_path, overrides, variable):
    printed = refusal_of(production_env(tmp_path, **overrides))
    assert len(printed.splitlines()) == 1 and "Traceback" not in printed
    assert printed.startswith("Refusing to start in production:") and variable in printed


def test_gunicorn_refuses_too_and_says_why(tmp_path):
    proc = gunicorn(production_env(tmp_path, SECRET_KEY="short-key"), free_port())
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode != 0
    assert "Refusing to start in production: SECRET_KEY is weak" in output
    assert GOOD_KEY not in output and "short-key" not in output
