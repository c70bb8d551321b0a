"""PostgreSQL reads of one row by key, on asyncpg connections of their own.

Through SQLAlchemy a GET of one user cost four round trips: the pool's pre-ping, BEGIN, the
statement and ROLLBACK, each a wake-up of the event loop, plus SQLAlchemy's execution around
the statement: about 1.3 ms of CPU per GET (bench/RESULTS.md). Here the statement is compiled
once (:mod:`syncsvc.store.rawreads`) and sent on an autocommit asyncpg connection, as a prepared
statement from asyncpg's cache: one round trip. Each read is its own statement outside any
transaction, so it sees every commit made before it (docs/reliability.md).

There is no ping: the pre-ping is there so that a restarted PostgreSQL costs no request an
error, and a read can be repeated safely instead. A read whose connection turns out dead (a
restart, ``pg_terminate_backend``) runs once more on a new connection, after the other idle
connections, which died the same way, are closed. Writes keep the engine and its pre-ping.

At most :data:`_CONNECTIONS` connections, opened when first needed, beside the engine's pool;
they connect with the engine's URL.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from sqlalchemy import Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.store.rawreads import StatementCache

__all__ = ["PgReader"]

# Point reads take a round trip each: a few connections serve many concurrent requests.
_CONNECTIONS = 4
# Options of SQLAlchemy's asyncpg dialect that are not asyncpg's own connect arguments.
_DIALECT_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func",
                 "async_creator_fn")
# What asyncpg raises for a statement, or for a connection that is gone.
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class PgReader:
    """Point reads on PostgreSQL; use it from one event loop."""

    def __init__(self, engine: AsyncEngine) -> None:
        dialect = engine.sync_engine.dialect
        self._dialect = dialect
        args, kwargs = dialect.create_connect_args(engine.url)
        connect = {k: v for k, v in kwargs.items() if k not in _DIALECT_ONLY}
        if "prepared_statement_cache_size" in kwargs:  # 0 behind PgBouncer: none here either
            connect["statement_cache_size"] = int(kwargs["prepared_statement_cache_size"])
        self._connect_args = (tuple(args), connect)
        self._statements = StatementCache(lambda: dialect)
        self._idle: list[asyncpg.Connection] = []
        self._slots = asyncio.Semaphore(_CONNECTIONS)

    async def all(self, statement: Select[Any], params: dict[str, Any] | None = None) -> list[Any]:
        """Every row of ``statement`` (named tuples, as SQLAlchemy's rows read): only for
        statements bounded by an index. Build ``statement`` once and pass the same object.

        Raises:
            sqlalchemy.exc.DBAPIError: PostgreSQL refused or failed the read (twice, when the
                first connection was dead); ConnectionError, TimeoutError: it cannot be reached.
        """
        raw = self._statements.get(statement)
        args = raw.args(params or {})
        try:
            async with self._slots:
                found = await self._fetch(raw.sql, args)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # As the engine reports them: the error middleware tells "unavailable" (503) by
            # SQLSTATE class and by InterfaceError.
            raise DBAPIError.instance(raw.sql, args, exc, Exception, dialect=self._dialect) from exc
        return raw.rows(found)

    async def _fetch(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        if self._idle:
            conn = self._idle.pop()
            try:
                return await self._run(conn, sql, args)
            except _DRIVER_ERRORS:
                if not conn.is_closed():
                    raise  # the statement failed, not the connection: no second try
                self._close_idle()
        return await self._run(await self._new_connection(), sql, args)

    async def _run(self, conn: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> list[Any]:
        """``sql`` on ``conn``, which goes back to the idle ones unless it is dead or the read
        was interrupted (cancelled: its state is unknown)."""
        try:
            found: list[Any] = await conn.fetch(sql, *args)
        except _DRIVER_ERRORS:
            if not conn.is_closed():
                self._idle.append(conn)  # autocommit: no transaction to end
            raise
        except BaseException:
            conn.terminate()
            raise
        self._idle.append(conn)
        return found

    async def _new_connection(self) -> asyncpg.Connection:
        args, kwargs = self._connect_args
        conn: asyncpg.Connection = await asyncpg.connect(*args, **kwargs)
        return conn

    def _close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.terminate()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(conn.close(timeout=5) for conn in idle), return_exceptions=True)
