"""The Persona circuit breaker on the shared store: in process and in a real Redis (same
behaviour), several breakers on one store acting as the app instances they stand for."""

from __future__ import annotations

import pytest

from webapp.budget import RedisState
from webapp.persona import CircuitBreaker, PersonaUnavailableError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def breakers(shared_store, count: int, clock: FakeClock, threshold: int = 3) -> list[CircuitBreaker]:
    """`count` breakers on one store: one per app instance."""
    state, _ = shared_store
    return [CircuitBreaker(threshold, 30, clock=clock, state=state) for _ in range(count)]


def fail(breaker: CircuitBreaker) -> None:
    breaker.before_call()
    breaker.record(False)


def test_failures_in_any_instance_open_the_breaker_for_every_instance(shared_store):
    clock = FakeClock()
    one, two, three = breakers(shared_store, 3, clock)
    fail(one)
    fail(two)
    assert not three.is_open
    fail(one)  # the third failure in a row, counted across instances
    assert one.is_open and two.is_open and three.is_open
    clock.now += 10
    with pytest.raises(PersonaUnavailableError) as caught:
        three.before_call()  # never called Persona, fails fast all the same
    assert str(caught.value) == "circuit open" and caught.value.retry_after_seconds == 21


def test_a_success_anywhere_resets_the_count(shared_store):
    one, two = breakers(shared_store, 2, FakeClock())
    fail(one)
    fail(two)
    one.before_call()
    one.record(True)
    fail(two)
    fail(two)
    assert not one.is_open  # two failures since the success, not four


def test_a_success_with_no_failure_counted_writes_nothing(shared_store):
    """The common case, every Persona call: one read before the call, no write after it."""
    state, _ = shared_store
    writes: list[str] = []
    for name in ("put", "delete", "increment", "claim"):
        original = getattr(state, name)
        setattr(state, name, lambda *args, _name=name, _original=original: writes.append(_name) or _original(*args))
    (one,) = breakers((state, None), 1, FakeClock())
    one.before_call()
    one.record(True)
    assert writes == []
    fail(one)
    one.before_call()
    one.record(True)  # a failure was counted: the success clears it
    assert writes == ["increment", "delete"]


def test_after_the_cooldown_one_instance_probes_and_its_success_closes_it_everywhere(shared_store):
    clock = FakeClock()
    one, two = breakers(shared_store, 2, clock, threshold=1)
    fail(one)
    clock.now += 31
    one.before_call()  # the probe
    with pytest.raises(PersonaUnavailableError):
        two.before_call()  # one probe at a time, across instances
    one.record(True)
    two.before_call()
    assert not two.is_open


def test_a_failed_probe_opens_it_again_for_a_full_cooldown(shared_store):
    clock = FakeClock()
    one, two = breakers(shared_store, 2, clock, threshold=1)
    fail(one)
    clock.now += 31
    two.before_call()
    two.record(False)
    clock.now += 29
    with pytest.raises(PersonaUnavailableError):
        one.before_call()


def test_a_probe_without_a_verdict_passes_its_turn_on(shared_store):
    clock = FakeClock()
    one, two = breakers(shared_store, 2, clock, threshold=1)
    fail(one)
    clock.now += 31
    one.before_call()
    one.record(None)  # e.g. the page ran out of time before calling
    two.before_call()  # now the probe
    two.record(True)
    assert not one.is_open


def test_without_its_store_each_process_decides_alone():
    down = RedisState("redis://127.0.0.1:9/0")  # nothing listens there
    breaker = CircuitBreaker(2, 30, clock=FakeClock(), state=down)
    fail(breaker)
    assert not breaker.is_open
    fail(breaker)
    assert breaker.is_open
    with pytest.raises(PersonaUnavailableError):
        breaker.before_call()
