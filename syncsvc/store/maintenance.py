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

__all__ = ["refresh_statistics", "worth_refreshing"]

log = structlog.get_logger(__name__)

# Constants, never input: the tables a sync writes and SCIM reads filter and page through.
_TABLES: Final = ("scim_user", "scim_user_email", "scim_group", "scim_group_member")
_MIN_ROWS: Final = 1000
_SHARE: Final = 0.1


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
