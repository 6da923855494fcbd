"""Persona's rate budget, shared by every app instance, worker and background process.

Persona allows 300 API requests a minute per environment, across all keys (FACTS.md). Every
call the client makes first asks `PersonaBudget.acquire`: a moving window in Redis (the
`limits` library) when `REDIS_URL` is set, in process otherwise (development, one process).

- Interactive calls (a person waiting on a page) may use the whole budget. When it is spent,
  people queue: the one who has waited longest gets the next free call, and each is told an
  honest estimate of their wait (their place in the queue at the budget's pace).
- Background calls (sync, reminders) only use what is left above a reserve kept for people,
  so they stop well before the ceiling.
- Each person may spend only so many calls a window: one account cannot spend everyone's.
- A 429 from Persona blocks every caller until its Retry-After / RateLimit-Reset
  (`back_off`): one instance's surprise is everyone's.

The same store coalesces reads (`Coalescer`): at most one Persona read per inquiry per few
seconds, shared by concurrent requests in any instance; and it holds the circuit breaker's
state (persona.CircuitBreaker), so every instance learns at once that Persona is down.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, Protocol

import redis
from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)
# The shared store failing: the budget fails open (Persona's own 429 is the backstop) and says so.
STORE_ERRORS = (redis.RedisError, StorageError, OSError)


class Priority(StrEnum):
    INTERACTIVE = "interactive"  # a person is waiting on a page
    BACKGROUND = "background"  # sync, reminders, anything no one is watching


class SharedState(Protocol):
    """The few shared values the budget and the coalescer need, besides the moving windows."""

    def claim(self, key: str, value: str, ttl_seconds: float) -> bool:
        """Set `key` only if it is not set; True when this caller set it."""

    def get(self, key: str) -> str | None: ...

    def get_many(self, *keys: str) -> list[str | None]:
        """The values at `keys`, in one round trip."""

    def put(self, key: str, value: str, ttl_seconds: float) -> None: ...

    def delete(self, *keys: str) -> None: ...

    def increment(self, key: str, ttl_seconds: float) -> int:
        """Add one to the counter at `key` (0 if unset) and keep it `ttl_seconds`; the new value."""

    def queue_position(self, queue: str, member: str, now: float, max_age_seconds: float) -> int:
        """`member`'s place (0 = first) in a queue ordered by first arrival; joins it if absent.
        Members that arrived more than `max_age_seconds` ago are dropped (they left)."""

    def queue_length(self, queue: str, now: float, max_age_seconds: float) -> int: ...

    def leave_queue(self, queue: str, member: str) -> None: ...


class RedisState:
    """SharedState in Redis: every instance sees the same values."""

    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def claim(self, key: str, value: str, ttl_seconds: float) -> bool:
        return bool(self.redis.set(key, value, nx=True, px=max(int(ttl_seconds * 1000), 1)))

    def get(self, key: str) -> str | None:
        value = self.redis.get(key)
        return value.decode() if isinstance(value, bytes) else None

    def get_many(self, *keys: str) -> list[str | None]:
        return [value.decode() if isinstance(value, bytes) else None for value in self.redis.mget(keys)]

    def put(self, key: str, value: str, ttl_seconds: float) -> None:
        self.redis.set(key, value, px=max(int(ttl_seconds * 1000), 1))

    def delete(self, *keys: str) -> None:
        self.redis.delete(*keys)

    def increment(self, key: str, ttl_seconds: float) -> int:
        pipe = self.redis.pipeline()
        pipe.incr(key)
        pipe.pexpire(key, max(int(ttl_seconds * 1000), 1))
        return int(pipe.execute()[0])

    def queue_position(self, queue: str, member: str, now: float, max_age_seconds: float) -> int:
        pipe = self.redis.pipeline()
        pipe.zremrangebyscore(queue, "-inf", now - max_age_seconds)
        pipe.zadd(queue, {member: now}, nx=True)
        pipe.expire(queue, int(max_age_seconds) + 1)
        pipe.zrank(queue, member)
        rank = pipe.execute()[-1]
        return int(rank) if rank is not None else 0

    def queue_length(self, queue: str, now: float, max_age_seconds: float) -> int:
        pipe = self.redis.pipeline()
        pipe.zremrangebyscore(queue, "-inf", now - max_age_seconds)
        pipe.zcard(queue)
        return int(pipe.execute()[-1])

    def leave_queue(self, queue: str, member: str) -> None:
        self.redis.zrem(queue, member)


class MemoryState:
    """SharedState in this process only (development without Redis): same behaviour, one process."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._values: dict[str, tuple[str, float]] = {}
        self._queues: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str) -> str | None:
        entry = self._values.get(key)
        if entry is None or entry[1] <= self.clock():
            self._values.pop(key, None)
            return None
        return entry[0]

    def claim(self, key: str, value: str, ttl_seconds: float) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._values[key] = (value, self.clock() + ttl_seconds)
            return True

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._live(key)

    def get_many(self, *keys: str) -> list[str | None]:
        with self._lock:
            return [self._live(key) for key in keys]

    def put(self, key: str, value: str, ttl_seconds: float) -> None:
        with self._lock:
            self._values[key] = (value, self.clock() + ttl_seconds)

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._values.pop(key, None)

    def increment(self, key: str, ttl_seconds: float) -> int:
        with self._lock:
            value = int(self._live(key) or 0) + 1
            self._values[key] = (str(value), self.clock() + ttl_seconds)
            return value

    def _pruned(self, queue: str, now: float, max_age_seconds: float) -> dict[str, float]:
        members = self._queues.setdefault(queue, {})
        for name in [m for m, since in members.items() if since < now - max_age_seconds]:
            del members[name]
        return members

    def queue_position(self, queue: str, member: str, now: float, max_age_seconds: float) -> int:
        with self._lock:
            members = self._pruned(queue, now, max_age_seconds)
            members.setdefault(member, now)
            ordered = sorted(members, key=lambda m: (members[m], m))
            return ordered.index(member)

    def queue_length(self, queue: str, now: float, max_age_seconds: float) -> int:
        with self._lock:
            return len(self._pruned(queue, now, max_age_seconds))

    def leave_queue(self, queue: str, member: str) -> None:
        with self._lock:
            self._queues.get(queue, {}).pop(member, None)


