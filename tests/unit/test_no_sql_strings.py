"""No SQL is built from strings: every raw SQL text in syncsvc is a literal.

Queries go through SQLAlchemy expressions with bound parameters. The few raw statements
(advisory locks, ``SELECT 1``, SQLite pragmas) must be string literals, with values passed as
bind parameters. This test reads the source (``ast``, not grep) and lists every call to
``text()``, ``literal_column()``, ``exec_driver_sql()`` or a DB-API ``execute()`` whose SQL is
anything but a literal: an f-string, a concatenation, a ``%`` or ``.format()``, a variable.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

import syncsvc

ROOT: Final = Path(syncsvc.__file__).parent
SQL_CALLS: Final = frozenset({"text", "literal_column", "exec_driver_sql", "execute"})

ALLOWED: Final = {
    # VACUUM takes no bind parameters; the table names are a module constant, not input.
    ("store/maintenance.py", "text"),
}


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _is_sqlalchemy(func: ast.expr) -> bool:
    """``text(...)`` as imported, or ``sqlalchemy.text(...)`` / ``sa.text(...)``."""
    if isinstance(func, ast.Name):
        return True
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
        func.value.id in ("sqlalchemy", "sa", "sql")


def _built(arg: ast.expr) -> bool:
    """True when the SQL argument is computed text rather than a plain literal."""
    if isinstance(arg, ast.Constant):
        return False
    if isinstance(arg, ast.JoinedStr | ast.BinOp):
        return True
    if isinstance(arg, ast.Call) and _name(arg.func) in ("format", "join"):
        return True
    # A name is fine for execute() (a SQLAlchemy statement object); for text() it is not.
    return False


def _offenders() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("store/migrations/"):
            continue  # Alembic's DDL, written by hand, no input reaches it
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = _name(node.func)
            if name not in SQL_CALLS:
                continue
            if name in ("text", "literal_column") and not _is_sqlalchemy(node.func):
                continue  # a method of our own that happens to be called text()
            arg = node.args[0]
            if name != "execute" and not isinstance(arg, ast.Constant):
                if _built(arg) or isinstance(arg, ast.Name):
                    found.add((rel, name))
            elif name == "execute" and _built(arg):
                found.add((rel, name))
    return found


def test_sql_text_is_always_a_literal() -> None:
    """Any new computed SQL string fails here until it is rewritten with bound parameters."""
    assert ALLOWED == _offenders()


def test_the_scanner_sees_a_built_string() -> None:
    """The check is not vacuous: an f-string inside text() is found."""
    tree = ast.parse('conn.execute(text(f"SELECT * FROM t WHERE a = {x}"))')
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _name(n.func) == "text"]

    assert [True] == [_built(call.args[0]) for call in calls]
