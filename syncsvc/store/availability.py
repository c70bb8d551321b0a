"""Tell "the store cannot serve right now" apart from every other database error.

A PostgreSQL that is down or restarting, a lost connection, or an SQLite file that is locked,
read-only or on a full disk are conditions a client should retry (HTTP 503) and a run should
report as such; a bug (a bad statement, a constraint we did not expect) stays an internal error.
The check is by error class and code, never by matching message text.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError

__all__ = ["unavailable_reason"]

# SQLite primary result codes (https://sqlite.org/rescode.html) that mean "not now", not "wrong".
_SQLITE_UNAVAILABLE = {
    5: "the database is locked (SQLITE_BUSY)",
    6: "a table is locked (SQLITE_LOCKED)",
    8: "the database is read-only (SQLITE_READONLY)",
    10: "disk I/O error (SQLITE_IOERR)",
    13: "the disk is full (SQLITE_FULL)",
    14: "the database file cannot be opened (SQLITE_CANTOPEN)",
}
# PostgreSQL SQLSTATE classes: 08 connection exception, 57P operator intervention (shutdown,
# cannot connect now), 53 insufficient resources (too many connections, disk full).
_PG_UNAVAILABLE_PREFIXES = ("08", "57P", "53")


def unavailable_reason(exc: BaseException) -> str | None:
    """A short reason when *exc* means the store is unreachable or cannot write; else None.

    The reason names the condition, never the URL or credentials: it may reach a client.
    """
    if isinstance(exc, (ConnectionError, TimeoutError)):
        # Raised by the driver's connect before SQLAlchemy wraps anything (asyncpg: refused).
        return f"cannot connect to the database ({type(exc).__name__})"
    if not isinstance(exc, DBAPIError):
        return None
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return "the database connection was lost"
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _SQLITE_UNAVAILABLE.get(code & 0xFF)
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_PG_UNAVAILABLE_PREFIXES):
        return f"the database is not accepting queries (SQLSTATE {sqlstate})"
    return None