def shared_state(redis_url: str) -> tuple[SharedState, str]:
    """The state store and the `limits` storage URI for a `REDIS_URL` ('' = this process)."""
    if redis_url:
        return RedisState(redis_url), redis_url
    return MemoryState(), "memory://"


class PersonaBudget:
    """Every Persona call asks `acquire` first; see the module docstring for the policy."""

    WINDOW_KEY = "persona-budget"
    QUEUE_KEY = "persona-budget:queue"
    BLOCKED_KEY = "persona-budget:blocked-until"

    def __init__(
        self,
        state: SharedState,
        storage_uri: str,
        *,
        calls: int,
        window_seconds: int = 60,
        background_share: float = 0.5,
        calls_per_person: int = 10,
        back_off_cap_seconds: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self.calls = calls
        self.window_seconds = window_seconds
        self.background_calls = max(int(calls * background_share), 0)
        self.back_off_cap_seconds = back_off_cap_seconds
        self.clock = clock
        self._all = RateLimitItemPerSecond(calls, window_seconds)
        self._per_person = RateLimitItemPerSecond(calls_per_person, window_seconds)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], state: SharedState, storage_uri: str) -> PersonaBudget:
        """The budget with the app's PERSONA_BUDGET_* settings, on `state` and `storage_uri`."""
        return cls(
            state,
            storage_uri,
            calls=config["PERSONA_BUDGET_CALLS"],
            window_seconds=config["PERSONA_BUDGET_WINDOW_SECONDS"],
            background_share=config["PERSONA_BUDGET_BACKGROUND_SHARE"],
            calls_per_person=config["PERSONA_CALLS_PER_PERSON"],
        )

    @classmethod
    def in_process(cls, calls: int = 270, window_seconds: int = 60) -> PersonaBudget:
        """A budget for one process (a client built without the app, e.g. in a script)."""
        return cls(MemoryState(), "memory://", calls=calls, window_seconds=window_seconds)

    @property
    def seconds_per_call(self) -> float:
        return self.window_seconds / self.calls

    def acquire(self, priority: Priority, person: str | None = None) -> float:
        """Spend one call: 0.0 when granted, else the estimated seconds until this caller's turn
        (nothing is spent then). `person` queues a person fairly and applies their own limit.
        If the shared store fails, the call is granted (logged): Persona's 429 still guards."""
        try:
            return self._acquire(priority, person)
        except STORE_ERRORS as exc:
            log.warning("Persona budget store unavailable (%s): calling without it", type(exc).__name__)
            return 0.0

    def _acquire(self, priority: Priority, person: str | None) -> float:
        now = self.clock()
        blocked = self._blocked_for(now)
        if blocked > 0:
            return blocked
        if person is not None and not self.limiter.test(self._per_person, "person", person):
            return self._reset_in(self._per_person, now, "person", person)
        stats = self.limiter.get_window_stats(self._all, self.WINDOW_KEY)
        if priority == Priority.BACKGROUND:
            used = self.calls - stats.remaining
            if used >= self.background_calls or not self.limiter.hit(self._all, self.WINDOW_KEY):
                return max(self._reset_in(self._all, now, self.WINDOW_KEY), 1.0)
            return 0.0
        max_age = 3 * self.window_seconds
        waiting = self.state.queue_length(self.QUEUE_KEY, now, max_age)
        # A person takes a place in the queue only when someone waits (perhaps they themselves)
        # or the budget turns out spent: one round trip fewer in the common case (room, nobody
        # waiting), one more while people queue (the budget is spent then, and they poll slowly).
        queued = person is not None and waiting > 0
        ahead = self.state.queue_position(self.QUEUE_KEY, person, now, max_age) if person and queued else waiting
        if stats.remaining > ahead and self.limiter.hit(self._all, self.WINDOW_KEY):
            if person is not None:
                if queued:
                    self.state.leave_queue(self.QUEUE_KEY, person)
                self.limiter.hit(self._per_person, "person", person)
            return 0.0
        if person is not None and not queued:
            ahead = self.state.queue_position(self.QUEUE_KEY, person, now, max_age)
        # The calls that free up next go to those ahead first, one every `seconds_per_call`.
        next_free = self._reset_in(self._all, now, self.WINDOW_KEY)
        turns_later = max(ahead - stats.remaining, 0)
        return min(max(next_free + turns_later * self.seconds_per_call, 1.0), float(self.window_seconds))

    def back_off(self, seconds: float) -> None:
        """Persona said 429: no caller in any instance calls it for `seconds` (capped)."""
        seconds = min(max(seconds, 0.1), self.back_off_cap_seconds)
        until = self.clock() + seconds
        try:
            if until > self._blocked_until():
                self.state.put(self.BLOCKED_KEY, repr(until), seconds)
        except STORE_ERRORS as exc:
            log.warning("Persona budget store unavailable (%s): back-off not shared", type(exc).__name__)

    def _blocked_until(self) -> float:
        value = self.state.get(self.BLOCKED_KEY)
        return float(value) if value else 0.0

    def _blocked_for(self, now: float) -> float:
        return max(self._blocked_until() - now, 0.0)

    def _reset_in(self, item: RateLimitItemPerSecond, now: float, *identifiers: str) -> float:
        stats = self.limiter.get_window_stats(item, *identifiers)
        return max(stats.reset_time - now, 0.0)


