"""Load benchmark, each scenario side by side with its baseline in the same run. Prints numbers,
asserts nothing; how to read them: docs/PERFORMANCE.md.

    make bench          (or: .venv/bin/python scripts/load_bench.py [--blast-people N])

The app runs as in production: APP_ENV=production, gunicorn gthread (WEB_CONCURRENCY workers x
GUNICORN_THREADS threads, default 2 x 8), PostgreSQL, Redis (the shared Persona budget). The
floor and Persona's tutorial pattern run on the same stack (scripts/floor_app.py). Persona is
the emulator (rate limit and latency set per scenario). Load comes from wrk (Debian package).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulator_client import EmulatorClient  # noqa: E402
from tests.servers import emulator_process, free_port, postgres_cluster, redis_server, wait_for_port  # noqa: E402

BIN = Path(sys.executable).parent
WORKERS = int(os.environ.get("WEB_CONCURRENCY", "2"))
THREADS = int(os.environ.get("GUNICORN_THREADS", "8"))
CONNECTIONS = WORKERS * THREADS
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
LATENCY = "150ms"
WEBHOOK_SECRET = "wbhsec_bench_" + secrets.token_hex(8)


# -- processes -------------------------------------------------------------------------------
@contextmanager
def gunicorn(
    app_spec: str, env: dict[str, str], log: Path, tree: Path = ROOT
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`app_spec` of the source `tree` under gunicorn with the production settings; its log
    lines go to `log`."""
    port = free_port()
    log_file = log.open("ab")
    proc = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            "/dev/null",
        ]
        + ["--error-logfile", "/dev/null", app_spec],
        cwd=tree,
        env={**env, "PYTHONPATH": str(tree)},
        stdout=log_file,
        stderr=log_file,
    )
    try:
        wait_for_port(port, timeout=30)
        time.sleep(1.0)  # every worker booted
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log_file.close()


def worker_pids(master: subprocess.Popen) -> list[int]:
    """The pids of `master`'s gunicorn workers."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{master.pid}$", text, re.M):
            found.append(int(status.parent.name))
    return sorted(found)


def workers_cpu_seconds(master: subprocess.Popen) -> float:
    """CPU time (user + system) used so far by `master`'s gunicorn workers."""
    total = 0.0
    for pid in worker_pids(master):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def wrk_counting_cpu(url: str, master: subprocess.Popen, cookie: str | None = None) -> dict:
    """wrk, plus the CPU the server's workers spent per request meanwhile (`cpu_ms`): a busy
    machine slows every process, but barely changes how much CPU a request takes."""
    before = workers_cpu_seconds(master)
    result = wrk(url, cookie)
    result["cpu_ms"] = (workers_cpu_seconds(master) - before) * 1000 / max(result["total"], 1)
    return result


def worker_peak_rss_mib(master: subprocess.Popen) -> list[float]:
    """VmHWM (peak resident memory) of each gunicorn worker of `master`."""
    found = []
    for pid in worker_pids(master):
        try:
            match = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
        except OSError:
            continue
        if match:
            found.append(int(match.group(1)) / 1024)
    return sorted(found)


@contextmanager
def py_spy(master: subprocess.Popen, output: str | None, gil_only: bool = False) -> Iterator[None]:
    """While the block runs, py-spy records the first worker of `master` into `output` (raw
    collapsed stacks, idle threads left out; `gil_only`: only threads holding the GIL, i.e.
    the worker's CPU); nothing when `output` is None."""
    if output is None:
        yield
        return
    pid = worker_pids(master)[0]
    command = [str(BIN / "py-spy"), "record", "-p", str(pid), "-r", "200", "--format", "raw", "-o", output]
    command += ["--gil"] if gil_only else []
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # attached
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        recorder.wait(timeout=60)


def wrk(url: str, cookie: str | None = None, seconds: int = SECONDS, connections: int = CONNECTIONS) -> dict:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    return {"rps": rps, "total": total, "errors": int(non_2xx.group(1)) if non_2xx else 0, "p50": _ms(p50)}


