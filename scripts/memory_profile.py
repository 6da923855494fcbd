"""Memory of one web worker, without load (memory does not depend on a busy CPU). Prints
numbers, asserts nothing; how to read them: docs/PERFORMANCE.md.

    .venv/bin/python scripts/memory_profile.py [--imports-only] [--top N]

1. Imports: what each top-level package adds to a process's RSS, and its import time, when
   `wsgi` is imported with APP_ENV=production. Each module is charged with what its own import
   adds, not with what the modules it imports add (as `python -X importtime` does for time), and
   "first imported by" names who brought the package in.
2. Requests: a gunicorn web worker as in production (gthread, GUNICORN_THREADS threads; one
   worker, so every request goes to it) against PostgreSQL, Redis and the emulator, started as
   scripts/load_bench.py starts them: its RSS and peak RSS (VmHWM) after boot, then after one
   request of each main page, in this order.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Enough of the production configuration to import the app (nothing is contacted at import).
SIGN_IN_ADDRESS = "person@memory-profile.net"
IMPORT_ENV = {
    "APP_ENV": "production",
    "SECRET_KEY": "memory-profile-secret-key-0123456789-abcdefghijklmnop",
    "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none",
    "REDIS_URL": "redis://127.0.0.1:9/0",
    "PERSONA_WEBHOOK_SECRETS": "wbhsec_memory_profile",
    "TRUSTED_PROXY_HOPS": "1",
    "PYTHONPATH": str(ROOT),
}


def memory_mib(pid: int | str = "self") -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (the peak so far) of a process, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1)) / 1024 for key in ("VmRSS", "VmHWM")}


# -- 1. imports ------------------------------------------------------------------------------
class ImportMeter:
    """Charges each module with the RSS and time its own import adds (what the modules it
    imports add is theirs), like `python -X importtime` does for time: it wraps the loaders'
    `exec_module` (and, for C extensions, `create_module`, which loads the shared library)."""

    def __init__(self) -> None:
        self.own_mib: dict[str, float] = defaultdict(float)
        self.own_ms: dict[str, float] = defaultdict(float)
        self.importer: dict[str, str] = {}
        self._stack: list[list] = []  # [name, RSS and time of the imports it made]

    def install(self) -> None:
        from importlib import machinery

        for loader in (machinery.SourceFileLoader, machinery.SourcelessFileLoader, machinery.ExtensionFileLoader):
            loader.exec_module = self._measured(loader.exec_module, lambda module: module.__name__)
        machinery.ExtensionFileLoader.create_module = self._measured(
            machinery.ExtensionFileLoader.create_module, lambda spec: spec.name
        )

    def _measured(self, load, name_of):
        def measured_load(loader, target):
            name = name_of(target)
            self.importer.setdefault(name, self._stack[-1][0] if self._stack else "-")
            rss, started = memory_mib()["VmRSS"], time.perf_counter()
            self._stack.append([name, 0.0, 0.0])
            try:
                return load(loader, target)
            finally:
                _, children_mib, children_s = self._stack.pop()
                added_mib, spent_s = memory_mib()["VmRSS"] - rss, time.perf_counter() - started
                self.own_mib[name] += added_mib - children_mib
                self.own_ms[name] += (spent_s - children_s) * 1000
                if self._stack:
                    self._stack[-1][1] += added_mib
                    self._stack[-1][2] += spent_s

        return measured_load


def measure_imports() -> None:
    """(In the measuring process.) Import `wsgi` under the meter; print what it found as JSON."""
    meter = ImportMeter()
    meter.install()
    before = memory_mib()["VmRSS"]
    importlib.import_module("wsgi")
    print(
        json.dumps(
            {
                "before": before,
                "total": memory_mib()["VmRSS"],
                "modules": {
                    name: [meter.own_mib[name], meter.own_ms[name], meter.importer[name]] for name in meter.own_mib
                },
            }
        )
    )


def _top_importer(package: str, module: str, importers: dict[str, str]) -> str:
    """The first module outside `package` on the chain of importers of `module`."""
    while module.split(".")[0] == package and module in importers:
        module = importers[module]
    return module


def report_imports(top: int) -> None:
    measured = subprocess.run(
        [sys.executable, __file__, "--measure-imports"],
        cwd=ROOT,
        env={**os.environ, **IMPORT_ENV},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = json.loads(measured.splitlines()[-1])
    modules = found["modules"]
    importers = {name: importer for name, (_, _, importer) in modules.items()}
    mib: dict[str, float] = defaultdict(float)
    ms: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    first: dict[str, str] = {}
    for name, (own_mib, own_ms, _) in modules.items():
        package = name.split(".")[0]
        mib[package] += own_mib
        ms[package] += own_ms
        count[package] += 1
        first.setdefault(package, _top_importer(package, name, importers))
    create_app = modules["wsgi"][0]
    print(f"1. `import wsgi` (APP_ENV=production): {found['total']:.1f} MiB resident")
    print(f"   {'what':34} {'MiB':>6} {'modules':>7} {'ms':>6}   first imported by")
    print(f"   {'the interpreter, before wsgi':34} {found['before']:6.1f}")
    ranked = sorted((p for p in mib if p != "wsgi"), key=lambda p: -mib[p])
    for package in ranked[:top]:
        label = package + (" (stdlib)" if package in sys.stdlib_module_names else "")
        print(f"   {label:34} {mib[package]:6.1f} {count[package]:7d} {ms[package]:6.0f}   {first[package]}")
    rest = ranked[top:]
    print(f"   {f'{len(rest)} other packages':34} {sum(mib[p] for p in rest):6.1f}")
    print(f"   {'create_app() itself':34} {create_app:6.1f}")
    own = sorted((n for n in modules if n.startswith("webapp")), key=lambda n: -modules[n][0])
    print("   of webapp's own, the largest: " + ", ".join(f"{n} {modules[n][0]:.1f}" for n in own[:5]))


# -- 2. requests -----------------------------------------------------------------------------
class Visitor:
    """One browser: keeps the session cookie the app sets (it is `Secure`, which a cookie jar
    would not send back over the loopback's plain HTTP)."""

    def __init__(self, base_url: str, cookie_name: str, cookie: str = "") -> None:
        import requests

        self.base_url, self.cookie_name, self.cookie = base_url, cookie_name, cookie
        self.http = requests.Session()

    def request(self, method: str, path: str, language: str = "en", **kwargs):
        headers = {"Accept-Language": language, **({"Cookie": self.cookie} if self.cookie else {})}
        answer = self.http.request(
            method, self.base_url + path, headers=headers, allow_redirects=False, timeout=30, **kwargs
        )
        session = re.search(rf"(?:^|, )({re.escape(self.cookie_name)}=[^;]+)", answer.headers.get("Set-Cookie", ""))
        if session:
            self.cookie = session.group(1)
        return answer

    def post_form(self, form_path: str, fields: dict[str, str]):
        """GET the form (for its CSRF token), then POST `fields` with it."""
        page = self.request("GET", form_path).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        return self.request("POST", form_path, data={**fields, "csrf_token": token.group(1) if token else ""})


def report_requests() -> None:
    from scripts.load_bench import People, gunicorn, production_env, worker_pids
    from tests.emulator_client import EmulatorClient
    from tests.servers import emulator_process, postgres_cluster, redis_server

    work = Path(tempfile.mkdtemp(prefix="memory-profile-"))
    with postgres_cluster() as db_url, redis_server() as redis_url, emulator_process(work) as origin:
        emulator = EmulatorClient(origin)
        env = {**production_env(db_url, redis_url, emulator), "WEB_CONCURRENCY": "1"}
        os.environ.update(env)  # the settings are read when webapp.config is imported
        import flask_migrate
        from sqlalchemy import update
        from werkzeug.security import generate_password_hash

        from webapp import create_app, recovery
        from webapp.clock import utcnow
        from webapp.extensions import db
        from webapp.models import Inquiry, User

        app = create_app()
        with app.app_context():
            flask_migrate.upgrade(directory=str(ROOT / "migrations"))
        pending, decided = People(app, emulator).make(2, "memory")
        with app.app_context():
            # .test addresses are refused at sign-in in production
            password_hash = generate_password_hash("memory profile password")
            db.session.add(User(email=SIGN_IN_ADDRESS, password_hash=password_hash, email_confirmed_at=utcnow()))
            db.session.execute(update(Inquiry).where(Inquiry.user_id == decided["id"]).values(status="approved"))
            db.session.commit()
            link = recovery.issue_link(db.session.get(User, pending["id"]), None)
        link_path = link.removeprefix(app.config["PUBLIC_BASE_URL"])

        with gunicorn("wsgi:app", env, work / "servers.log") as (url, master):
            (pid,) = worker_pids(master)
            threads = env.get("GUNICORN_THREADS", "8")
            print(f"2. One gunicorn worker (gthread, {threads} threads), APP_ENV=production, pid {pid}")
            print(f"   {'after':58} {'RSS MiB':>7} {'peak MiB':>8}")

            def measured(label: str, answer=None) -> None:
                memory = memory_mib(pid)
                status = f" ({answer.status_code})" if answer is not None else ""
                print(f"   {label + status:58} {memory['VmRSS']:7.1f} {memory['VmHWM']:8.1f}")

            cookie_name = app.config["SESSION_COOKIE_NAME"]

            def visitor(cookie: str = "") -> Visitor:
                return Visitor(url, cookie_name, cookie)

            anonymous, person, status_reader = visitor(), visitor(pending["cookie"]), visitor(decided["cookie"])
            measured("boot, no request yet")
            measured("GET /healthz", anonymous.request("GET", "/healthz"))
            measured("GET /readyz (one SELECT)", anonymous.request("GET", "/readyz"))
            measured("GET /login (the sign-in page)", anonymous.request("GET", "/login"))
            measured("GET /verify, first (mints a token at Persona)", person.request("GET", "/verify"))
            measured("GET /verify again (the stored token)", person.request("GET", "/verify"))
            measured("GET /verify, approved inquiry (a status page)", status_reader.request("GET", "/verify"))
            recovering = visitor()
            recovering.request("GET", link_path)
            measured("GET /r/<token>, then the recovery landing", recovering.request("GET", "/r"))
            for language in ("fr", "de", "es", "pt-BR", "ar"):
                measured(f"GET /login in {language}", visitor().request("GET", "/login", language=language))
            measured("GET /signup (the sign-up page)", anonymous.request("GET", "/signup"))
            answer = visitor().post_form("/login", {"email": SIGN_IN_ADDRESS, "password": "memory profile password"})
            measured("POST /login (a password check)", answer)
            answer = visitor().post_form(
                "/signup", {"email": "new@memory-profile.net", "password": "password", "confirm": "password"}
            )
            measured("POST /signup, a common password (the list)", answer)
            answer = visitor().post_form(
                "/signup",
                {"email": "newer@memory-profile.net", "password": "a memorable one", "confirm": "a memorable one"},
            )
            measured("POST /signup (queues an email for the workers)", answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imports-only", action="store_true", help="only part 1 (no servers)")
    parser.add_argument("--top", type=int, default=25, help="how many packages part 1 lists")
    parser.add_argument("--measure-imports", action="store_true", help=argparse.SUPPRESS)  # part 1's process
    args = parser.parse_args()
    if args.measure_imports:
        measure_imports()
        return
    report_imports(args.top)
    if not args.imports_only:
        print()
        report_requests()


if __name__ == "__main__":
    main()
