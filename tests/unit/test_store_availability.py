"""Which database errors mean "the store cannot serve now" (503, retry) and which are bugs."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, ProgrammingError

from syncsvc.store import unavailable_reason


def _sqlite(message: str, code: int) -> OperationalError:
    orig = sqlite3.OperationalError(message)
    orig.sqlite_errorcode = code  # set by sqlite3 itself on Python >= 3.11
    return OperationalError("stmt", {}, orig)


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


class TestUnavailableReason:
    def test_refused_connect_is_unavailable(self) -> None:
        """asyncpg's connect raises ConnectionRefusedError before SQLAlchemy wraps anything."""
        reason = unavailable_reason(ConnectionRefusedError(111, "Connect call failed"))
        assert reason is not None and "cannot connect" in reason

    def test_lost_connection_is_unavailable(self) -> None:
        """A closed connection (InterfaceError) is unavailable, whatever its text."""
        exc = InterfaceError("stmt", {}, Exception("connection is closed"))
        assert "the database connection was lost" == unavailable_reason(exc)

    def test_sqlite_read_only_locked_and_full_are_unavailable(self) -> None:
        """SQLite result codes by number (extended codes reduced to their primary code)."""
        assert "read-only" in (unavailable_reason(_sqlite("attempt to write", 8)) or "")
        assert "read-only" in (unavailable_reason(_sqlite("moved", 8 | (4 << 8))) or "")
        assert "locked" in (unavailable_reason(_sqlite("database is locked", 5)) or "")
        assert "full" in (unavailable_reason(_sqlite("disk full", 13)) or "")

    def test_postgres_shutdown_states_are_unavailable(self) -> None:
        """SQLSTATE 57P01 (admin shutdown), 57P03 (starting up), 08006 (connection failure)."""
        for state in ("57P01", "57P03", "08006", "53300"):
            exc = OperationalError("stmt", {}, _PgError(state))
            assert state in (unavailable_reason(exc) or "")

    def test_bugs_stay_bugs(self) -> None:
        """A syntax error, a missing table or a constraint is not "unavailable": it stays a 500."""
        assert unavailable_reason(_sqlite("no such table: x", 1)) is None
        assert unavailable_reason(ProgrammingError("stmt", {}, _PgError("42601"))) is None
        assert unavailable_reason(IntegrityError("stmt", {}, _PgError("23505"))) is None
        assert unavailable_reason(ValueError("not a database error")) is None
