"""Keeping the query planner informed after a sync rewrote much of the store.

Right after a first load of 10k users, PostgreSQL has no statistics and no visibility map for
the new rows: a list page sorted by id then ran as a sequential scan and a sort (33 ms at 10k)
instead of an index-only scan (1 ms), until autovacuum came round a minute or more later. A
sync that wrote a large share of a table therefore refreshes them at once.
"""

from __future__ import annotations

from typing import Final

import structlog
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["analyze_while_loading", "refresh_statistics", "worth_refreshing"]

log = structlog.get_logger(__name__)

# Constants, never input: the tables a sync writes and SCIM reads filter and page through.
_TABLES: Final = ("scim_user", "scim_user_email", "scim_group", "scim_group_member")
_MIN_ROWS: Final = 1000
_SHARE: Final = 0.1


# Pages of new rows after which a run that is filling the store re-analyzes it: each time the
# tables have grown about eightfold, so a run of N pages analyzes log8(N) times.
_ANALYZE_AT_PAGES: Final = frozenset({1, 8, 64, 512, 4096})


async def analyze_while_loading(engine: AsyncEngine, pages_with_new_rows: int) -> None:
    """ANALYZE on PostgreSQL while a run fills the store, at :data:`_ANALYZE_AT_PAGES`.

    Without statistics the planner scanned whole tables for the per-page lookups by key (the
    emails of a page, the member DNs of a group): at 1M users on a server with autovacuum
    off, 1,000 pages each scanned every email row written so far (499.5 million rows read)
    and each 1000-DN member lookup took 740 ms instead of 29 ms. Autovacuum catches up within
    a minute or two where it runs; this does not depend on it.
    """
    if engine.dialect.name != "postgresql" or pages_with_new_rows not in _ANALYZE_AT_PAGES:
        return
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"ANALYZE {', '.join(_TABLES)}"))
    except SQLAlchemyError as exc:
        log.warning("store.statistics_not_refreshed", error=str(exc).splitlines()[0])


def worth_refreshing(rows_written: int, rows_total: int) -> bool:
    """Whether a run wrote enough for stale statistics to matter (autovacuum covers the rest)."""
    return rows_written >= _MIN_ROWS and rows_written >= _SHARE * max(rows_total, 1)


async def refresh_statistics(engine: AsyncEngine) -> None:
    """VACUUM (ANALYZE) on PostgreSQL, ``PRAGMA optimize`` on SQLite. Best effort: a failure
    is logged and leaves the data as it was (the planner just keeps its old picture)."""
    try:
        if engine.dialect.name == "postgresql":
            # VACUUM refuses to run inside a transaction block.
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(f"VACUUM (ANALYZE) {', '.join(_TABLES)}"))
        else:
            async with engine.connect() as conn:
                await conn.execute(text("PRAGMA optimize"))
                await conn.commit()
    except SQLAlchemyError as exc:
        log.warning("store.statistics_not_refreshed", error=str(exc).splitlines()[0])
