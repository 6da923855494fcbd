"""Why the journeys run in WebKit too: a page script that works in Chromium and breaks only in
Safari's engine is caught by the WebKit journey, and only by it.

The mutation, one line put first in verify.js, is a mistake one could really make: deciding
"is this a phone?" from `navigator.userAgentData.mobile`. User-Agent Client Hints exist in
Chromium only; in WebKit `navigator.userAgentData` is undefined, reading `.mobile` throws, and
the script dies before it boots the flow. The mutated script is served by the app's own server (a WSGI wrapper), so both
engines get the very same bytes (`mutated_site`, in conftest.py)."""

from __future__ import annotations

import pytest

from tests.browser import journeys
from tests.browser.drivers import open_chromium, open_webkit


def test_a_chromium_only_api_in_the_page_script_fails_the_webkit_journey(browser, webkit_display, mutated_site):
    chromium = open_chromium(browser)
    try:
        journeys.sign_in(chromium, mutated_site, "pending@demo.test")
        assert chromium.evaluate("typeof navigator.userAgentData") == "object"
        journeys.flow_is_open(chromium)  # Chromium has the API: the journey passes
        assert chromium.evaluate("document.documentElement.classList.contains('on-a-phone')") is False
    finally:
        chromium.close()

    webkit = open_webkit(webkit_display)
    try:
        journeys.sign_in(webkit, mutated_site, "pending@demo.test")
        assert webkit.evaluate("typeof navigator.userAgentData") == "undefined"
        with pytest.raises(AssertionError, match="the flow's frame on screen"):
            journeys.flow_is_open(webkit)  # the same journey fails in WebKit
        assert journeys.flow_count(webkit) == 0  # the script died before booting the SDK
    finally:
        webkit.close()


def test_the_unmutated_script_passes_the_same_webkit_journey(webkit_display, demo):
    """The control: without the mutation, the WebKit journey above passes."""
    webkit = open_webkit(webkit_display)
    try:
        journeys.sign_in(webkit, demo.url, "pending@demo.test")
        journeys.flow_is_open(webkit)
    finally:
        webkit.close()