class Pace:
    """At most `per_minute` of something (e.g. reminder emails) a minute across every process,
    in a moving window on the same store as the budget."""

    KEY = "pace"

    def __init__(self, storage_uri: str, name: str, per_minute: int) -> None:
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self.name = name
        self.per_minute = max(per_minute, 1)
        self._item = RateLimitItemPerSecond(self.per_minute, 60)

    def take(self) -> float:
        """0.0 when one more may go now (it is counted), else seconds until one may."""
        if self.limiter.hit(self._item, self.KEY, self.name):
            return 0.0
        stats = self.limiter.get_window_stats(self._item, self.KEY, self.name)
        return max(stats.reset_time - time.time(), 0.05)


class Coalescer:
    """At most one caller at a time, in any instance, does a piece of work named by a key;
    the others wait for it and use its result (stored elsewhere, e.g. the database)."""

    def __init__(self, state: SharedState, poll_seconds: float = 0.05) -> None:
        self.state = state
        self.poll_seconds = poll_seconds

    @contextmanager
    def turn(self, key: str, hold_seconds: float, keep_seconds: float | None = None) -> Iterator[bool]:
        """Yields True when the block must do the work (no one else is, or did within
        `hold_seconds`); False after another caller's work finished (use its result). The
        result counts as fresh for `keep_seconds` (default `hold_seconds`; 0: only for the
        callers already waiting). A block that raises lets the next caller try. A
        `hold_seconds` of 0 turns coalescing off."""
        if hold_seconds <= 0:
            yield True
            return
        try:
            ours = self.claim_or_wait(key, hold_seconds, time.monotonic() + hold_seconds)
        except STORE_ERRORS as exc:
            log.warning("coalescing store unavailable (%s): not coalescing", type(exc).__name__)
            yield True
            return
        try:
            yield ours
        except BaseException:
            if ours:
                self._quietly(self.abandon, key)
            raise
        if ours:
            self._quietly(self.done, key, hold_seconds if keep_seconds is None else keep_seconds)

    @staticmethod
    def _quietly(step: Callable[..., None], *args: object) -> None:
        try:
            step(*args)
        except STORE_ERRORS as exc:
            log.warning("coalescing store unavailable (%s)", type(exc).__name__)

    def claim_or_wait(self, key: str, hold_seconds: float, wait_until: float) -> bool:
        """True: the caller must do the work, then `done` (or `abandon` if it failed).
        False: another caller did it within the last `hold_seconds`. `wait_until` is a
        time.monotonic() deadline; past it, the caller does the work itself."""
        while True:
            if self.state.claim(key, "working", hold_seconds):
                return True
            if self.state.get(key) == "done":
                return False
            if time.monotonic() >= wait_until:
                return True
            time.sleep(self.poll_seconds)

    def done(self, key: str, keep_seconds: float) -> None:
        """The work is done: callers within `keep_seconds` use its result (0: those waiting now)."""
        self.state.put(key, "done", max(keep_seconds, 4 * self.poll_seconds))

    def abandon(self, key: str) -> None:
        self.state.delete(key)


def ceil_seconds(seconds: float) -> int:
    """Whole seconds for a header or a page, never 0."""
    return max(math.ceil(seconds), 1)
