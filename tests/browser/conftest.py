"""Browser tests: every test here drives Debian's Chromium through Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from werkzeug.wrappers import Request, Response

from tests.servers import ROOT, LiveServer
from webapp.demo import seed_demo_data

HARNESS = Path(__file__).parent / "sdk_harness" / "index.html"
SDK = ROOT / "node_modules" / "persona" / "dist" / "persona.js"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def sdk_harness() -> Iterator[str]:
    """A bare page on its own origin that loads the official SDK from node_modules."""

    def app(environ, start_response):
        request = Request(environ)
        if request.path == "/persona.js":
            return Response(SDK.read_bytes(), mimetype="text/javascript")(environ, start_response)
        return Response(HARNESS.read_bytes(), mimetype="text/html")(environ, start_response)

    with LiveServer(app) as server:
        yield server.url


@pytest.fixture
def demo(app, live_server) -> LiveServer:
    """The app on a live server, with the demo accounts (one per status) seeded."""
    with app.app_context():
        seed_demo_data()
    return live_server


@pytest.fixture
def desktop_page(browser: Browser) -> Iterator[Page]:
    """A page at desktop width (1280 x 800), where the flow is a modal over our page."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context.new_page()
    context.close()


@pytest.fixture
def a11y_page(browser: Browser) -> Iterator[Page]:
    """A page whose context bypasses CSP, so axe-core can be injected."""
    context = browser.new_context(bypass_csp=True)
    yield context.new_page()
    context.close()
