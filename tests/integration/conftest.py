"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from tests.conftest import make_user
from tests.integration.test_verify import give_inquiry


@pytest.fixture
def person(app, emulator):
    """Ada, signed up, with a pending inquiry in the emulator (and none of her sessions open)."""
    user = make_user(app)
    give_inquiry(app, emulator, user, "pending")
    return user
