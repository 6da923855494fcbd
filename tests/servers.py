"""Real servers for tests: the emulator as a subprocess, the app on a socket, PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def process_ended(proc: subprocess.Popen) -> None:
    """SIGTERM; SIGKILL if it is still going after 10 s (a busy machine, keep-alive clients)."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def emulator_process(state_dir: Path, **env_overrides: str) -> Iterator[str]:
    """`python -m persona_emulator` on a free port; yields its origin (http://localhost:PORT)."""
    port = free_port()
    env = dict(
        os.environ,
        PERSONA_EMULATOR_STATE_FILE=str(state_dir / "emulator.db"),
        PERSONA_EMULATOR_CONTROL="1",
        PERSONA_EMULATOR_WEBHOOK_BACKOFF_SCALE="0.001",
        PERSONA_EMULATOR_RATE_LIMIT_PER_MINUTE="0",
        **env_overrides,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "persona_emulator", "--port", str(port), "--quiet", "--reset"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://localhost:{port}"
    finally:
        process_ended(proc)


class LiveServer:
    """A WSGI app (ours, or a test helper) served by Werkzeug in a thread, on a real socket."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self._server = make_server("localhost", self.port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway Redis on a free loopback port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (make system-deps)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process_ended(proc)


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL 15 cluster on a free port; yields a SQLAlchemy URL."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError("PostgreSQL 15 is not installed (make system-deps)")
    root = Path(tempfile.mkdtemp(prefix="pg-test-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        shutil.chown(root, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    os.chmod(root, 0o700)
    data, port = root / "data", free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_postgres, *cmd], check=True, stdout=subprocess.DEVNULL)

    run(
        str(PG_BIN / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "-A",
        "trust",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
    )
    opts = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "pg.log"), "-w", "-o", opts, "start")
    try:
        run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "app_test")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/app_test"
    finally:
        run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
