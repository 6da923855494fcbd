"""Fixtures for the unit tests."""

from __future__ import annotations

import pytest
import redis


@pytest.fixture(params=["memory", "redis"])
def shared_store(request) -> tuple:
    """(state, limits storage URI) for the Persona budget: this process, or a Redis emptied for
    the test. Tests using it run once with each."""
    from webapp.budget import MemoryState, RedisState

    if request.param == "memory":
        return MemoryState(), "memory://"
    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()
    return RedisState(url), url
