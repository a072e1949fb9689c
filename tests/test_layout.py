"""The test tree's shape: test modules import no other test module, and its
directories under ``tests/sandbox`` and ``tests/gateway`` mirror packages.

A test module (anything under ``tests/`` but ``tests/support/``) may import
``tests.support`` and nothing else of ``tests``: shared plain functions and values
live in ``tests/support/``, shared fixtures in ``conftest.py`` files.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.engine import ROOT

TESTS = ROOT / "tests"
# End-to-end tests across packages (issue 17's seeded year): no package of their own.
ACROSS_PACKAGES = {"gateway/year"}


def _imported(tree: ast.AST) -> set[str]:
    """Modules named by import statements and by ``importlib.import_module("...")``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def _is_test_module(name: str) -> bool:
    """A module of the test tree that is not ``tests.support`` (packages excepted)."""
    if not name.startswith("tests.") or name.startswith("tests.support"):
        return False
    path = ROOT / Path(*name.split("."))
    return path.with_suffix(".py").is_file()


def cross_imports() -> set[tuple[str, str]]:
    found = set()
    for path in sorted(TESTS.rglob("*.py")):
        if path.is_relative_to(TESTS / "support"):
            continue
        for name in _imported(ast.parse(path.read_text(encoding="utf-8"))):
            if _is_test_module(name):
                found.add((path.relative_to(ROOT).as_posix(), name))
    return found


def test_test_modules_import_no_other_test_module() -> None:
    assert cross_imports() == set(), "import these from tests.support (or a conftest fixture)"


def unmirrored() -> list[str]:
    """Packages of ``sandbox/`` and ``gateway/`` with no directory of the same path in tests."""
    missing = []
    for top in ("sandbox", "gateway"):
        for init in sorted((ROOT / top).rglob("__init__.py")):
            package = init.parent.relative_to(ROOT)
            if "migrations" in package.parts:
                continue
            if not (TESTS / package).is_dir():
                missing.append(package.as_posix())
    return missing


def test_every_test_directory_mirrors_a_package() -> None:
    # The other direction is reported, not forced: ``unmirrored()`` lists the
    # packages tested from their parent's directory (tests/gateway/test_<name>.py).
    strays = [
        d.relative_to(TESTS).as_posix()
        for top in ("sandbox", "gateway")
        for d in sorted((TESTS / top).rglob("*"))
        if d.is_dir() and any(d.glob("*.py")) and not (ROOT / d.relative_to(TESTS)).is_dir()
    ]
    assert [s for s in strays if s not in ACROSS_PACKAGES] == []
