"""The fault suite: journeys through the TLS load balancer of `make cluster`'s shape (two app
instances, two workers, beat, PostgreSQL, Redis, the emulator) while an app instance is SIGKILLed
mid-journey, SMTP refuses for a while, a worker is SIGKILLed while it holds a mail task, and
Redis restarts (losing every queued task). Prints what happened; nothing may happen twice."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import create_engine, text

from scripts.cluster import Cluster
from tests import stack
from tests.emulator_client import EmulatorClient
from tests.smtp_sink import SmtpSink

pytestmark = pytest.mark.faults

JOURNEY_THREADS = 3
FAULT_PHASE_SECONDS = 60
PASSWORD = "a long enough password"
RETRYABLE = {502, 503, 504}


@dataclass
class Tally:
    attempted: int = 0
    succeeded: int = 0
    waited: int = 0  # journeys that met the waiting page (Persona's budget spent) on the way
    emails_asked: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Person:
    """One journey, as a person in a browser would make it: reload on an error page."""

    def __init__(self, cluster: Cluster, email: str, sink: SmtpSink) -> None:
        self.base, self.email, self.sink = cluster.url, email, sink
        self.database_url = cluster.database_url
        self.http = requests.Session()
        self.cert = str(cluster.cert)  # per request: REQUESTS_CA_BUNDLE would override a session's

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        if method == "POST":  # as a browser does; Flask-WTF checks it over HTTPS
            kwargs["headers"] = {"Referer": self.base + path, **kwargs.get("headers", {})}
        for attempt in range(6):
            try:
                response = self.http.request(method, self.base + path, timeout=15, verify=self.cert, **kwargs)
            except requests.ConnectionError:
                response = None
            if response is not None and response.status_code not in RETRYABLE:
                return response
            time.sleep(1 + attempt)
        raise AssertionError(f"{method} {path}: still failing after 6 tries")

    def csrf(self, path: str) -> str:
        page = self.request("GET", path).text
        match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page) or re.search(
            r'"csrfToken": "([^"]+)"', page
        )
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def sign_up(self) -> None:
        data = {"email": self.email, "password": PASSWORD, "confirm": PASSWORD, "csrf_token": self.csrf("/signup")}
        answer = self.request("POST", "/signup", data=data)
        if not any(page in answer.url for page in ("/confirm-email", "/verify")):
            # the first try got through before its instance died: the account is there
            data = {"email": self.email, "password": PASSWORD, "csrf_token": self.csrf("/login")}
            answer = self.request("POST", "/login", data=data)
        if "/confirm-email" in answer.url:  # a new account proves its address first, by email
            self.confirm_address()
            answer = self.request("GET", "/verify")
        assert "/verify" in answer.url, answer.text[:300]

    def confirm_address(self) -> None:
        """Wait for the confirmation email the workers mail (it may wait for SMTP), then follow
        its link as a person would: open it, then press Confirm (signed in as the account)."""
        links: list[str] = []

        def mailed() -> bool:
            for message in self.sink.to(self.email):
                links.extend(re.findall(r"https://\S+/confirm-email/[\w-]+", plain_text(message)))
            return bool(links)

        stack.wait_until(mailed, 90, f"the confirmation email to {self.email}")
        path = urlsplit(links[-1]).path
        assert links[-1].startswith(self.base), f"the link goes elsewhere: {urlsplit(links[-1]).netloc}"
        self.request("GET", path)  # takes the token out of the address bar, into the session
        answer = self.request("POST", "/confirm-email", data={"csrf_token": self.csrf("/confirm-email")})
        assert "/verify" in answer.url, f"confirming did not take: {answer.url} {answer.status_code}"

    def state(self) -> str:
        match = re.search(r'data-verification-state="([a-z]+)"', self.request("GET", "/verify").text)
        return match.group(1) if match else "?"

    def ask_for_link(self) -> bool:
        answer = self.request(
            "POST",
            "/verify/email-link",
            data={"csrf_token": self.csrf("/verify")},
            headers={"Accept": "application/json"},
        )
        return answer.status_code == 200 and answer.json().get("sent") is True


def plain_text(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def journey(cluster: Cluster, emulator: EmulatorClient, sink: SmtpSink, email: str, tally: Tally) -> None:
    person = Person(cluster, email, sink)
    try:
        person.sign_up()
        with tally.lock:
            tally.emails_asked.append(email)  # its confirmation, which came by now
        # On a quiet machine the journeys outrun Persona's budget (270 calls a minute, shared):
        # then a person sees the waiting page, which goes on by itself, as this waits for it to.
        state = person.state()
        if state == "waiting":
            with tally.lock:
                tally.waited += 1
            state = stack.wait_until(
                lambda: (s := person.state()) != "waiting" and s, 90, f"{email} past the waiting page", every=3
            )
        assert state == "continue", state
        if person.ask_for_link():
            with tally.lock:
                tally.emails_asked.append(email)
        persona_id = inquiry_of(cluster, email)
        emulator.set_status(persona_id, "pending", "completed")  # the person finishes in the flow
        stack.wait_until(lambda: person.state() == "processing", 60, f"{email} to reach processing")
    except Exception as exc:  # a journey that fails is counted, and said why
        with tally.lock:
            tally.failures.append(f"{email}: {type(exc).__name__}: {str(exc)[:200]}")
        return
    with tally.lock:
        tally.succeeded += 1


def inquiry_of(cluster: Cluster, email: str) -> str:
    engine = create_engine(cluster.database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT i.persona_id FROM inquiries i JOIN users u ON u.id = i.user_id WHERE u.email = :e"),
                {"e": email},
            ).scalar_one()
    finally:
        engine.dispose()


def outbox_statuses(cluster: Cluster) -> Counter:
    engine = create_engine(cluster.database_url)
    try:
        with engine.connect() as conn:
            return Counter(dict(conn.execute(text("SELECT status, count(*) FROM outbox GROUP BY status")).all()))
    finally:
        engine.dispose()


def outbox_rows_of(cluster: Cluster, addresses: set[str]) -> list[dict]:
    """The outbox rows of some addresses, to say what happened to an email sent twice."""
    if not addresses:
        return []
    engine = create_engine(cluster.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, template, to_address, status, attempts, last_error, created_at, claimed_at, sent_at"
                    " FROM outbox WHERE to_address = ANY(:a) ORDER BY id"
                ),
                {"a": list(addresses)},
            )
            return [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()


def webhook_lines(cluster: Cluster) -> list[str]:
    """What each app instance logged on each webhook delivery (JSON lines)."""
    lines = []
    for name in ("app-1", "app-2"):
        for raw in cluster.processes[name].output().splitlines():
            if raw.startswith("{") and '"webapp.webhooks"' in raw:
                message = json.loads(raw)["message"]
                if message.startswith("webhook evt_"):
                    lines.append(message)
    return lines


def run_the_faults(cluster: Cluster, sink: SmtpSink, tally: Tally) -> None:
    """The faults, on a timeline, while the journeys go on."""
    started = time.monotonic()

    def at(second: float) -> None:
        time.sleep(max(0.0, started + second - time.monotonic()))

    at(4)
    cluster.processes["app-1"].kill()  # mid-journey: the balancer moves people to app-2
    at(12)
    cluster.start_app("app-1")
    at(16)
    sink.stop()  # SMTP refuses: mail waits, retried with backoff
    at(26)
    sink.start()
    at(28)
    held = Person(cluster, "held@fault.test", sink)
    held.sign_up()
    with tally.lock:
        tally.emails_asked.append(held.email)  # its confirmation
    cluster.processes["worker-2"].stop()  # one worker left, so we know which one holds the task
    sink.hold_only, sink.hold_seconds = held.email, 4.0  # under MAIL_SMTP_TIMEOUT_SECONDS: slow, not failing
    if held.ask_for_link():
        with tally.lock:
            tally.emails_asked.append(held.email)
    stack.wait_until(
        lambda: any(r["status"] == "sending" for r in outbox_rows_of(cluster, {held.email})),
        30,
        "a worker holding the held email",
    )
    time.sleep(1)
    cluster.processes["worker-1"].kill()
    sink.hold_seconds = 0.0
    cluster.start_worker("worker-1")
    cluster.start_worker("worker-2")
    at(44)
    cluster.processes["redis"].kill()  # every queued task is gone with it
    time.sleep(2)
    cluster.start_redis()
    at(FAULT_PHASE_SECONDS)


def test_journeys_survive_kills_restarts_and_an_smtp_outage(tmp_path, capsys):
    sink = SmtpSink()
    settings = {
        **sink.env(),
        # every journey comes from one loopback address: the per-client limits would stop them
        "LOGIN_RATE_LIMIT": "1000 per minute",
        "RECOVERY_LINK_ATTEMPT_LIMIT": "1000 per minute",
        "RECOVERY_SEND_LIMIT_PER_CLIENT": "1000 per minute",
        "OUTBOX_SWEEP_SECONDS": "1",
        "MAIL_SMTP_TIMEOUT_SECONDS": "5",
        "OUTBOX_STALE_SECONDS": "45",  # production refuses less than 9 x the SMTP timeout
        "OUTBOX_RETRY_BASE_SECONDS": "1",
        "OUTBOX_RETRY_CAP_SECONDS": "4",
    }
    sink.start()
    tally = Tally()
    with Cluster(tmp_path / "cluster", apps=2, workers=2, extra_env=settings) as cluster:
        emulator = EmulatorClient(cluster.emulator)
        numbers = itertools.count(1)
        stop = threading.Event()

        def keep_journeying() -> None:
            while not stop.is_set():
                with tally.lock:
                    tally.attempted += 1
                journey(cluster, emulator, sink, f"person{next(numbers)}@fault.test", tally)

        runners = [threading.Thread(target=keep_journeying, daemon=True) for _ in range(JOURNEY_THREADS)]
        for runner in runners:
            runner.start()
        try:
            run_the_faults(cluster, sink, tally)
        finally:
            stop.set()
            for runner in runners:
                runner.join(timeout=180)

        asked = set(tally.emails_asked)
        stack.wait_until(lambda: asked <= {m["To"] for m in sink.messages}, 90, "every email asked for")
        stack.wait_until(
            lambda: not (s := outbox_statuses(cluster))["queued"] and not s["sending"], 60, "an empty outbox"
        )
        time.sleep(3)  # a second copy would come now
        hooks = webhook_lines(cluster)
        twice_rows = outbox_rows_of(cluster, sink.twice_to())
        held_attempts = max(r["attempts"] for r in outbox_rows_of(cluster, {"held@fault.test"}))
        for row in twice_rows:
            row["worker log"] = [
                line.strip()[:160]
                for name in ("worker-1", "worker-2")
                for line in cluster.processes[name].output().splitlines()
                if f" {row['id']} " in line or f"[{row['id']}]" in line
            ]
    sink.stop()

    applied = Counter(re.match(r"webhook (evt_\w+)", h).group(1) for h in hooks if ": already applied" not in h)
    delivered, twice = len({m["Message-ID"] for m in sink.messages}), sink.delivered_twice()
    applied_twice = sum(n > 1 for n in applied.values())
    report = (
        f"journeys attempted {tally.attempted}, succeeded {tally.succeeded} ({tally.waited} through the waiting page); "
        f"emails asked {len(tally.emails_asked)}, delivered {delivered}, delivered twice {twice}; "
        f"webhooks received {len(hooks)}, applied {len(applied)}, applied twice {applied_twice}; "
        f"the email held by the killed worker: sent at attempt {held_attempts}"
    )
    with capsys.disabled():
        print(f"\n[faults] {report}")
        for failure in tally.failures:
            print(f"[faults] failed journey: {failure}")
        for row in twice_rows:
            print(f"[faults] delivered twice, its outbox row: {row}")
    assert twice == 0 and applied_twice == 0, report
    assert {m["To"] for m in sink.messages} >= set(tally.emails_asked), report
    assert held_attempts >= 2, report  # its worker died holding it: the sweep gave it to another
    assert tally.attempted >= 6 and tally.succeeded >= tally.attempted - 1, report
