"""Two browser engines behind one small interface, so a journey is written once.

`Driver` is what a journey may do: open an address, fill a labelled field, press a control
found by its role and accessible name (on the page or inside the Persona flow's frame), wait
for something to show, run a script. `PlaywrightDriver` drives Debian's Chromium through
Playwright; `SeleniumDriver` drives WebKitGTK (the engine of Safari) through WebKitWebDriver,
under a private Xvfb display that `xvfb_display()` starts. Plain module, no fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from playwright.sync_api import BrowserContext, Frame, Page, expect

from tests.pages import AXE, FLOW
from tests.servers import process_ended

WAIT_SECONDS = 10.0
PHONE = (390, 844)
WEBKIT_DRIVER = "WebKitWebDriver"
WEBKIT_BROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"

T = TypeVar("T")


class Driver(Protocol):
    """What a journey can do in a browser, whichever the engine."""

    engine: str

    def goto(self, url: str) -> None: ...

    @property
    def url(self) -> str: ...

    def reload(self) -> None: ...

    def fill(self, label: str, value: str) -> None:
        """Type `value` into the field whose label reads exactly `label`."""

    def click(self, role: str, name: str, *, in_flow: bool = False) -> None:
        """Press the visible control with this role and exact accessible name (in the flow's frame if told)."""

    def wait_visible(self, role: str, name: str, *, in_flow: bool = False, timeout: float = WAIT_SECONDS) -> None:
        """Wait until a control with this role and exact accessible name is on screen."""

    def wait_for(self, script: str, *, timeout: float = WAIT_SECONDS, message: str = "") -> Any:
        """Wait until the page expression `script` is truthy; its value."""

    def evaluate(self, script: str) -> Any:
        """The value of the page expression `script` (in the top document)."""

    def evaluate_in_flow(self, script: str) -> Any:
        """The value of the expression `script` inside the flow's frame."""

    def axe_serious_violations(self) -> list[str]:
        """axe-core's serious and critical findings on the current page, one line each."""

    def open_tab(self, url: str) -> int:
        """Open `url` in a new tab of this window (same cookies) and switch to it; its index."""

    def use_tab(self, index: int) -> None:
        """Switch to a tab (0 is the first)."""

    def screenshot(self, path: Path) -> None: ...

    def close(self) -> None: ...


# -- role and name, the same way in both engines ------------------------------------------------
# Playwright has get_by_role; WebDriver does not, so the Selenium side finds controls with this
# script. It covers what our pages and the flow use: native elements and explicit roles, names
# from aria-label / aria-labelledby / text, visible and not inside [hidden] or [inert].
FIND_BY_ROLE = """
const [role, name] = arguments;
const selectors = {
  button: 'button, input[type=submit], input[type=button], [role=button]',
  link: 'a[href], [role=link]',
  heading: 'h1, h2, h3, h4, h5, h6, [role=heading]',
  status: '[role=status], output',
};
const norm = s => (s || '').replace(/\\s+/g, ' ').trim();
const nameOf = el => {
  if (el.getAttribute('aria-label')) return el.getAttribute('aria-label');
  const by = el.getAttribute('aria-labelledby');
  if (by) return by.split(/\\s+/).map(id => (document.getElementById(id) || {}).textContent || '').join(' ');
  return el.tagName === 'INPUT' ? el.value : el.textContent;
};
const shown = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden'
  && !el.closest('[inert]');
return Array.from(document.querySelectorAll(selectors[role]))
  .find(el => norm(nameOf(el)) === norm(name) && shown(el)) || null;
"""
FIND_BY_LABEL = """
const norm = s => (s || '').replace(/\\s+/g, ' ').trim();
const label = Array.from(document.querySelectorAll('label')).find(l => norm(l.textContent) === norm(arguments[0]));
return label ? label.control : null;
"""


def wait_until(check: Callable[[], T], timeout: float, message: str) -> T:
    """Call `check` until it returns something truthy (exceptions count as not yet); that value."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - a page mid-navigation throws; try again
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s: {message}" + (f" ({last_error})" if last_error else "")
            )
        time.sleep(0.1)


# -- Chromium, through Playwright ---------------------------------------------------------------
class PlaywrightDriver:
    """A fresh Playwright context (its own cookies) on the session's Chromium."""

    engine = "chromium"

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.page: Page = context.new_page()
        self.tabs = [self.page]

    def goto(self, url: str) -> None:
        self.page.goto(url)

    @property
    def url(self) -> str:
        return self.page.url

    def reload(self) -> None:
        self.page.reload()

    def _scope(self, in_flow: bool):
        return self.page.frame_locator(FLOW) if in_flow else self.page

    def fill(self, label: str, value: str) -> None:
        self.page.get_by_label(label, exact=True).fill(value)

    def click(self, role: str, name: str, *, in_flow: bool = False) -> None:
        self._scope(in_flow).get_by_role(role, name=name, exact=True).click()  # type: ignore[arg-type]

    def wait_visible(self, role: str, name: str, *, in_flow: bool = False, timeout: float = WAIT_SECONDS) -> None:
        locator = self._scope(in_flow).get_by_role(role, name=name, exact=True)  # type: ignore[arg-type]
        expect(locator).to_be_visible(timeout=timeout * 1000)

    def wait_for(self, script: str, *, timeout: float = WAIT_SECONDS, message: str = "") -> Any:
        return wait_until(lambda: self.page.evaluate(script), timeout, message or script)

    def evaluate(self, script: str) -> Any:
        return self.page.evaluate(script)

    def _flow_frame(self) -> Frame:
        frame = self.page.locator(FLOW).element_handle().content_frame()
        assert frame is not None, "the flow's frame has no document"
        return frame

    def evaluate_in_flow(self, script: str) -> Any:
        return self._flow_frame().evaluate(script)

    def axe_serious_violations(self) -> list[str]:
        # The page's CSP (rightly) refuses injected scripts: open_chromium(for_axe=True) bypasses it.
        self.page.add_script_tag(path=str(AXE))
        return serious(self.page.evaluate("axe.run(document, {resultTypes: ['violations']})"))

    def open_tab(self, url: str) -> int:
        self.page = self.context.new_page()
        self.tabs.append(self.page)
        self.page.goto(url)
        return len(self.tabs) - 1

    def use_tab(self, index: int) -> None:
        self.page = self.tabs[index]

    def screenshot(self, path: Path) -> None:
        self.page.screenshot(path=str(path), full_page=True)

    def close(self) -> None:
        self.context.close()


# -- WebKit, through Selenium and WebKitWebDriver -----------------------------------------------
class SeleniumDriver:
    """One WebKitWebDriver session (a fresh, ephemeral MiniBrowser) on an Xvfb display."""

    engine = "webkit"

    def __init__(self, webdriver) -> None:
        self.webdriver = webdriver
        self.closed = False
        self.tabs: list[str] = []  # window handles, in the order this driver opened them

    def goto(self, url: str) -> None:
        self.webdriver.switch_to.default_content()
        self.webdriver.get(url)

    @property
    def url(self) -> str:
        return self.webdriver.current_url

    def reload(self) -> None:
        self.webdriver.switch_to.default_content()
        self.webdriver.refresh()

    @contextmanager
    def _in(self, in_flow: bool) -> Iterator[None]:
        from selenium.webdriver.common.by import By

        self.webdriver.switch_to.default_content()
        if in_flow:
            self.webdriver.switch_to.frame(self.webdriver.find_element(By.CSS_SELECTOR, FLOW))
        try:
            yield
        finally:
            self.webdriver.switch_to.default_content()

    def _find(self, role: str, name: str, in_flow: bool):
        with self._in(in_flow):
            return self.webdriver.execute_script(FIND_BY_ROLE, role, name)

    def fill(self, label: str, value: str) -> None:
        field = wait_until(
            lambda: self.webdriver.execute_script(FIND_BY_LABEL, label), WAIT_SECONDS, f"a field labelled {label!r}"
        )
        field.clear()
        field.send_keys(value)

    def click(self, role: str, name: str, *, in_flow: bool = False) -> None:
        def press() -> bool:
            with self._in(in_flow):
                element = self.webdriver.execute_script(FIND_BY_ROLE, role, name)
                if element is None:
                    return False
                element.click()
                return True

        wait_until(press, WAIT_SECONDS, f"a {role} named {name!r}" + (" in the flow" if in_flow else ""))

    def wait_visible(self, role: str, name: str, *, in_flow: bool = False, timeout: float = WAIT_SECONDS) -> None:
        wait_until(
            lambda: self._find(role, name, in_flow),
            timeout,
            f"a {role} named {name!r}" + (" in the flow" if in_flow else ""),
        )

    def wait_for(self, script: str, *, timeout: float = WAIT_SECONDS, message: str = "") -> Any:
        return wait_until(lambda: self.evaluate(script), timeout, message or script)

    def evaluate(self, script: str) -> Any:
        self.webdriver.switch_to.default_content()
        return self.webdriver.execute_script(f"return ({script});")

    def evaluate_in_flow(self, script: str) -> Any:
        with self._in(True):
            return self.webdriver.execute_script(f"return ({script});")

    def axe_serious_violations(self) -> list[str]:
        # Scripts run by WebDriver are not subject to the page's CSP, so axe goes in as is.
        self.webdriver.switch_to.default_content()
        self.webdriver.execute_script(AXE.read_text())
        results = self.webdriver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then(done, e => done({error: String(e)}));"
        )
        assert "error" not in results, results
        return serious(results)

    def open_tab(self, url: str) -> int:
        if not self.tabs:
            self.tabs.append(self.webdriver.current_window_handle)
        self.webdriver.switch_to.new_window("tab")
        self.tabs.append(self.webdriver.current_window_handle)  # window_handles has no set order
        self.webdriver.get(url)
        return len(self.tabs) - 1

    def use_tab(self, index: int) -> None:
        self.webdriver.switch_to.window(self.tabs[index])

    def screenshot(self, path: Path) -> None:
        self.webdriver.switch_to.default_content()
        self.webdriver.save_screenshot(str(path))

    def close(self) -> None:
        if not self.closed:  # a test may close early; the fixture closes again
            self.closed = True
            self.webdriver.quit()


