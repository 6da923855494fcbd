"""Fixtures for the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.servers import redis_server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A Redis of its own for the tests of one module."""
    with redis_server() as url:
        yield url


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
