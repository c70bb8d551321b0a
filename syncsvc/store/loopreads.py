"""SQLite reads of one row by key, run on the event loop's own thread.

Through aiosqlite a query costs several hand-offs to its worker thread and back (cursor,
execute, fetch, close, rollback), each waking the event loop and taking the GIL back: a GET of
one user spent about a millisecond there against some 40 microseconds of SQLite work
(bench/RESULTS.md). A lookup by primary key or by a unique index touches a few pages that are
almost always cached, so running it inline is cheaper than any hand-off; longer queries (lists,
filters that scan) stay on aiosqlite, off the loop.

The connection is read-only (``mode=ro`` and ``query_only``) and outside any transaction
between statements, so every statement sees the latest commit (WAL readers take no lock that
could make a writer wait). If SQLite is busy all the same, the read fails fast and the caller
goes the usual way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Executable, event
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from syncsvc import jsoncodec
from syncsvc.store.engine import sqlite_file

__all__ = ["LoopReader", "loop_reader_for"]

# A WAL reader waits only in rare cases (a checkpoint resetting the log); never hold the loop
# longer than this.
_BUSY_TIMEOUT_MS = 20


class LoopReader:
    """Point reads on the calling thread; use it from the event loop only."""

    def __init__(self, path: str) -> None:
        uri = f"sqlite:///{Path(path).resolve().as_uri()}?mode=ro&uri=true"
        self._engine: Engine = sqlalchemy.create_engine(
            uri, poolclass=StaticPool, json_serializer=jsoncodec.dumps_text,
            json_deserializer=jsoncodec.loads,
            # One connection, used by the loop's thread only; created there, closed anywhere.
            connect_args={"check_same_thread": False, "timeout": _BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(self._engine, "connect", _read_only)
        self._conn: Connection | None = None

    def all(self, statement: Executable, params: dict[str, Any] | None = None) -> list[Row[Any]]:
        """Every row of ``statement``: only for statements bounded by an index (a unique key);
        anything that may scan belongs on aiosqlite, off the loop.

        Raises:
            sqlalchemy.exc.DBAPIError: SQLite was busy or failed; read the usual way.
        """
        if self._conn is None:
            # Kept open, in autocommit: no checkout and reset per read (a third of its cost),
            # and no transaction left open between reads, so each one sees the latest commit.
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            return list(self._conn.execute(statement, params or {}))
        except DBAPIError:
            self._drop()  # the next read starts on a fresh connection
            raise

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.invalidate()
            conn.close()

    def close(self) -> None:
        self._drop()
        self._engine.dispose()


def _read_only(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA query_only=ON")
    cur.execute("PRAGMA busy_timeout=20")  # _BUSY_TIMEOUT_MS
    cur.close()


def loop_reader_for(engine: AsyncEngine) -> LoopReader | None:
    """A reader for ``engine``'s SQLite file; None for PostgreSQL or an in-memory database."""
    path = sqlite_file(engine)
    return LoopReader(path) if path is not None else None

