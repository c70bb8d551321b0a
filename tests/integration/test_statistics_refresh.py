"""Planner statistics gathered while a run fills PostgreSQL, beside its pages: a slow ANALYZE
or VACUUM holds up no page, a shutdown does not wait for them, a failed one only costs a log
line, and a run that wrote a large share of the store ends with every table refreshed."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from structlog.testing import capture_logs

from syncsvc.domain import RunMode, RunStatus
from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine
from syncsvc.store.maintenance import RunStatistics
from syncsvc.store.schema import USERS
from syncsvc.sync import SyncOptions, run_sync
from tests.integration.syncenv import pipeline, settings_for
from tests.support.slapd import Slapd

pytestmark = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)

# The base fixture's directory users, all written by a first full run.
DIRECTORY_USERS = 30

# A directory large enough for a first load to be worth a refresh (maintenance._MIN_ROWS).
BIG_USERS = 1200

WAITING_ANALYZE = text(
    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'ANALYZE %' "
    "AND wait_event_type = 'Lock' AND datname = current_database()")
ANY_MAINTENANCE = text(
    "SELECT count(*) FROM pg_stat_activity WHERE (query LIKE 'ANALYZE %' OR query LIKE 'VACUUM %')"
    " AND state = 'active' AND datname = current_database()")
REFRESHED = text(
    "SELECT relname FROM pg_stat_user_tables "
    "WHERE last_vacuum IS NOT NULL AND last_analyze IS NOT NULL")


# The lock ANALYZE and VACUUM take on a table (and only they wait for).
LOCKS = {table: text(f"LOCK TABLE {table} IN SHARE UPDATE EXCLUSIVE MODE")
         for table in ("scim_user", "scim_user_email")}


@asynccontextmanager
async def analyze_blocked(engine: AsyncEngine, table: str = "scim_user") -> AsyncIterator[None]:
    """Hold :data:`LOCKS` ``table`` until the block ends."""
    async with engine.connect() as conn, conn.begin():
        await conn.execute(LOCKS[table])
        yield


@pytest.fixture(scope="module")
def big_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """A slapd with BIG_USERS users and 10 groups."""
    with Slapd.generated(tmp_path_factory.mktemp("big"), users=BIG_USERS, groups=10) as server:
        yield server


async def until(engine: AsyncEngine, check: Callable[[AsyncConnection], Awaitable[bool]]) -> None:
    """Poll ``check`` until it holds; a run stuck behind its ANALYZE never gets there (the
    minute is for a slow machine, not a measure)."""
    async with asyncio.timeout(60):
        while True:
            async with engine.connect() as conn:
                if await check(conn):
                    return
            await asyncio.sleep(0.05)


async def users_stored(conn: AsyncConnection) -> int:
    return int(await conn.scalar(select(func.count()).select_from(USERS)) or 0)


async def pages_written_beside_analyze(conn: AsyncConnection) -> bool:
    """Every page is written while the first page's ANALYZE still waits for its lock."""
    return await users_stored(conn) == DIRECTORY_USERS and await conn.scalar(WAITING_ANALYZE) == 1


async def marks_saved(conn: AsyncConnection) -> bool:
    """The run has saved its marks: its last write but the statistics."""
    return await conn.scalar(text("SELECT count(*) FROM sync_state WHERE key = 'users.mark'")) == 1


async def run_done_but_analyze(conn: AsyncConnection) -> bool:
    """The run has written everything while the ANALYZE still waits for its lock: all that is
    left is to wait for it."""
    return await marks_saved(conn) and await pages_written_beside_analyze(conn)


async def test_pages_are_written_while_the_store_is_analyzed(slapd: Any, store_url: str) -> None:
    """The ANALYZE after the first page of new rows runs beside the pages that follow: with it
    held up, the run writes every page, then ends (and records success) once it is done."""
    settings = settings_for(slapd, store_url)
    async with pipeline(settings) as service:
        other = create_engine(StoreSettings(url=store_url))
        try:
            async with analyze_blocked(other):
                run = asyncio.create_task(run_sync(service.sync, SyncOptions(mode=RunMode.FULL)))
                await until(other, pages_written_beside_analyze)
                assert not run.done()  # the run waits for its statistics before it ends
            report = await run
            async with other.connect() as conn:
                analyzed = await conn.scalar(text(
                    "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                    "WHERE relname = 'scim_user_email'"))
        finally:
            await other.dispose()
    assert RunStatus.SUCCESS == report.status
    assert analyzed is True


async def test_a_shutdown_does_not_wait_for_an_analyze(slapd: Any, store_url: str) -> None:
    """Cancelled while its ANALYZE is held up, the run stops it on the server and is recorded
    as stopped; the rows it wrote stay."""
    settings = settings_for(slapd, store_url)
    async with pipeline(settings) as service:
        other = create_engine(StoreSettings(url=store_url))
        try:
            async with analyze_blocked(other):
                run = asyncio.create_task(run_sync(service.sync, SyncOptions(mode=RunMode.FULL)))
                await until(other, run_done_but_analyze)
                run.cancel()
                # The run re-raises the cancellation from its except* clause (as a group).
                with pytest.raises((asyncio.CancelledError, BaseExceptionGroup)):
                    await run
                async with other.connect() as conn:
                    analyzing = await conn.scalar(ANY_MAINTENANCE)
                    status = await conn.scalar(text("SELECT status FROM sync_run"))
                    users = await users_stored(conn)
        finally:
            await other.dispose()
    assert (0, "failed", DIRECTORY_USERS) == (analyzing, status, users)


@pytest.mark.empty_store
async def test_a_failed_analyze_is_logged_and_not_raised(store_url: str) -> None:
    """On a store without the tables, the ANALYZE fails: a warning, nothing raised."""
    engine = create_engine(StoreSettings(url=store_url))
    statistics = RunStatistics(engine)
    try:
        with capture_logs() as logs:
            statistics.pages_loaded(1)
            await statistics.settle()
    finally:
        await engine.dispose()
    assert ["store.statistics_not_refreshed"] == [e["event"] for e in logs]


async def test_a_large_load_ends_with_every_table_refreshed(big_slapd: Slapd, store_url: str) -> None:
    """A first load of BIG_USERS users resolves its groups and plans its sweep while the
    statistics are refreshed (held up here), and ends with every table vacuumed and analyzed:
    the first SCIM list counts its total from an index alone."""
    settings = settings_for(big_slapd, store_url)
    settings = dataclasses.replace(settings, ldap=dataclasses.replace(settings.ldap, page_size=500))
    async with pipeline(settings) as service:
        other = create_engine(StoreSettings(url=store_url))
        try:
            async with analyze_blocked(other, "scim_user_email"):
                run = asyncio.create_task(run_sync(service.sync, SyncOptions(mode=RunMode.FULL)))
                await until(other, marks_saved)
                assert not run.done()
            report = await run
            async with other.connect() as conn:
                refreshed = set(await conn.scalars(REFRESHED))
                plan = "\n".join(await conn.scalars(text(
                    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
                    "SELECT count(*) FROM scim_user")))
        finally:
            await other.dispose()
    assert (RunStatus.SUCCESS, BIG_USERS) == (report.status, report.created - 10)
    assert {"scim_user", "scim_user_email", "scim_group", "scim_group_member"} <= refreshed
    assert "Index Only Scan" in plan and "Heap Fetches: 0" in plan, plan
