"""A cheap answer to "may the store have changed since I last looked?", for read caches.

:meth:`StoreChanges.token` returns a value that differs after any commit to the store, by this
process or by another one, or None when that cannot be told (a cache must then not serve).

- SQLite: ``PRAGMA data_version`` on a connection of its own, which changes whenever another
  connection (of this process or another one) commits a change: a few microseconds, no thread
  hop, and exact.
- PostgreSQL, this process's commits: every connection of the engine that committed bumps a
  counter when it goes back to the pool, i.e. after the commit finished. Bumping at ``commit``
  itself would be too early: a read between the bump and the end of the commit would cache
  the old row under the new token.
- PostgreSQL, other processes: ``LISTEN syncsvc_store`` on a connection of its own; statement
  triggers on the resource tables (migration 0005) NOTIFY at commit; notifications from this
  process's own backends are already counted and ignored. Until the listener is connected, and
  while it reconnects, the token is None. A notification reaches this process a moment after
  the other process's commit; that moment is the staleness bound across replicas
  (docs/reliability.md, "The SCIM response cache").
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.store.engine import sqlite_file

__all__ = ["CHANNEL", "StoreChanges"]

log = structlog.get_logger(__name__)

CHANNEL = "syncsvc_store"
# Options of SQLAlchemy's asyncpg dialect that asyncpg.connect does not take.
_DIALECT_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func", "async_creator_fn")


class StoreChanges:
    """Change tokens for one engine; :meth:`start` in the event loop, :meth:`aclose` at the end."""

    def __init__(self, engine: AsyncEngine, *, reconnect_delay: float = 1.0) -> None:
        self._engine = engine
        self._local = 0
        self._remote = 0
        self._reconnect_delay = reconnect_delay
        self._sqlite: sqlite3.Connection | None = None
        self._listener: Any = None  # asyncpg.Connection while LISTENing
        self._task: asyncio.Task[None] | None = None
        self._postgres = engine.dialect.name == "postgresql"
        self._listening = False
        self._own_backends: set[int] = set()
        # Per instance: two apps on one engine each count every commit.
        self._flag = f"syncsvc_committed_{id(self):x}"

    # -- this process's commits ------------------------------------------------------------------

    def _listeners(self) -> list[tuple[str, Any]]:
        if not self._postgres:
            return []  # SQLite's data_version counts this process's other connections too
        return [("commit", self._committing), ("checkin", self._checked_in),
                ("checkout", self._checked_out), ("close", self._closed),
                ("invalidate", self._invalidated)]

    # Our own connections' backends: their NOTIFYs are commits the local counter already
    # counted, and counting them again would drop a moment-old answer for nothing.
    def _checked_out(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_conn, "driver_connection", None)
        if driver is not None:
            self._own_backends.add(driver.get_server_pid())

    def _closed(self, dbapi_conn: Any, _record: Any) -> None:
        driver = getattr(dbapi_conn, "driver_connection", None)
        if driver is not None:
            self._own_backends.discard(driver.get_server_pid())

    def _invalidated(self, dbapi_conn: Any, record: Any, _exc: Any) -> None:
        self._closed(dbapi_conn, record)

    def _committing(self, conn: Any) -> None:
        conn.info[self._flag] = True

    def _checked_in(self, _dbapi_conn: Any, record: Any) -> None:
        if record is not None and record.info.pop(self._flag, False):
            self._local += 1

    # -- the token -------------------------------------------------------------------------------

    def token(self) -> tuple[int, int] | None:
        """Equal tokens: no commit reached the store in between. None: unknown."""
        if not self._listening:
            return None
        if self._postgres:
            if self._listener is None or self._listener.is_closed():
                return None
            return self._local, self._remote
        if self._sqlite is None:
            return None  # an in-memory store, or a watch that failed to open: no cache
        try:
            version = self._sqlite.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return None
        return self._local, int(version)

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        for name, listener in self._listeners():
            event.listen(self._engine.sync_engine, name, listener)
        self._listening = True
        if self._postgres:
            self._task = asyncio.create_task(self._listen_forever(), name="store-changes-listener")
            return
        path = sqlite_file(self._engine)
        if path is not None:
            # Read-only: this connection only ever asks for data_version. check_same_thread off:
            # it lives in the event loop's thread but is closed from wherever aclose runs.
            try:
                self._sqlite = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True,
                                               check_same_thread=False, isolation_level=None)
            except sqlite3.Error as exc:
                log.warning("store.changes_watch_failed", error_type=type(exc).__name__)

    async def aclose(self) -> None:
        if self._listening:
            for name, listener in self._listeners():
                event.remove(self._engine.sync_engine, name, listener)
            self._listening = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None

    # -- PostgreSQL: LISTEN ----------------------------------------------------------------------

    def _notified(self, _conn: Any, pid: int, _channel: str, _payload: str) -> None:
        if pid not in self._own_backends:
            self._remote += 1

    async def _listen_forever(self) -> None:
        import asyncpg

        _, options = self._engine.dialect.create_connect_args(self._engine.url)
        for key in _DIALECT_ONLY:
            options.pop(key, None)
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(**options)
                await conn.add_listener(CHANNEL, self._notified)
                # Whatever committed while nobody listened is unknown: a new token.
                self._remote += 1
                self._listener = conn
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c: lost.set())
                await lost.wait()
                log.warning("store.changes_listener_lost")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down or refuses: retry; the cache stays off
                log.warning("store.changes_listener_failed", error_type=type(exc).__name__)
            finally:
                self._listener = None
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(self._reconnect_delay)
