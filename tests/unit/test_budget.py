"""The shared Persona budget and the coalescer, in process and in a real Redis (same behaviour)."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from webapp.budget import Coalescer, PersonaBudget, Priority, RedisState

INTERACTIVE, BACKGROUND = Priority.INTERACTIVE, Priority.BACKGROUND


def budget_for(shared_store, **settings) -> PersonaBudget:
    state, uri = shared_store
    return PersonaBudget(state, uri, **{"calls": 10, "window_seconds": 60, **settings})


def test_people_may_use_all_of_it_background_only_above_the_reserve(shared_store):
    budget = budget_for(shared_store, background_share=0.3)
    assert [budget.acquire(BACKGROUND) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.acquire(BACKGROUND) >= 1.0  # 30 % used: background stops here
    granted = [budget.acquire(INTERACTIVE, f"user:{n}") for n in range(7)]
    assert granted == [0.0] * 7
    assert budget.acquire(INTERACTIVE, "user:late") > 0  # the ceiling holds for people too


def test_people_over_budget_queue_and_are_told_longer_waits_further_back(shared_store):
    budget = budget_for(shared_store, calls=2)
    assert budget.acquire(INTERACTIVE, "user:a") == 0.0
    assert budget.acquire(INTERACTIVE, "user:b") == 0.0
    first = budget.acquire(INTERACTIVE, "user:c")
    second = budget.acquire(INTERACTIVE, "user:d")
    assert 0 < first < second <= 60
    assert budget.acquire(INTERACTIVE, "user:c") == pytest.approx(first, abs=0.5)  # same place


def test_a_freed_call_goes_to_who_waited_first_not_to_a_newcomer(shared_store):
    budget = budget_for(shared_store, calls=1, window_seconds=1)
    assert budget.acquire(INTERACTIVE, "user:a") == 0.0
    assert budget.acquire(INTERACTIVE, "user:waiting") > 0
    time.sleep(1.1)  # the window frees one call
    assert budget.acquire(INTERACTIVE, "user:newcomer") > 0
    assert budget.acquire(INTERACTIVE, "user:waiting") == 0.0


def test_with_room_and_no_one_waiting_a_person_does_not_queue(shared_store):
    """The common case, every person's call: no place in the queue taken and given back."""
    state, _ = shared_store
    queue_steps: list[str] = []
    for name in ("queue_position", "leave_queue"):
        original = getattr(state, name)
        setattr(
            state, name, lambda *args, _name=name, _original=original: queue_steps.append(_name) or _original(*args)
        )
    budget = budget_for(shared_store, calls=1)
    assert budget.acquire(INTERACTIVE, "user:a") == 0.0
    assert queue_steps == []
    assert budget.acquire(INTERACTIVE, "user:b") > 0  # spent: b takes the first place
    assert queue_steps == ["queue_position"]


def test_one_person_cannot_spend_everyone_s_budget(shared_store):
    budget = budget_for(shared_store, calls=100, calls_per_person=3)
    assert [budget.acquire(INTERACTIVE, "user:a") for _ in range(3)] == [0.0] * 3
    assert budget.acquire(INTERACTIVE, "user:a") > 0
    assert budget.acquire(INTERACTIVE, "user:b") == 0.0


def test_back_off_stops_every_caller_for_that_long(shared_store):
    budget = budget_for(shared_store)
    budget.back_off(20)
    assert 19 < budget.acquire(INTERACTIVE, "user:a") <= 20
    assert 19 < budget.acquire(BACKGROUND) <= 20
    budget.back_off(5)  # a shorter wait never shortens a longer one
    assert budget.acquire(INTERACTIVE, "user:a") > 19


def test_two_budgets_on_one_redis_are_one_budget(redis_url):
    redis.Redis.from_url(redis_url).flushdb()
    one = PersonaBudget(RedisState(redis_url), redis_url, calls=5)
    two = PersonaBudget(RedisState(redis_url), redis_url, calls=5)
    granted = [budget.acquire(INTERACTIVE, f"user:{n}") == 0.0 for n, budget in enumerate([one, two] * 5)]
    assert granted.count(True) == 5


def test_coalescer_runs_the_work_once_for_concurrent_callers(shared_store):
    coalescer = Coalescer(shared_store[0])
    runs, answers = [], []
    barrier = threading.Barrier(4)

    def caller() -> None:
        barrier.wait()
        with coalescer.turn("read:inq_1", hold_seconds=2) as ours:
            if ours:
                time.sleep(0.3)
                runs.append(1)
            answers.append(ours)

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(runs) == 1 and sorted(answers) == [False, False, False, True]
    with coalescer.turn("read:inq_1", hold_seconds=2) as ours:
        assert ours is False  # within the hold: the stored result is fresh enough


def test_coalescer_lets_the_next_caller_try_after_a_failure(shared_store):
    coalescer = Coalescer(shared_store[0])
    with pytest.raises(RuntimeError), coalescer.turn("read:inq_2", hold_seconds=2) as ours:
        assert ours
        raise RuntimeError("Persona failed")
    with coalescer.turn("read:inq_2", hold_seconds=2) as ours:
        assert ours


def test_a_failing_store_fails_open_and_says_so(caplog):
    from tests.servers import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    budget = PersonaBudget(RedisState(url), url, calls=1)
    assert budget.acquire(INTERACTIVE, "user:a") == 0.0  # Persona's own 429 still guards
    budget.back_off(5)  # not shared, not fatal
    with Coalescer(RedisState(url)).turn("read:inq_3", hold_seconds=2) as ours:
        assert ours
    assert "store unavailable" in caplog.text
