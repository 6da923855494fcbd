"""Browser tests: Debian's Chromium through Playwright, and (tests taking `open_browser` or
`webkit_display`) Debian's WebKitGTK through Selenium and WebKitWebDriver, marked `webkit`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
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
    """Opens a fresh browser window in this test's engine:
    `open_browser(phone=False, for_axe=False, time_zone=None)`. Everything opened is closed after the test."""
    engine = request.param
    runtime = request.getfixturevalue("webkit_display" if engine == "webkit" else "browser")
    opened: list[Driver] = []

    def open_window(*, phone: bool = False, for_axe: bool = False, time_zone: str | None = None) -> Driver:
        if engine == "webkit":
            driver: Driver = open_webkit(runtime, PHONE if phone else (1280, 720), time_zone)
        else:
            size = PHONE if phone else None
            driver = open_chromium(runtime, size, phone=phone, for_axe=for_axe, time_zone=time_zone)
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


@pytest.fixture
def desktop_page(browser: Browser) -> Iterator[Page]:
    """A page at desktop width (1280 x 800), where the flow is a modal over our page."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context.new_page()
    context.close()


# -- sites for the engine tests ----------------------------------------------------------------
# A Chromium-only API (User-Agent Client Hints) used as one could by mistake. Put first in
# verify.js, so the edit holds however the rest of the script changes.
MUTATION = 'document.documentElement.classList.toggle("on-a-phone", navigator.userAgentData.mobile);\n'


class ServeMutatedScript:
    """WSGI wrapper: the app, except that /static/js/verify.js gets one edit."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        if Request(environ).path != "/static/js/verify.js":
            return self.app(environ, start_response)
        environ = {**environ, "HTTP_CACHE_CONTROL": "no-cache"}
        environ.pop("HTTP_IF_NONE_MATCH", None)
        environ.pop("HTTP_IF_MODIFIED_SINCE", None)
        original = Response.from_app(self.app, environ)
        assert original.status_code == 200, original.status
        mutated = Response(MUTATION + original.get_data(as_text=True), mimetype="text/javascript")
        mutated.headers["Cache-Control"] = "no-store"
        return mutated(environ, start_response)


@pytest.fixture
def mutated_site(app) -> Iterator[str]:
    """The demo app, serving verify.js with MUTATION put first; yields its address."""
    with app.app_context():
        seed_demo_data()
    with LiveServer(ServeMutatedScript(app)) as server:
        yield server.url


@pytest.fixture
def cross_site(demo) -> str:
    """The demo app's address as a different site from the emulator's (127.0.0.1 vs localhost)."""
    return demo.url.replace("://localhost:", "://127.0.0.1:")


class Beacons:
    """A page, and an endpoint that keeps the bodies posted to it."""

    def __init__(self) -> None:
        self.received: list[str] = []

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.method == "POST":
            self.received.append(request.get_data(as_text=True))
            return Response("", status=204)(environ, start_response)
        page = Response("<!doctype html><title>beacons</title><p>page</p>", mimetype="text/html")
        return page(environ, start_response)


@pytest.fixture
def beacons() -> Iterator[tuple[str, Beacons]]:
    """A plain page and a POST sink on their own server: (address, what it received)."""
    receiver = Beacons()
    with LiveServer(receiver) as server:
        yield server.url, receiver
