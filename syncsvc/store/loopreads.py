"""SQLite reads of one row by key, run on the event loop's own thread.

Through aiosqlite a query costs several hand-offs to its worker thread and back (cursor,
execute, fetch, close, rollback), each waking the event loop and taking the GIL back: a GET of
one user spent about a millisecond there against some 40 microseconds of SQLite work
(bench/RESULTS.md). A lookup by primary key or by a unique index touches a few pages that are
almost always cached, so running it inline is cheaper than any hand-off; longer queries (lists,
filters that scan) stay off the loop.

A list page may scan (a deep OFFSET, a ``co`` filter): :meth:`LoopReader.all_in_thread` runs
it on a worker thread of this reader, with a connection of that thread, the statement compiled
once as for point reads. One hand-off there and back in place of aiosqlite's seven (checkout,
cursor, execute, fetch, close, rollback, return), and no SQLAlchemy execution around it.

The connections are read-only (``mode=ro`` and ``query_only``) and outside any transaction
between statements, so every statement sees the latest commit (WAL readers take no lock that
could make a writer wait). If SQLite is busy all the same, the read fails fast and the caller
goes the usual way.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Select, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection, StaticPool

from syncsvc import jsoncodec
from syncsvc.store.engine import sqlite_file
from syncsvc.store.rawreads import StatementCache

__all__ = ["LoopReader", "loop_reader_for"]

# A WAL reader waits only in rare cases (a checkpoint resetting the log); never hold the loop
# longer than this.
_BUSY_TIMEOUT_MS = 20
# Worker threads for statements that may scan: two, so that one long scan does not hold up
# every other page (SQLite runs without the GIL, beside the event loop).
_WORKERS = 2


class LoopReader:
    """Point reads on the calling thread, list pages on worker threads of its own; use it
    from one event loop only."""

    def __init__(self, path: str) -> None:
        self._file_uri = f"{Path(path).resolve().as_uri()}?mode=ro"
        uri = f"sqlite:///{self._file_uri}&uri=true"
        self._engine: Engine = sqlalchemy.create_engine(
            uri, poolclass=StaticPool, json_serializer=jsoncodec.dumps_text,
            json_deserializer=jsoncodec.loads,
            # One connection, used by the loop's thread only; created there, closed anywhere.
            connect_args={"check_same_thread": False, "timeout": _BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(self._engine, "connect", _read_only)
        self._statements = StatementCache(lambda: self._engine.dialect)
        self._pooled: PoolProxiedConnection | None = None
        self._conn: sqlite3.Connection | None = None
        self._workers = ThreadPoolExecutor(_WORKERS, thread_name_prefix="sqlite-reads")
        self._local = threading.local()  # each worker's connection
        self._opened: list[sqlite3.Connection] = []  # every worker's, to close them
        self._opened_lock = threading.Lock()

    def all(self, statement: Select[Any], params: dict[str, Any] | None = None) -> list[Any]:
        """Every row of ``statement`` (named tuples, as SQLAlchemy's rows read): only for
        statements bounded by an index (a unique key); anything that may scan belongs off the
        loop (:meth:`all_in_thread`). Build ``statement`` once and pass the same object each time.

        Raises:
            sqlalchemy.exc.DBAPIError: SQLite was busy or failed; read the usual way.
        """
        conn = self._conn if self._conn is not None else self._connect()
        raw = self._statements.get(statement)
        args = raw.args(params or {})
        try:
            found = conn.execute(raw.sql, args).fetchall()
        except sqlite3.Error as exc:
            self._drop()  # the next read starts on a fresh connection
            raise DBAPIError.instance(raw.sql, args, exc, sqlite3.Error,
                                      dialect=self._engine.dialect) from exc
        return raw.rows(found)

    async def all_in_thread(
        self, statement: Select[Any], params: dict[str, Any] | None = None
    ) -> list[Any]:
        """Every row of ``statement``, read on a worker thread: for statements that may scan.
        Build ``statement`` once and pass the same object each time.

        Raises:
            sqlalchemy.exc.DBAPIError: SQLite was busy or failed; read the usual way.
        """
        if self._conn is None:
            self._connect()  # compiling asks the dialect, which connecting initialises
        raw = self._statements.get(statement)  # compiled here: the cache is the loop's
        args = raw.args(params or {})
        loop = asyncio.get_running_loop()
        try:
            found = await loop.run_in_executor(self._workers, self._fetch_in_worker, raw.sql, args)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(raw.sql, args, exc, sqlite3.Error,
                                      dialect=self._engine.dialect) from exc
        return raw.rows(found)

    def _fetch_in_worker(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._file_uri, uri=True,
                                   check_same_thread=False, isolation_level=None,
                                   timeout=_BUSY_TIMEOUT_MS / 1000)
            _read_only(conn, None)
            with self._opened_lock:
                self._opened.append(conn)
            self._local.conn = conn
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.Error:
            # The next read of this thread starts on a fresh connection.
            self._local.conn = None
            with self._opened_lock:
                self._opened.remove(conn)
            conn.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        # Kept open, in autocommit: no checkout and reset per read, and no transaction left
        # open between reads, so each one sees the latest commit.
        self._pooled = self._engine.raw_connection()
        conn = self._pooled.driver_connection
        assert isinstance(conn, sqlite3.Connection)
        conn.isolation_level = None
        self._conn = conn
        return conn

    def _drop(self) -> None:
        pooled, self._pooled, self._conn = self._pooled, None, None
        if pooled is not None:
            pooled.invalidate()
            pooled.close()

    def close(self) -> None:
        self._drop()
        self._workers.shutdown(wait=True)
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._engine.dispose()


def _read_only(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA query_only=ON")
    cur.execute("PRAGMA busy_timeout=20")  # _BUSY_TIMEOUT_MS
    # As the engine's connections (syncsvc.store.engine): a page reads users, memberships and
    # groups, which evict each other from the default 2 MiB cache.
    cur.execute("PRAGMA cache_size=-16384")
    cur.close()


def loop_reader_for(engine: AsyncEngine) -> LoopReader | None:
    """A reader for ``engine``'s SQLite file; None for PostgreSQL or an in-memory database."""
    path = sqlite_file(engine)
    return LoopReader(path) if path is not None else None

