"""The person's device: which in-app browser (if any) a request comes from.

Apps that open links in their own WebView add a token to the user agent (the app's name and
version). Source of the list: the apps document little of this, so it follows the tokens that
real user agents from each app carry on iOS and Android, cross-checked (November 2026) against
what several open-source in-app-browser detectors on GitHub match. The sample user agents in
`tests/unit/test_device.py`, one per app and platform, pin it; docs/ARCHITECTURE.md says where
the list is used. Review it when a support report names an app that is missing: a miss only
means the flow opens as it does in any browser.

Matching is on distinctive tokens only, never on the bare word "Line" or a generic `; wv)`
WebView marker, so an ordinary browser is never told it is inside an app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class InAppBrowser:
    """An app with a built-in browser: its name, how its user agent shows it, and the way out of
    it: the menu (`menu_icon`) or, with no icon, the share button, then the item `leave_item`
    (the app's own wording, which we quote as the app shows it in English)."""

    name: str
    pattern: re.Pattern[str]
    menu_icon: str | None
    leave_item: str


IN_APP_BROWSERS: tuple[InAppBrowser, ...] = (
    # Messenger first: its user agent also carries Facebook's FBAN/FBAV tokens.
    InAppBrowser(
        "Messenger",
        re.compile(r"FBAN/Messenger|MessengerForiOS|FB_IAB/Orca-Android|MessengerLite"),
        "•••",
        "Open in browser",
    ),
    InAppBrowser("Facebook", re.compile(r"FBAN/|FBAV/|FB_IAB/|FBIOS"), "•••", "Open in external browser"),
    InAppBrowser("Instagram", re.compile(r"\bInstagram \d"), "•••", "Open in external browser"),
    InAppBrowser("LinkedIn", re.compile(r"LinkedInApp"), "•••", "Open in browser"),
    InAppBrowser("X (Twitter)", re.compile(r"Twitter for iP(?:hone|ad)|TwitterAndroid"), None, "Open in browser"),
    InAppBrowser(
        "TikTok", re.compile(r"musical_ly|BytedanceWebview|\bTikTok[ /]\d|\btrill_\d"), "•••", "Open in browser"
    ),
    InAppBrowser("Snapchat", re.compile(r"Snapchat/\d"), "•••", "Open in browser"),
    InAppBrowser("LINE", re.compile(r"\bLine/\d"), "⋮", "Open in other app"),
    InAppBrowser("WeChat", re.compile(r"MicroMessenger/"), "•••", "Open in browser"),
    InAppBrowser("Google", re.compile(r"\bGSA/\d"), "⋮", "Open in browser"),
)


def detect_in_app_browser(user_agent: str | None) -> InAppBrowser | None:
    """The in-app browser this user agent belongs to, or None for an ordinary browser (or none)."""
    if not user_agent:
        return None
    for app in IN_APP_BROWSERS:
        if app.pattern.search(user_agent):
            return app
    return None
