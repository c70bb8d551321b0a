"""The syncsvc.mapping package surface: exports and purity."""

from __future__ import annotations

import ast
from pathlib import Path

import syncsvc.mapping

PACKAGE = Path(syncsvc.mapping.__file__).parent


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted and every name in it exists."""
    names = syncsvc.mapping.__all__
    assert (sorted(names), True) == (names, all(hasattr(syncsvc.mapping, n) for n in names))


def test_no_io_imports() -> None:
    """The mapping modules import no asyncio, ldap3 or SQLAlchemy: mapping is pure."""
    imported = set()
    for module in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert set() == imported & {"asyncio", "ldap3", "sqlalchemy", "aiohttp"}
