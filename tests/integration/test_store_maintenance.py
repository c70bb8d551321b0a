"""Planner statistics refreshed after a large sync, on both stores."""

from __future__ import annotations

from sqlalchemy import text

from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine, upgrade
from syncsvc.store.maintenance import refresh_statistics


async def test_refresh_statistics_runs_outside_a_transaction(store_url: str) -> None:
    """PostgreSQL's VACUUM refuses a transaction block; the refresh must still happen."""
    engine = create_engine(StoreSettings(url=store_url))
    try:
        await upgrade(engine)
        await refresh_statistics(engine)
        if engine.dialect.name == "postgresql":
            async with engine.connect() as conn:
                analyzed = await conn.scalar(text(
                    "SELECT last_vacuum IS NOT NULL AND last_analyze IS NOT NULL "
                    "FROM pg_stat_user_tables WHERE relname = 'scim_user'"))
            assert analyzed is True
    finally:
        await engine.dispose()
