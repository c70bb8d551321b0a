"""Point reads of Users outside SQLAlchemy's execution (syncsvc.store.rawreads): on SQLite on the
loop's thread (loopreads), on PostgreSQL on asyncpg directly (pgreads). What they read must be
what SQLAlchemy reads, row for row and value for value; a locked SQLite falls back to aiosqlite;
a dead PostgreSQL connection costs no request an error."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Select, bindparam, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.http.app import ENGINE
from syncsvc.scim.state import SCIM
from syncsvc.settings import ScimSettings
from syncsvc.store import reads
from syncsvc.store.engine import is_postgres
from syncsvc.store.loopreads import LoopReader, loop_reader_for
from syncsvc.store.pgreads import PgReader
from syncsvc.store.schema import USERS
from tests.integration.scimenv import Scim, serving
from tests.integration.syncenv import settings_for, sync_once

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PROFILE = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Reader:
    """The store's point reader, called the same way on both stores."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.pg = PgReader(engine) if is_postgres(engine) else None
        self.loop = None if self.pg is not None else loop_reader_for(engine)
        assert self.pg is not None or self.loop is not None

    async def all(self, statement: Select[Any], params: dict[str, Any]) -> list[Any]:
        if self.pg is not None:
            return await self.pg.all(statement, params)
        assert self.loop is not None
        return self.loop.all(statement, params)

    async def close(self) -> None:
        if self.pg is not None:
            await self.pg.aclose()
        if self.loop is not None:
            self.loop.close()


def _by(column: str, dialect: str, *, groups: bool, manager: bool) -> Select[Any]:
    return select(USERS, *reads.user_extra_columns(dialect, groups=groups, manager=manager)) \
        .where(USERS.c[column] == bindparam("value"))


# Tests of one store's reader run on that store only (store_url's other backend is left out).
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
POSTGRES_ONLY = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)


@pytest.fixture
async def varied(
    slapd: Any, store_url: str, aiohttp_client: Any
) -> AsyncIterator[tuple[Scim, AsyncEngine]]:
    """The seed directory (managers, groups, photos) plus a profile and a local user with
    e-mails, a manager and no groups, behind a server without a response cache."""
    await sync_once(settings_for(slapd, store_url))
    async with serving(store_url, aiohttp_client, ScimSettings(response_cache_bytes=0)) as synced:
        yield await _vary(synced)


async def _vary(synced: Scim) -> tuple[Scim, AsyncEngine]:
    users = (await synced.json("GET", "/Users", count=100))["Resources"]
    some = users[0]["id"]
    await synced.json("PATCH", f"/Users/{some}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": PROFILE, "value": {"headline": "Reads", "pronouns": "they"}}]})
    await synced.json("POST", "/Users", {
        "schemas": [USER], "userName": "raw.reads", "displayName": "Raw Reads",
        "emails": [{"value": "raw@example.com", "primary": True}, {"value": "r2@example.com"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": some}},
    }, expect=201)
    return synced, synced.http.app[ENGINE]


async def test_raw_rows_equal_sqlalchemy_rows(varied: tuple[Scim, AsyncEngine]) -> None:
    _, engine = varied
    dialect = engine.dialect.name
    async with engine.connect() as conn:
        ids = list((await conn.execute(select(USERS.c.id, USERS.c.user_name_lower))).all())
    shapes = [_by("id", dialect, groups=True, manager=True),
              _by("user_name_lower", dialect, groups=True, manager=True),
              _by("id", dialect, groups=False, manager=False),
              _by("id", dialect, groups=True, manager=False)]
    reader = Reader(engine)
    try:
        seen = {"manager": 0, "groups": 0, "photo": 0, "profile": 0, "emails": 0}
        for user_id, name in ids:
            for statement in shapes:
                value = name if "user_name_lower" in str(statement.whereclause) else user_id
                async with engine.connect() as conn:
                    expected = list(await conn.execute(statement, {"value": value}))
                got = await reader.all(statement, {"value": value})
                assert [tuple(r._fields) for r in expected] == [r._fields for r in got]
                assert [tuple(r) for r in expected] == [tuple(r) for r in got]
                assert [list(map(type, r)) for r in expected] == [list(map(type, r)) for r in got]
            row = got[0]
            seen["manager"] += row.manager_id is not None
            seen["photo"] += row.photo_hash is not None
            seen["profile"] += bool(row.profile)
            seen["emails"] += bool(row.resource.get("emails"))
            full = await reader.all(shapes[0], {"value": user_id})
            seen["groups"] += bool(full[0].groups_json)
        assert all(seen.values()), seen  # every kind of user was compared
        missing = await reader.all(shapes[0], {"value": "00000000-0000-0000-0000-000000000000"})
        assert [] == missing
    finally:
        await reader.close()


async def test_reads_see_every_commit(varied: tuple[Scim, AsyncEngine]) -> None:
    """The raw connections are outside any transaction: a write is read at once."""
    scim, engine = varied
    reader = Reader(engine)
    try:
        statement = _by("user_name_lower", engine.dialect.name, groups=True, manager=True)
        before = await reader.all(statement, {"value": "raw.reads"})
        await scim.json("PATCH", f"/Users/{before[0].id}", {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "displayName", "value": "Read Again"}]})
        after = await reader.all(statement, {"value": "raw.reads"})
        assert (before[0].version + 1, "Read Again") == (after[0].version, after[0].display_name)
    finally:
        await reader.close()