def _ms(match: re.Match | None) -> float:
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def empty_budget(redis_url: str) -> None:
    """A scenario starts with the whole Persona budget (and no coalescing or queue left over)."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()


# -- people ----------------------------------------------------------------------------------
class People:
    """Accounts with a pending inquiry at the emulator, and a signed-in session cookie each
    (made the way sign-in makes it, without paying a password hash per person)."""

    def __init__(self, app, emulator: EmulatorClient) -> None:
        self.app, self.emulator = app, emulator
        self.cookie_name = app.config["SESSION_COOKIE_NAME"]

    def make(self, count: int, prefix: str) -> list[dict]:
        from flask import session
        from flask_login import login_user
        from werkzeug.security import generate_password_hash

        from webapp import accounts
        from webapp.clock import utcnow
        from webapp.extensions import db
        from webapp.models import Inquiry, User

        password_hash = generate_password_hash("bench password 1")
        made = []
        with self.app.app_context():
            for n in range(count):
                user = User(email=f"{prefix}{n}@bench.test", password_hash=password_hash, email_confirmed_at=utcnow())
                db.session.add(user)
                db.session.commit()
                inquiry = self.emulator.create_inquiry(reference_id=user.public_id)
                self.emulator.set_status(inquiry["id"], "pending")
                db.session.add(Inquiry(persona_id=inquiry["id"], user_id=user.id, status="pending"))
                db.session.commit()
                with self.app.test_request_context():
                    accounts.start_login_session(user)
                    login_user(user)
                    value = self.app.session_interface.get_signing_serializer(self.app).dumps(dict(session))
                made.append(
                    {
                        "id": user.id,
                        "public_id": user.public_id,
                        "inquiry_id": inquiry["id"],
                        "cookie": f"{self.cookie_name}={value}",
                    }
                )
        return made


# -- scenarios -------------------------------------------------------------------------------
def state_of(html: str) -> str:
    match = re.search(r'data-verification-state="([a-z]+)"', html)
    return match.group(1) if match else "none"


def as_a_browser_keeps_it(response: requests.Response, person: dict) -> None:
    """A browser stores the session cookie an answer sets (here: its CSRF token, Flask-Login's
    marks), and sends that one next: without this, every request of the storm would sign and
    compress a new cookie, which no browser's reload causes."""
    name = person["cookie"].split("=", 1)[0]
    updated = re.search(rf"(?:^|, ){re.escape(name)}=([^;]+)", response.headers.get("Set-Cookie", ""))
    if updated:
        person["cookie"] = f"{name}={updated.group(1)}"


def reload_storm(
    app: tuple[str, subprocess.Popen],
    floor: tuple[str, subprocess.Popen],
    person: dict,
    profiled: contextlib.AbstractContextManager,
    baseline: tuple[str, subprocess.Popen] | None,
) -> None:
    app_url = app[0]
    http = requests.Session()
    first = http.get(app_url + "/verify", headers={"Cookie": person["cookie"]}, timeout=10)
    assert state_of(first.text) == "continue", first.text[:300]
    as_a_browser_keeps_it(first, person)
    again = http.get(app_url + "/verify", headers={"Cookie": person["cookie"]}, timeout=10)
    assert state_of(again.text) == "continue" and "Set-Cookie" not in again.headers, again.headers
    with profiled:
        ours = wrk_counting_cpu(app_url + "/verify", app[1], person["cookie"])
    theirs = wrk_counting_cpu(baseline[0] + "/verify", baseline[1], person["cookie"]) if baseline else None
    least = wrk_counting_cpu(f"{floor[0]}/floor/{person['id']}", floor[1])
    print("1. Reload storm: GET /verify with a stored token (0 Persona calls) vs the floor")
    print(f"   floor (1 SELECT + 1 template): {least['rps']:8.0f} req/s   p50 {least['p50']:6.1f} ms", end="")
    print(f"   worker CPU {least['cpu_ms']:.2f} ms/request")
    print(f"   our /verify:                   {ours['rps']:8.0f} req/s   p50 {ours['p50']:6.1f} ms", end="")
    print(f"   worker CPU {ours['cpu_ms']:.2f} ms/request")
    print(f"   cost ratio (floor / ours):     {least['rps'] / ours['rps']:8.2f}x   (target <= 1.5x)", end="")
    print(f"   in worker CPU {ours['cpu_ms'] / least['cpu_ms']:.2f}x")
    if theirs is not None:
        print(f"   baseline tree's /verify:       {theirs['rps']:8.0f} req/s   p50 {theirs['p50']:6.1f} ms", end="")
        print(f"   worker CPU {theirs['cpu_ms']:.2f} ms/request")
        print(f"   its cost ratio (floor / it):   {least['rps'] / theirs['rps']:8.2f}x", end="")
        print(f"   in worker CPU {theirs['cpu_ms'] / least['cpu_ms']:.2f}x")


