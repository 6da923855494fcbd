"""Persona's rate budget: bursts of people wait their turn and go on; nobody breaks it for all.

Against the emulator over a real socket, whose rate limit answers 429 like Persona's (a fixed
minute window, RateLimit-* headers), and a real Redis where instances share the budget.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.builders import give_inquiry, make_user
from tests.pages import csrf_from, sign_in, state_of

RESUME = r"/resume$"
MANY_SIGN_INS = "1000 per minute"  # these tests sign many people in from one address


def people(app, emulator, count: int, status: str = "pending", first: int = 0) -> list:
    """`count` signed-in people (test clients), each with an inquiry in `status`."""
    clients = []
    for n in range(first, first + count):
        user = make_user(app, f"person{n}@example.test")
        give_inquiry(app, emulator, user, status)
        client = app.test_client()
        sign_in(client, f"person{n}@example.test")
        clients.append(client)
    emulator.clear_requests()
    return clients


def persona_calls(emulator, kind: str = "") -> list[str]:
    return [f"{r['method']} {r['path']}" for r in emulator.requests() if kind in r["path"]]


def wait_seconds(response) -> int:
    match = re.search(r'data-wait-seconds="(\d+)"', response.get_data(as_text=True))
    assert match, "no estimate on the waiting page"
    return int(match.group(1))


def until_in_the_flow(client, give_up_after: float) -> list[str]:
    """Open /verify as a browser would: on the waiting page, wait as it says, then go on (the
    page does that by itself). The states seen, in order."""
    seen = []
    deadline = time.monotonic() + give_up_after
    while time.monotonic() < deadline:
        response = client.get("/verify")
        seen.append(state_of(response))
        if seen[-1] != "waiting":
            return seen
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
        refresh = re.search(r'<meta http-equiv="refresh" content="(\d+);url=/verify">', response.get_data(as_text=True))
        assert refresh and int(refresh.group(1)) == wait_seconds(response)  # the same honest estimate
        time.sleep(wait_seconds(response))
    return seen


def in_parallel(fns) -> list:
    results: list = [None] * len(fns)
    barrier = threading.Barrier(len(fns))

    def run(index: int) -> None:
        barrier.wait()
        results[index] = fns[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def allow_only(emulator, calls: int, next_minutes: int) -> None:
    """Let the emulator answer only about `calls` more API calls this minute (its window is the
    wall-clock minute, like Persona's; at least 20 s of it left), and `next_minutes` a minute
    after that."""
    left = 60 - time.time() % 60
    if left < 20:
        time.sleep(left + 0.2)
    emulator.configure(rate_limit_per_minute=1000)
    remaining = int(emulator.call("GET", "/inquiries/inq_unknown").headers["RateLimit-Remaining"])
    emulator.configure(rate_limit_per_minute=max(1000 - remaining + calls, next_minutes))


def test_a_burst_over_persona_s_limit_waits_then_everyone_reaches_the_flow(make_app, emulator):
    # A breaker that would open after three failures: the 429s must not count as failures.
    app = make_app(LOGIN_RATE_LIMIT=MANY_SIGN_INS, PERSONA_BREAKER_FAILURES=3)
    clients = people(app, emulator, 8)
    allow_only(emulator, 3, next_minutes=8)  # the rest fit in the next minute
    journeys = in_parallel([lambda c=c: until_in_the_flow(c, give_up_after=150) for c in clients])
    assert all(seen[-1] == "continue" for seen in journeys), journeys
    assert any("waiting" in seen for seen in journeys)  # the burst was over the limit
    assert not any("unavailable" in seen for seen in journeys)
    assert all(seen.count("waiting") <= 2 for seen in journeys), journeys  # estimates were honest
    assert not app.extensions["persona"].breaker.is_open
    resumes = [r["status"] for r in emulator.requests() if r["path"].endswith("/resume")]
    assert resumes.count(200) == 8
    # Only the first wave, in flight together, met 429s: the first one stopped every caller
    # until Persona's reset (the emulator answered 429 to each of them, then never again).
    first_200_after = resumes.index(200, resumes.index(429))
    assert 429 not in resumes[first_200_after:]


def test_a_burst_over_our_budget_waits_on_the_page_and_goes_on(make_app, emulator):
    app = make_app(LOGIN_RATE_LIMIT=MANY_SIGN_INS, PERSONA_BUDGET_CALLS=3, PERSONA_BUDGET_WINDOW_SECONDS=2)
    clients = people(app, emulator, 7)
    journeys = in_parallel([lambda c=c: until_in_the_flow(c, give_up_after=30) for c in clients])
    assert all(seen[-1] == "continue" for seen in journeys), journeys
    assert sum("waiting" in seen for seen in journeys) >= 4
    assert [r["status"] for r in emulator.requests()] == [200] * 7  # never over: no 429


def test_a_429_is_back_pressure_not_a_failure(make_app, emulator):
    app = make_app(LOGIN_RATE_LIMIT=MANY_SIGN_INS)
    first, second = people(app, emulator, 2)
    emulator.fault(path=RESUME, action="status", status=429, headers={"Retry-After": "30"})
    for _ in range(app.config["PERSONA_BREAKER_FAILURES"] + 1):
        response = first.get("/verify")
        assert response.status_code == 200 and state_of(response) == "waiting"
        assert 25 <= wait_seconds(response) <= 30 and int(response.headers["Retry-After"]) <= 30
    assert state_of(second.get("/verify")) == "waiting"  # told by the budget, not by Persona
    assert len(persona_calls(emulator)) == 1
    assert not app.extensions["persona"].breaker.is_open


def test_the_waiting_page_without_javascript_refreshes_into_the_flow(make_app, emulator):
    app = make_app(LOGIN_RATE_LIMIT=MANY_SIGN_INS)
    (person,) = people(app, emulator, 1)
    app.extensions["persona"].budget.back_off(3)
    page = person.get("/verify").get_data(as_text=True)
    assert '<main id="content" tabindex="-1" data-verification-state="waiting">' in page
    assert '<noscript><meta http-equiv="refresh" content="3;url=/verify"></noscript>' in page
    assert 'role="status"' in page  # the live region the script speaks through, sparingly


def test_one_account_hammering_complete_leaves_other_people_unaffected(make_app, emulator):
    # Production's coalescing and a small budget below the emulator's limit, like 270 below 300.
    app = make_app(LOGIN_RATE_LIMIT=MANY_SIGN_INS, PERSONA_COALESCE_SECONDS=3, PERSONA_BUDGET_CALLS=18)
    hammer, other = people(app, emulator, 2)
    allow_only(emulator, 20, next_minutes=20)
    headers = {"X-CSRFToken": csrf_from(hammer.get("/verify").get_data(as_text=True))}
    answers = [hammer.post("/verify/complete", headers=headers).status_code for _ in range(120)]
    assert answers.count(200) == 10 and answers.count(429) == 110  # VERIFY_COMPLETE_LIMIT
    reads = [r for r in emulator.requests() if r["method"] == "GET"]
    assert 1 <= len(reads) <= 2  # coalesced: one read per inquiry per few seconds
    response = other.get("/verify")
    assert state_of(response) == "continue" and "sessionToken" in response.get_data(as_text=True)
    assert not app.extensions["persona"].breaker.is_open


def test_a_person_s_own_limit_counts_only_calls_to_persona(make_app, emulator):
    app = make_app(LOGIN_RATE_LIMIT=MANY_SIGN_INS, PERSONA_CALLS_PER_PERSON=2)
    heavy, other = people(app, emulator, 2)
    page = heavy.get("/verify")  # mints a token: one call
    headers = {"X-CSRFToken": csrf_from(page.get_data(as_text=True)), "Accept": "application/json"}
    for _ in range(5):  # reloads reuse the stored token: no calls
        assert state_of(heavy.get("/verify")) == "continue"
    assert heavy.post("/verify/session-token", headers=headers).status_code == 200  # the second
    refused = heavy.post("/verify/session-token", headers=headers)
    assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "busy"
    assert refused.get_json()["error"]["retryAfter"] > 0
    assert state_of(other.get("/verify")) == "continue"


def test_concurrent_tabs_share_one_read_and_one_resume(make_app, emulator):
    app = make_app(LOGIN_RATE_LIMIT=MANY_SIGN_INS, PERSONA_COALESCE_SECONDS=3)
    (person,) = people(app, emulator, 1)
    emulator.fault(path=r"/inquiries", action="delay", seconds=0.5)
    pages = in_parallel([lambda: person.get("/verify")] * 4)
    assert [state_of(p) for p in pages] == ["continue"] * 4
    assert len(persona_calls(emulator, "/resume")) == 1
    emulator.clear_requests()
    headers = {"X-CSRFToken": csrf_from(person.get("/verify").get_data(as_text=True))}
    in_parallel([lambda: person.post("/verify/complete", headers=headers)] * 4)
    assert len([r for r in emulator.requests() if r["method"] == "GET"]) == 1


def test_a_slow_persona_never_holds_a_page_past_the_deadline(make_app, emulator):
    app = make_app(LOGIN_RATE_LIMIT=MANY_SIGN_INS, PERSONA_READ_TIMEOUT_SECONDS=5, PERSONA_PAGE_DEADLINE_SECONDS=2)
    first, second = people(app, emulator, 2)
    emulator.fault(path=RESUME, action="delay", seconds=4)
    started = time.monotonic()
    response = first.get("/verify")
    assert time.monotonic() - started < 2 + 1.0  # slack for a busy machine; the fault is 4 s
    assert response.status_code == 503 and state_of(response) == "unavailable"
    # Several calls in one page share one deadline: a stale status means resume (409), then read.
    emulator.clear_faults()
    inquiry_id = give_inquiry(app, emulator, make_user(app, "third@example.test"), "pending")
    emulator.set_status(inquiry_id, "completed")  # we still think pending: resume answers 409
    third = app.test_client()
    sign_in(third, "third@example.test")
    emulator.fault(path=r"/inquiries/", action="delay", seconds=1.5)
    started = time.monotonic()
    response = third.get("/verify")
    assert time.monotonic() - started < 2 + 1.0
    assert response.status_code == 503
    # The emulator is still sleeping on the calls we gave up on: let them land in this test's
    # request log, not the next one's.
    time.sleep(max(started + 3.5 - time.monotonic(), 0))


def test_two_app_instances_together_never_exceed_the_budget(make_app, emulator, shared_redis):
    settings = {"REDIS_URL": shared_redis, "PERSONA_BUDGET_CALLS": 5, "LOGIN_RATE_LIMIT": MANY_SIGN_INS}
    one, two = make_app(**settings), make_app(**settings)
    clients = people(one, emulator, 6) + people(two, emulator, 6, first=6)
    states = in_parallel([lambda c=c: state_of(c.get("/verify")) for c in clients])
    assert states.count("continue") == 5 and states.count("waiting") == 7
    assert len(persona_calls(emulator, "/resume")) == 5


def idle_people(app, emulator, count: int) -> None:
    """`count` people whose pending inquiry expires in 2 h, untouched for a day: reminders due."""
    from webapp.clock import utcnow
    from webapp.extensions import db
    from webapp.models import Inquiry

    for n in range(count):
        give_inquiry(app, emulator, make_user(app, f"idle{n}@example.test"), "pending")
    with app.app_context():
        for inquiry in db.session.scalars(select(Inquiry)):
            inquiry.expires_at = utcnow() + timedelta(hours=2)
            inquiry.last_activity_at = utcnow() - timedelta(days=1)
        db.session.commit()


def test_reminders_are_paced_to_the_budget_across_instances(make_app, emulator, shared_redis):
    from webapp import recovery

    # 60 calls a minute, a quarter of it for reminded people at 3 calls a click: 300 an hour.
    settings = {"REDIS_URL": shared_redis, "PERSONA_BUDGET_CALLS": 60}
    one, two = make_app(**settings), make_app(**settings)
    assert recovery.reminders_per_hour(one.config) == 300
    idle_people(one, emulator, 8)
    with one.app_context():
        run = recovery.send_due_reminders(run_seconds=0)
    assert (run.due, run.sent, run.deferred) == (8, 5, 3)  # 5 a minute
    with two.app_context():
        run = recovery.send_due_reminders(run_seconds=0)
    assert (run.sent, run.deferred) == (0, 3)  # the other instance counts against the same pace
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        raise InterruptedError  # enough: the run waits for the pace instead of bursting

    with two.app_context(), pytest.raises(InterruptedError):
        recovery.send_due_reminders(run_seconds=120, sleep=sleep)
    assert 0 < waited[0] <= 60


def test_instances_learn_together_that_persona_is_down(make_app, emulator, shared_redis):
    settings = {"REDIS_URL": shared_redis, "PERSONA_BREAKER_FAILURES": 2, "LOGIN_RATE_LIMIT": MANY_SIGN_INS}
    one, two = make_app(**settings), make_app(**settings)
    failing = people(one, emulator, 2)
    late = people(two, emulator, 1, first=2)[0]
    emulator.fault(path="/inquiries/", action="status", status=503)
    for client in failing:
        assert state_of(client.get("/verify")) == "unavailable"
    calls = len(persona_calls(emulator))
    assert two.test_client().get("/readyz").get_json()["persona"] == "failing"

    response = late.get("/verify")  # an instance that never saw Persona fail

    assert response.status_code == 503 and state_of(response) == "unavailable"
    assert len(persona_calls(emulator)) == calls  # it did not call Persona to find out