@SQLITE_ONLY
async def test_a_locked_sqlite_fails_fast_then_reads_again(store_url: str) -> None:
    """SQLite locked by another connection: the loop reader raises at once (the service then
    reads through aiosqlite, which waits: test_scim_inline_reads); once the lock is gone it
    reads again. (A rollback journal, where a writer's lock keeps readers out; WAL readers
    are almost never locked out.)"""
    path = store_url.split("///", 1)[1]
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=DELETE")
    reader = LoopReader(path)
    statement = _by("user_name_lower", "sqlite", groups=True, manager=True)
    try:
        assert [] == reader.all(statement, {"value": "nobody"})
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("DELETE FROM scim_user")
        with pytest.raises(OperationalError, match="locked"):
            reader.all(statement, {"value": "nobody"})
        holder.execute("COMMIT")
        assert [] == reader.all(statement, {"value": "nobody"})
    finally:
        holder.close()
        reader.close()


async def _terminate_others(engine: AsyncEngine) -> int:
    """pg_terminate_backend for every other connection to the test database."""
    url = engine.url
    conn = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                                 password=url.password, database=url.database)
    try:
        killed = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return len(killed)
    finally:
        await conn.close()


@POSTGRES_ONLY
async def test_a_terminated_postgres_connection_is_read_again(
    varied: tuple[Scim, AsyncEngine],
) -> None:
    """Every connection ended by the server (as a restart does): the next read, on the reader
    and through the server, answers without an error."""
    scim, engine = varied
    reader = PgReader(engine)
    statement = _by("user_name_lower", "postgresql", groups=True, manager=True)
    try:
        # Several idle connections, as under load.
        first = await asyncio.gather(*(reader.all(statement, {"value": "raw.reads"})
                                       for _ in range(4)))
        assert 1 <= len(reader._idle)
        served = scim.http.app[SCIM].service._pg_reader
        assert served is not None
        user = await scim.json("GET", "/Users", filter='userName eq "raw.reads"')
        assert 1 <= len(served._idle)
        assert 2 <= await _terminate_others(engine)
        await asyncio.sleep(0.1)
        again = await reader.all(statement, {"value": "raw.reads"})
        assert first[0] == again
        by_name = await scim.json("GET", "/Users", filter='userName eq "raw.reads"')
        by_id = await scim.json("GET", f"/Users/{user['Resources'][0]['id']}")
        assert (user["Resources"], "raw.reads") == (by_name["Resources"], by_id["userName"])
    finally:
        await reader.aclose()


@POSTGRES_ONLY
async def test_postgres_errors_read_as_the_engine_reports_them(
    varied: tuple[Scim, AsyncEngine],
) -> None:
    """A statement PostgreSQL refuses is a DBAPIError with its SQLSTATE, and is not retried
    on a new connection."""
    _, engine = varied
    reader = PgReader(engine)
    try:
        statement = select(USERS.c.id).where(USERS.c.version == bindparam("value"))
        with pytest.raises(DBAPIError) as caught:
            await reader.all(statement, {"value": 2**40})  # out of an int4's range
        assert caught.value.orig is not None
        assert 1 == len(reader._idle)  # the connection was fine, and kept
        assert [] == await reader.all(statement, {"value": -1})
    finally:
        await reader.aclose()


@POSTGRES_ONLY
async def test_gets_go_through_the_postgres_reader(varied: tuple[Scim, AsyncEngine]) -> None:
    scim, _ = varied
    service = scim.http.app[SCIM].service
    counted = Counting(service._pg_reader)
    service._pg_reader = counted
    found = await scim.json("GET", "/Users", filter='userName eq "RAW.READS"')
    by_id = await scim.json("GET", f"/Users/{found['Resources'][0]['id']}")
    # The lookup reads the key, then the row to render; the GET only the key (kept since).
    assert ("raw.reads", 3) == (by_id["userName"], counted.calls)


class Counting:
    def __init__(self, reader: Any) -> None:
        self.reader, self.calls = reader, 0

    async def all(self, *args: Any) -> Any:
        self.calls += 1
        return await self.reader.all(*args)
