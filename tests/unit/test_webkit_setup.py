"""The WebKit tests fail, never skip, on a machine without WebKitWebDriver or Xvfb."""

from __future__ import annotations

import pytest

from tests.browser import drivers


def test_missing_webkit_driver_is_an_error(monkeypatch):
    monkeypatch.setattr(drivers.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="webkit2gtk-driver"):
        drivers.open_webkit({"DISPLAY": ":99"})


def test_missing_xvfb_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(drivers.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="xvfb"), drivers.xvfb_display(tmp_path):
        pass