def tutorial_vs_ours(app_url: str, floor_url: str, emulator: EmulatorClient, person: dict) -> None:
    emulator.configure(latency=LATENCY, rate_limit_per_minute=300)
    emulator.clear_requests()
    tutorial = wrk(f"{floor_url}/tutorial/{person['public_id']}")
    tutorial_calls = len(emulator.requests())
    tutorial_429 = sum(1 for r in emulator.requests() if r["status"] == 429)
    time.sleep(61 - time.time() % 60)  # a fresh Persona minute for ours
    emulator.clear_requests()
    ours = wrk(app_url + "/verify", person["cookie"])
    ours_calls = len(emulator.requests())
    print(f"2. Persona's tutorial pattern (list + resume on every view) vs our /verify, {LATENCY} upstream")
    per_view = tutorial_calls / max(tutorial["total"], 1)
    print(
        f"   tutorial: {tutorial['rps']:8.1f} req/s   {per_view:.2f} Persona calls/view"
        f"   error pages {tutorial['errors']} of {tutorial['total']} (429s from Persona: {tutorial_429})"
    )
    print(
        f"   ours:     {ours['rps']:8.1f} req/s   {ours_calls / max(ours['total'], 1):.4f} Persona calls/view"
        f"   error pages {ours['errors']} of {ours['total']}"
    )
    emulator.configure(latency="", rate_limit_per_minute=0)


def minting(
    app: tuple[str, subprocess.Popen],
    floor_url: str | None,
    emulator: EmulatorClient,
    people: list[dict],
    profiled: contextlib.AbstractContextManager,
) -> None:
    """Every request mints: each person's first /verify resumes at Persona (150 ms). With
    `floor_url`, the floor then makes as many resumes (one each, nothing else), with the same
    client: how close to the ceiling this machine, the emulator and the client get at all."""
    emulator.configure(latency=LATENCY, rate_limit_per_minute=0)
    app_url, master = app
    cpu_before = workers_cpu_seconds(master)
    with profiled:
        rate, times = _concurrently(people, lambda http, person: _minted(http, app_url, person))
    cpu_ms = (workers_cpu_seconds(master) - cpu_before) * 1000 / max(len(times), 1)
    ceiling = CONNECTIONS / 0.150
    print(f"3. Minting under {LATENCY} upstream latency ({len(people)} people, {CONNECTIONS} at a time)")
    print(f"   {rate:6.1f} mints/s   Little's-law ceiling {ceiling:.1f}/s ({CONNECTIONS} threads / 0.150 s)")
    p50 = statistics.median(times) * 1000
    print(f"   fraction of the ceiling: {rate / ceiling:6.1%}   (target >= 85 %)   p50 {p50:.0f} ms", end="")
    print(f"   worker CPU {cpu_ms:.2f} ms/mint")
    if floor_url:
        rate, times = _concurrently(
            people, lambda http, person: http.get(f"{floor_url}/resume/{person['inquiry_id']}", timeout=30).ok
        )
        p50 = statistics.median(times) * 1000
        print(
            f"   the floor (one resume a request, nothing else): {rate:6.1f}/s,"
            f" {rate / ceiling:.1%} of the ceiling   p50 {p50:.0f} ms"
        )
    emulator.configure(latency="", rate_limit_per_minute=0)