def serious(results: dict) -> list[str]:
    """axe-core results → the serious and critical violations, one line each (with 3 targets)."""
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@contextmanager
def xvfb_display(workdir: Path) -> Iterator[dict[str, str]]:
    """A private X display for WebKitGTK; yields the environment its browser needs.

    Xvfb picks a free display number itself (-displayfd), so parallel runs don't collide.
    The GTK stylesheet lets MiniBrowser's toolbar shrink: without it the window cannot be
    narrower than 447 px, and a phone is 390 px wide. It styles the browser's chrome only."""
    binary = shutil.which("Xvfb")
    if binary is None:
        raise RuntimeError("Xvfb is not installed (make system-deps installs xvfb)")
    (workdir / "gtk-3.0").mkdir(parents=True, exist_ok=True)
    (workdir / "gtk-3.0" / "gtk.css").write_text("* { min-width: 0; min-height: 0; padding: 0; margin: 0; }\n")
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [binary, "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=[write_end],
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as announced:
            display = announced.readline().strip()
        if not display:
            raise RuntimeError("Xvfb did not start")
        yield {"DISPLAY": f":{display}", "XDG_CONFIG_HOME": str(workdir)}
    finally:
        process_ended(proc)


def open_webkit(
    display_env: dict[str, str], size: tuple[int, int] = (1280, 900), time_zone: str | None = None
) -> SeleniumDriver:
    """A new WebKitGTK session whose viewport (not window) is `size` CSS pixels, in `time_zone`
    (an IANA name; the machine's when None)."""
    from selenium import webdriver
    from selenium.webdriver.webkitgtk.options import Options
    from selenium.webdriver.webkitgtk.service import Service

    executable = shutil.which(WEBKIT_DRIVER)
    if executable is None or not Path(WEBKIT_BROWSER).exists():
        raise RuntimeError("WebKitWebDriver is not installed (make system-deps installs webkit2gtk-driver)")
    options = Options()
    options.binary_location = WEBKIT_BROWSER
    options.add_argument("--automation")
    env = {**os.environ, **display_env, **({"TZ": time_zone} if time_zone else {})}
    service = Service(executable_path=executable, env=env)
    driver = webdriver.WebKitGTK(options=options, service=service)
    driver.set_script_timeout(30)
    width, height = size
    driver.set_window_size(width, height)
    chrome_height = driver.get_window_size()["height"] - driver.execute_script("return innerHeight")
    driver.set_window_size(width, height + chrome_height)  # the toolbar is not part of the viewport
    return SeleniumDriver(driver)


def open_chromium(
    browser,
    size: tuple[int, int] | None = None,
    *,
    phone: bool = False,
    for_axe: bool = False,
    time_zone: str | None = None,
) -> PlaywrightDriver:
    """A new Playwright context on the session's Chromium. `for_axe` bypasses the page's CSP,
    which would (rightly) refuse the injected axe-core; WebDriver's scripts need no such bypass."""
    options: dict[str, Any] = {"bypass_csp": for_axe}
    if time_zone:
        options["timezone_id"] = time_zone
    if size:
        options["viewport"] = {"width": size[0], "height": size[1]}
    if phone:
        options.update(is_mobile=True, has_touch=True)
    return PlaywrightDriver(browser.new_context(**options))
