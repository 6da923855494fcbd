"""In-app browsers by user agent: one real-shaped user agent per app and platform."""

from __future__ import annotations

import pytest

from tests.user_agents import IN_APP_USER_AGENTS, ORDINARY_BROWSERS
from webapp.device import detect_in_app_browser


@pytest.mark.parametrize(("name", "user_agent"), [(name, ua) for name, uas in IN_APP_USER_AGENTS.items() for ua in uas])
def test_each_in_app_browser_is_recognised(name: str, user_agent: str):
    found = detect_in_app_browser(user_agent)
    assert found is not None and found.name == name


@pytest.mark.parametrize("user_agent", ORDINARY_BROWSERS)
def test_ordinary_browsers_are_not(user_agent: str):
    assert detect_in_app_browser(user_agent) is None
