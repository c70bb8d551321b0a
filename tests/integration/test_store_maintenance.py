"""Planner statistics refreshed after a large sync, on both stores."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine, upgrade
from syncsvc.store.maintenance import refresh_statistics
from tests.integration.syncenv import settings_for, sync_once


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


async def test_a_run_filling_the_store_analyzes_it(slapd: Any, store_url: str) -> None:
    """The first page of new rows gives PostgreSQL statistics at once: it does not wait for
    autovacuum (off on some servers) while later pages look rows up by key."""
    settings = settings_for(slapd, store_url)
    await sync_once(settings)
    if not store_url.startswith("postgresql"):
        return  # SQLite plans by its indexes without statistics
    engine = create_engine(StoreSettings(url=store_url))
    try:
        async with engine.connect() as conn:
            analyzed = set(await conn.scalars(text(
                "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")))
    finally:
        await engine.dispose()
    assert {"scim_user", "scim_user_email", "scim_group", "scim_group_member"} <= analyzed
