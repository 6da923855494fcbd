"""The app's processes as they run for real, for tests: gunicorn, Celery workers and beat.

Each runs in its own process group, so a test can SIGKILL one with its children (a Celery
worker's pool, gunicorn's workers) the way a crash or an OOM kill would, and nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.servers import ROOT, free_port, wait_for_port

CELERY = [sys.executable, "-m", "celery", "-A", "celery_app"]


class Process:
    """One started program (and its process group), with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group: no cleanup, no goodbye (a crash)."""
        if self.running:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL whatever is left of the group."""
        if self.running:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of the group
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def app_env(base: dict[str, str], **overrides: str) -> dict[str, str]:
    """The environment our processes read their settings from (nothing inherited that could
    point them elsewhere)."""
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}}
    return {**keep, "PYTHONUNBUFFERED": "1", **base, **overrides}


def worker(name: str, env: dict[str, str], log_dir: Path, concurrency: int = 2) -> Process:
    argv = [*CELERY, "worker", "--loglevel", "INFO", "--concurrency", str(concurrency), "--hostname", f"{name}@%h"]
    return Process(name, argv, env, log_dir)


def beat(env: dict[str, str], log_dir: Path) -> Process:
    schedule = log_dir / "celerybeat-schedule"
    return Process("beat", [*CELERY, "beat", "--loglevel", "INFO", "--schedule", str(schedule)], env, log_dir)


def gunicorn(name: str, env: dict[str, str], log_dir: Path, port: int | None = None) -> tuple[Process, int]:
    port = port or free_port()
    argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    process = Process(name, argv, {**env, "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1"}, log_dir)
    wait_for_port(port, timeout=60)
    return process, port


def wait_until(condition: Callable[[], object], timeout: float, what: str, every: float = 0.2):
    """Poll until `condition()` is truthy; its value. Fails the test naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for_worker(process: Process, timeout: float = 60.0) -> None:
    wait_until(lambda: " ready." in process.output() or not process.running, timeout, f"{process.name} to be ready")
    assert process.running, process.output()