def _minted(http: requests.Session, app_url: str, person: dict) -> bool:
    response = http.get(app_url + "/verify", headers={"Cookie": person["cookie"]}, timeout=30)
    return state_of(response.text) == "continue"


def _concurrently(people: list[dict], request: Callable[[requests.Session, dict], bool]) -> tuple[float, list[float]]:
    """One `request` per person from CONNECTIONS threads: (successes a second, their durations)."""
    times: list[float] = []
    lock = threading.Lock()
    queue = list(people)

    def worker() -> None:
        http = requests.Session()
        while True:
            with lock:
                if not queue:
                    return
                person = queue.pop()
            started = time.monotonic()
            if request(http, person):
                with lock:
                    times.append(time.monotonic() - started)

    threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(times) / (time.monotonic() - started), times


def email_blast(app_url: str, emulator: EmulatorClient, people: list[dict], spread_seconds: float) -> None:
    """Everyone opens their link within `spread_seconds`; each follows the waiting page as a
    browser does (waits its estimate, reloads) until the flow opens."""
    emulator.configure(latency=LATENCY, rate_limit_per_minute=300)
    time.sleep(61 - time.time() % 60)
    emulator.clear_requests()
    outcomes: list[dict] = []
    lock = threading.Lock()
    began = time.monotonic()

    def person_opens(person: dict, delay: float) -> None:
        time.sleep(delay)
        http = requests.Session()
        opened = time.monotonic()
        outcome = {"waits": 0, "error_pages": 0, "seconds": None}
        while time.monotonic() - opened < 600:
            try:
                response = http.get(app_url + "/verify", headers={"Cookie": person["cookie"]}, timeout=30)
            except requests.RequestException:
                outcome["error_pages"] += 1
                break
            state = state_of(response.text)
            if state == "continue":
                outcome["seconds"] = time.monotonic() - opened
                break
            if state == "waiting":
                outcome["waits"] += 1
                wait = int(re.search(r'data-wait-seconds="(\d+)"', response.text).group(1))
                time.sleep(wait)
                continue
            outcome["error_pages"] += 1
            break
        with lock:
            outcomes.append(outcome)

    step = spread_seconds / max(len(people), 1)
    threads = [threading.Thread(target=person_opens, args=(p, i * step)) for i, p in enumerate(people)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls = emulator.requests()
    reached = sorted(o["seconds"] for o in outcomes if o["seconds"] is not None)
    n = len(people)
    errors = sum(o["error_pages"] for o in outcomes)
    print(f"4. Email blast: {n} people open their link within {spread_seconds:.0f} s")
    print("   (Persona allows 300/min; our budget 270/min)")
    print(f"   reached the flow: {len(reached)}/{n} ({len(reached) / n:.0%})   error pages: {errors}")
    if reached:
        p95 = reached[max(int(len(reached) * 0.95) - 1, 0)]
        p50, total = statistics.median(reached), time.monotonic() - began
        print(f"   time to flow: p50 {p50:.1f} s   p95 {p95:.1f} s   (everyone done after {total:.0f} s)")
    refused = sum(1 for r in calls if r["status"] == 429)
    waits = sum(o["waits"] for o in outcomes)
    print(f"   Persona calls per person: {len(calls) / n:.2f}   429s from Persona: {refused}   waiting pages: {waits}")
    emulator.configure(latency="", rate_limit_per_minute=0)


# -- main ------------------------------------------------------------------------------------
def production_env(db_url: str, redis_url: str, emulator: EmulatorClient) -> dict[str, str]:
    return {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "PERSONA_API_KEY": "persona_sandbox_emulator_key",
        "PERSONA_API_BASE_URL": emulator.api,
        "PERSONA_FLOW_HOST": emulator.host,
        "PERSONA_FLOW_ORIGIN": emulator.origin,
        "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "PUBLIC_BASE_URL": "https://bench.example",
        "PERSONA_SESSIONS_PER_INQUIRY": "1000000",
        "PERSONA_CALLS_PER_PERSON": "1000000",  # one bench person stands for many in the storm
        "RATELIMIT_ENABLED": "false",  # the storm comes from one address and one account
        "PYTHONPATH": str(ROOT),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blast-people", type=int, default=int(os.environ.get("BENCH_BLAST_PEOPLE", "400")))
    parser.add_argument("--blast-seconds", type=float, default=60.0)
    parser.add_argument("--mint-people", type=int, default=250)  # within one minute of the budget
    parser.add_argument("--only", default="storm,tutorial,mint,blast", help="scenarios to run, comma-separated")
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        help="record the first app worker with py-spy into FILE, in the storm (or in minting without the storm)",
    )
    parser.add_argument("--py-spy-gil", action="store_true", help="record only samples holding the GIL (CPU)")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        type=Path,
        help="another source tree of the app (e.g. `git archive main | tar -x -C DIR`) whose /verify the storm "
        "also measures, in the same run: before/after on a busy machine",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (make bench installs it: apt-get install wrk)")

    work = Path(tempfile.mkdtemp(prefix="load-bench-"))
    with (
        postgres_cluster() as db_url,
        redis_server() as redis_url,
        emulator_process(work) as origin,  # no rate limit, no latency until a scenario sets them
    ):
        emulator = EmulatorClient(origin)
        env = production_env(db_url, redis_url, emulator)
        os.environ.update(env)  # the settings are read when webapp.config is imported
        import flask_migrate

        from webapp import create_app

        app = create_app()
        with app.app_context():
            flask_migrate.upgrade(directory=str(ROOT / "migrations"))
        people = People(app, emulator)
        storm_person = people.make(1, "storm")[0]
        minters = people.make(args.mint_people if "mint" in only else 0, "mint")
        blasted = people.make(args.blast_people if "blast" in only else 0, "blast")
        baseline_minters = people.make(args.mint_people if "mint" in only and args.baseline else 0, "base-mint")
        print(f"Load benchmark: gunicorn {WORKERS} workers x {THREADS} threads, wrk -c{CONNECTIONS} for {SECONDS} s")
        print(f"(PostgreSQL, Redis, APP_ENV=production; {os.cpu_count()} CPUs shared with whatever else runs)")
        print(f"(the servers' log lines: {work / 'servers.log'})\n")
        with (
            gunicorn("wsgi:app", env, work / "servers.log") as (app_url, master),
            gunicorn("scripts.floor_app:app", env, work / "servers.log") as (floor_url, floor_master),
            contextlib.ExitStack() as stack,
        ):
            baseline_url, baseline_master = None, None
            if args.baseline:
                baseline = gunicorn("wsgi:app", env, work / "servers.log", tree=args.baseline.resolve())
                baseline_url, baseline_master = stack.enter_context(baseline)
            if "storm" in only:
                profiled = py_spy(master, args.py_spy, args.py_spy_gil)
                baseline_server = (baseline_url, baseline_master) if baseline_url and baseline_master else None
                reload_storm((app_url, master), (floor_url, floor_master), storm_person, profiled, baseline_server)
            if "tutorial" in only:
                tutorial_vs_ours(app_url, floor_url, emulator, storm_person)
            if "mint" in only:
                profiled = py_spy(master, args.py_spy if "storm" not in only else None, args.py_spy_gil)
                empty_budget(redis_url)
                minting((app_url, master), floor_url, emulator, minters, profiled)
                if baseline_url:
                    print("   the baseline tree, with as many other people:")
                    empty_budget(redis_url)
                    minting((baseline_url, baseline_master), None, emulator, baseline_minters, contextlib.nullcontext())
            if "blast" in only:
                empty_budget(redis_url)
                email_blast(app_url, emulator, blasted, args.blast_seconds)
            rss = worker_peak_rss_mib(master)
            print(f"5. Peak RSS per app worker: {', '.join(f'{r:.0f} MiB' for r in rss)}   (target <= 80 MiB)")
            if baseline_master:
                rss = worker_peak_rss_mib(baseline_master)
                print(f"   the baseline tree's workers: {', '.join(f'{r:.0f} MiB' for r in rss)}")


if __name__ == "__main__":
    main()
