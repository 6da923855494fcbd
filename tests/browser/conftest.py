"""Browser tests: Debian's Chromium through Playwright, and (tests taking `open_browser` or
`webkit_display`) Debian's WebKitGTK through Selenium and WebKitWebDriver, marked `webkit`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from werkzeug.wrappers import Request, Response

from tests.browser.drivers import PHONE, Driver, open_chromium, open_webkit, xvfb_display
from tests.servers import ROOT, LiveServer
from webapp.demo import seed_demo_data

HARNESS = Path(__file__).parent / "sdk_harness" / "index.html"
SDK = ROOT / "node_modules" / "persona" / "dist" / "persona.js"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
        engine = getattr(item, "callspec", None) and item.callspec.params.get("open_browser")
        if engine == "webkit" or "webkit_display" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.webkit)


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


# -- two engines: Chromium (Playwright) and WebKit (Selenium + WebKitWebDriver) -----------------
ENGINES = ("chromium", "webkit")


@pytest.fixture(scope="session")
def webkit_display(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A private Xvfb display for WebKitGTK. A missing Xvfb or WebKitWebDriver is an error, never a skip."""
    with xvfb_display(tmp_path_factory.mktemp("xvfb")) as env:
        yield env


@pytest.fixture(params=ENGINES)
def open_browser(request) -> Iterator[Callable[..., Driver]]:
    """Opens a fresh browser window in this test's engine: `open_browser(phone=True, for_axe=False)`.
    Everything opened is closed after the test."""
    engine = request.param
    runtime = request.getfixturevalue("webkit_display" if engine == "webkit" else "browser")
    opened: list[Driver] = []

    def open_window(*, phone: bool = False, for_axe: bool = False) -> Driver:
        if engine == "webkit":
            driver: Driver = open_webkit(runtime, PHONE if phone else (1280, 720))
        else:
            driver = open_chromium(runtime, PHONE if phone else None, phone=phone, for_axe=for_axe)
        opened.append(driver)
        return driver

    yield open_window
    for driver in opened:
        driver.close()


@pytest.fixture
def demo(app, live_server) -> LiveServer:
    """The app on a live server, with the demo accounts (one per status) seeded."""
    with app.app_context():
        seed_demo_data()
    return live_server
