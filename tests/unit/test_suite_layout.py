"""Where test code lives: helpers in plain modules (tests/builders.py, tests/pages.py, ...),
fixtures in conftest.py, and no test module importing from another test module."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def _is_test_module(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def imported_test_modules(source: str) -> list[str]:
    """The test modules and conftests that `source` imports (absolute or relative)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            module = ("." * node.level) + (node.module or "")
            if _is_test_module(module):
                found.append(module)
            elif node.level and not node.module:  # from . import test_x
                found += [alias.name for alias in node.names if _is_test_module(alias.name)]
    return found


def defined_fixtures(source: str) -> list[str]:
    """Functions in `source` decorated with `@pytest.fixture` or `@fixture` (with or without arguments)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if ast.unparse(target) in ("pytest.fixture", "fixture"):
                    names.append(node.name)
    return names


def test_no_test_module_imports_another():
    offenders = {
        str(path.relative_to(TESTS)): imported
        for path in sorted(TESTS.rglob("*.py"))
        if (imported := imported_test_modules(path.read_text()))
    }
    assert offenders == {}, "put shared helpers in tests/builders.py or tests/pages.py"


def test_fixtures_live_only_in_conftest():
    offenders = {
        str(path.relative_to(TESTS)): fixtures
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "conftest.py" and (fixtures := defined_fixtures(path.read_text()))
    }
    assert offenders == {}


def test_the_checks_themselves_catch_offenders():
    """Guards the guards."""
    assert imported_test_modules("from tests.integration.test_verify import x") == ["tests.integration.test_verify"]
    assert imported_test_modules("from tests.conftest import sign_in") == ["tests.conftest"]
    assert imported_test_modules("from .test_recovery import redeem") == [".test_recovery"]
    assert imported_test_modules("import tests.browser.test_continue_page") == ["tests.browser.test_continue_page"]
    assert imported_test_modules("from tests.pages import sign_in") == []
    assert defined_fixtures("@pytest.fixture\ndef a(): pass\n@pytest.fixture(scope='module')\ndef b(): pass") == [
        "a",
        "b",
    ]
