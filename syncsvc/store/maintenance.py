"""Keeping the query planner informed after a sync rewrote much of the store.

Right after a first load of 10k users, PostgreSQL has no statistics and no visibility map for
the new rows: a list page sorted by id then ran as a sequential scan and a sort (33 ms at 10k)
instead of an index-only scan (1 ms), until autovacuum came round a minute or more later. A
sync that wrote a large share of a table therefore refreshes them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Final

import structlog
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["RunStatistics", "refresh_statistics", "worth_refreshing"]

log = structlog.get_logger(__name__)

# Constants, never input: the tables a sync writes and SCIM reads filter and page through.
# Users are read (and written) before groups and memberships are resolved from them.
_USER_TABLES: Final = ("scim_user", "scim_user_email")
_GROUP_TABLES: Final = ("scim_group", "scim_group_member")
_TABLES: Final = (*_USER_TABLES, *_GROUP_TABLES)
_MIN_ROWS: Final = 1000
_SHARE: Final = 0.1


# Pages of new rows after which a run that is filling the store re-analyzes it: each time the
# tables have grown about eightfold, so a run of N pages analyzes log8(N) times.
_ANALYZE_AT_PAGES: Final = frozenset({1, 8, 64, 512, 4096})

# What a failed refresh may raise: the store refused or was unreachable. Anything else is a bug.
_STORE_ERRORS: Final = (SQLAlchemyError, OSError)


def worth_refreshing(rows_written: int, rows_total: int) -> bool:
    """Whether a run wrote enough for stale statistics to matter (autovacuum covers the rest)."""
    return rows_written >= _MIN_ROWS and rows_written >= _SHARE * max(rows_total, 1)


async def refresh_statistics(engine: AsyncEngine) -> None:
    """VACUUM (ANALYZE) on PostgreSQL, ANALYZE on SQLite. Best effort: a failure is logged and
    leaves the data as it was (the planner just keeps its old picture).

    VACUUM, not ANALYZE alone: on a server without autovacuum, a 100k-user store analyzed but
    not vacuumed counted a list's totalResults with a sequential scan (134 ms, 30 with the
    visibility map) and sorted the table for a page at startIndex 50001 (420 ms, 17).

    SQLite: ``PRAGMA optimize`` (used before) analyzes only tables the same connection has
    queried (SQLite 3.40, Debian 12's), which a fresh pooled connection has not: no store ever
    had statistics. Without them the planner took the ``active`` index for ``active eq true``
    and sorted every active user for a page: 155 ms a page of 100 at 100k users, 1.5 ms
    analyzed (``active eq false`` with no inactive user, the other way round: 0.3 -> 91 ms, a
    scan that finds nothing). A full ANALYZE of the store took 0.16 s at 100k users;
    ``analysis_limit`` sampling left the estimates too coarse to change that plan."""
    await _refresh(engine, _TABLES)


async def _refresh(engine: AsyncEngine, tables: tuple[str, ...]) -> None:
    """:func:`refresh_statistics` of ``tables``: one of this module's constants, never input."""
    try:
        if engine.dialect.name == "postgresql":
            # VACUUM refuses to run inside a transaction block.
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(f"VACUUM (ANALYZE) {', '.join(tables)}"))
        else:
            async with engine.begin() as conn:
                for table in tables:  # SQLite analyzes one table (or the whole schema) a statement
                    await conn.execute(text(f"ANALYZE {table}"))
    except SQLAlchemyError as exc:
        log.warning("store.statistics_not_refreshed", error=str(exc).splitlines()[0])


class RunStatistics:
    """A run's upkeep of the planner's statistics, kept off its path where it can be.

    While a run fills PostgreSQL, it ANALYZEs at :data:`_ANALYZE_AT_PAGES` pages of new rows.
    Without statistics the planner scanned whole tables for the per-page lookups by key (the
    emails of a page, the member DNs of a group): at 1M users on a server with autovacuum
    off, 1,000 pages each scanned every email row written so far (499.5 million rows read)
    and each 1000-DN member lookup took 740 ms instead of 29 ms. Autovacuum catches up within
    a minute or two where it runs; this does not depend on it.

    That ANALYZE ran in the run's path (0.82 s of a 100k-user first load, at the 64th page,
    every page waiting), and so did the VACUUM (ANALYZE) of every table at the end (1.31 s).
    Now the ANALYZE runs on a connection of its own while pages keep coming: it takes a lock
    that only another ANALYZE or VACUUM waits for, and pages plan with the statistics they
    have until it commits. The users' tables, complete once the directory is read, are
    vacuumed while memberships are resolved and the sweep is planned; at the end only the
    groups' tables are, and the run ends (and SCIM reads follow) with every table refreshed.
    One statement runs at a time; a failure is logged and the run goes on.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgresql = engine.dialect.name == "postgresql"
        self._loading: asyncio.Task[None] | None = None
        self._again = False
        self._users: asyncio.Task[None] | None = None

    def pages_loaded(self, pages_with_new_rows: int) -> None:
        """The run has written its ``pages_with_new_rows``-th page of new rows."""
        if not self._postgresql or pages_with_new_rows not in _ANALYZE_AT_PAGES:
            return
        if self._loading is not None and not self._loading.done():
            self._again = True  # analyzed once more when the current one ends
            return
        self._loading = asyncio.create_task(self._analyze(), name="store-analyze-while-loading")

    def users_read(self, rows_written: int, rows_total: int) -> None:
        """The directory's users are read and written: refresh their tables in the background
        if the run wrote enough (:func:`worth_refreshing`) and nothing but the few users whose
        manager came later is left to write to them."""
        if self._postgresql and self._users is None and worth_refreshing(rows_written, rows_total):
            self._users = asyncio.create_task(self._refresh_users(), name="store-refresh-users")

    async def finish(self, rows_written: int, rows_total: int) -> None:
        """At the end of a run that succeeded: wait for what runs, then refresh the tables not
        refreshed yet if the run wrote enough."""
        await self.settle()
        if worth_refreshing(rows_written, rows_total):
            await _refresh(self._engine, _GROUP_TABLES if self._users else _TABLES)

    async def settle(self) -> None:
        """Wait for the statements still running (and an ANALYZE asked for meanwhile)."""
        for task in (self._loading, self._users):
            if task is not None:
                await task

    async def cancel(self) -> None:
        """Stop the statements still running (a shutdown waits for no statistics); the server
        drops them and keeps the statistics it had."""
        self._again = False
        for task in (self._users, self._loading):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _analyze(self) -> None:
        while True:
            self._again = False
            await _logged(self._analyze_once())
            if not self._again:
                return

    async def _analyze_once(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(text(f"ANALYZE {', '.join(_TABLES)}"))

    async def _refresh_users(self) -> None:
        if self._loading is not None:  # VACUUM would only wait for its lock
            await self._loading
        await _logged(_refresh(self._engine, _USER_TABLES))


async def _logged(statement: Awaitable[None]) -> None:
    """Run a statement beside the run: a failure is a log line, not the run's."""
    try:
        await statement
    except _STORE_ERRORS as exc:
        log.warning("store.statistics_not_refreshed", error=str(exc).splitlines()[0])
    except Exception:  # a bug: reported, but the run it runs beside goes on
        log.exception("store.statistics_not_refreshed")
