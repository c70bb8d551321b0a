"""A first load builds the users' secondary indexes after the rows: and they always come back.

On both stores, against a real slapd. What a user would notice: after any run (a first load,
one that failed half-way, one after a killed process) the store has every index of the migrated
schema, the rows are those a load with the indexes in place writes, and a run on a store that
already holds users, a dry run, an incremental or single-user run never drops one.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, event, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.schema import DropIndex
from structlog.testing import capture_logs

from syncsvc.domain import EntryKind, RunMode, RunStatus
from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine, upgrade
from syncsvc.store.engine import RUN_LOCK_KEY
from syncsvc.store.loadindexes import AFTER_MEMBERS, DEFERRABLE
from syncsvc.store.schema import (
    EMAILS,
    GROUPS,
    MEMBERS,
    PHOTOS,
    USERS,
    Base,
    SyncStateRow,
)
from syncsvc.sync import SyncDeps, SyncOptions, SyncReport, run_sync
from tests.integration.syncenv import pipeline, settings_for
from tests.support.slapd import Slapd

_TABLES = ("scim_user", "scim_user_email", "scim_group", "scim_group_member")


def _index_shape(sync_conn: Any) -> dict[str, tuple[str, tuple[str, ...], bool]]:
    """Every index of the resource tables: name -> (table, columns, unique)."""
    inspector = inspect(sync_conn)
    return {info["name"]: (table, tuple(info["column_names"]), bool(info["unique"]))
            for table in _TABLES for info in inspector.get_indexes(table)}


def _schema_shape() -> dict[str, tuple[str, tuple[str, ...], bool]]:
    """The same, as the schema (and so the migrations) define the non-unique ones."""
    return {str(index.name): (table, tuple(c.name for c in index.columns), bool(index.unique))
            for table in _TABLES for index in Base.metadata.tables[table].indexes}


async def _indexes(engine: AsyncEngine) -> dict[str, tuple[str, tuple[str, ...], bool]]:
    async with engine.connect() as conn:
        return await conn.run_sync(_index_shape)


def _assert_every_index(found: dict[str, tuple[str, tuple[str, ...], bool]]) -> None:
    expected = _schema_shape()
    assert {name: found.get(name) for name in expected} == expected


@contextmanager
def _seen(engine: AsyncEngine, what: Callable[[list[str]], str | None]) -> Iterator[list[str]]:
    """``what`` of each statement ``engine`` sends inside the block (given its words), where it
    names one."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        name = what(statement.split())
        if name is not None:
            seen.append(name)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)


def _ddl_seen(engine: AsyncEngine) -> AbstractContextManager[list[str]]:
    """The DROP INDEX and CREATE INDEX statements ``engine`` sends inside the block."""
    def head(words: list[str]) -> str | None:
        text = " ".join(words[:2]).upper()
        return text if text in ("DROP INDEX", "CREATE INDEX") else None
    return _seen(engine, head)


async def _run(
    settings: Any, deps: Callable[[SyncDeps], SyncDeps] = lambda d: d, **opts: Any
) -> tuple[SyncReport, list[str], list[dict[str, Any]]]:
    """One run in a fresh service: its report, the index DDL it sent, its log events."""
    async with pipeline(settings) as service:
        with _ddl_seen(service.engine) as ddl, capture_logs() as logs:
            report = await run_sync(deps(service.sync), SyncOptions(**opts))
    return report, ddl, logs


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry.get("event") == name]


async def _content(engine: AsyncEngine) -> dict[str, Any]:
    """What a load wrote, without what differs between two loads of one directory (ids, times):
    users, e-mails, groups and members keyed by anchor, managers by their anchor."""
    skip = {"id", "created", "last_modified", "manager_id"}
    async with engine.connect() as conn:
        users = (await conn.execute(select(USERS).where(USERS.c.origin == "ldap"))).all()
        groups = (await conn.execute(select(GROUPS))).all()
        emails = (await conn.execute(select(EMAILS))).all()
        members = (await conn.execute(select(MEMBERS))).all()
    anchor = {row.id: row.anchor for row in (*users, *groups)}
    return {
        "users": {row.anchor: ({k: v for k, v in row._mapping.items() if k not in skip},
                               anchor.get(row.manager_id)) for row in users},
        "groups": {row.anchor: {k: v for k, v in row._mapping.items() if k not in skip}
                   for row in groups},
        "emails": sorted((anchor[row.user_id], row.position, row.value, row.value_lower,
                          row.type, row.primary) for row in emails),
        "members": sorted((anchor[row.group_id], anchor[row.member_id], row.member_type)
                          for row in members),
    }


async def _emptied_but_for_a_local_user(engine: AsyncEngine) -> None:
    """The directory's rows and marks gone, one SCIM-created user left: a store that is not
    empty, so its load runs with every index in place."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        for table in (MEMBERS, EMAILS, PHOTOS, GROUPS, USERS, SyncStateRow.__table__):
            await conn.execute(delete(table))
        await conn.execute(insert(USERS).values(
            id="00000000-0000-7000-8000-000000000001", origin="local", user_name="local.only",
            user_name_lower="local.only", active=True, resource={"userName": "local.only"},
            content_hash="0" * 64, version=1, created=now, last_modified=now))


class _DoAt:
    """A progress observer that calls ``action`` when the first page of ``kind`` is written."""

    def __init__(self, action: Callable[[], None], kind: EntryKind) -> None:
        self._action: Callable[[], None] | None = action
        self._kind = kind

    def phase(self, name: str) -> None:
        pass

    def advance(self, kind: EntryKind, entries: int) -> None:
        if kind is self._kind and self._action is not None:
            action, self._action = self._action, None
            action()


class TestFirstLoad:
    async def test_ends_with_every_index_and_the_rows_of_a_load_with_them(
        self, slapd: Slapd, store_url: str, engine: AsyncEngine
    ) -> None:
        """A full sync into an empty store defers the users' secondary indexes (logged) and
        ends with every index of the migrated schema; its rows, versions, e-mails, groups,
        members and managers are those a load into a non-empty store (indexes kept) writes."""
        settings = settings_for(slapd, store_url)

        report, ddl, logs = await _run(settings)

        assert RunStatus.SUCCESS == report.status
        assert len(DEFERRABLE) == ddl.count("DROP INDEX") == ddl.count("CREATE INDEX")
        assert sorted(str(i.name) for i in DEFERRABLE) == \
            sorted(_events(logs, "store.indexes_deferred")[0]["indexes"])
        members_index = {str(i.name) for i in AFTER_MEMBERS}
        assert [("users read", {str(i.name) for i in DEFERRABLE} - members_index),
                ("members resolved", members_index)] == \
            [(e["reason"], set(e["indexes"])) for e in _events(logs, "store.indexes_built")]
        _assert_every_index(await _indexes(engine))
        deferred = await _content(engine)

        await _emptied_but_for_a_local_user(engine)
        report, ddl, logs = await _run(settings)

        assert (RunStatus.SUCCESS, []) == (report.status, ddl)
        assert not _events(logs, "store.indexes_deferred")
        kept = await _content(engine)
        assert 30 == len(deferred["users"])
        assert kept == deferred

    async def test_members_are_inserted_before_their_index_is_built(
        self, slapd: Slapd, store_url: str
    ) -> None:
        """The users' indexes are back before members are resolved (which read them); the
        memberships' index (member_id, group_id) only after the last member row is in."""
        def member_rows_or_index(words: list[str]) -> str | None:
            if words[:2] == ["INSERT", "INTO"] and words[2] == MEMBERS.name:
                return "member rows"
            if words[:2] == ["CREATE", "INDEX"]:
                return words[5] if words[2] == "IF" else words[2]  # [IF NOT EXISTS] name
            return None

        async with pipeline(settings_for(slapd, store_url)) as service:
            with _seen(service.engine, member_rows_or_index) as seen:
                report = await run_sync(service.sync, SyncOptions())

        assert RunStatus.SUCCESS == report.status
        [members_index] = [str(i.name) for i in AFTER_MEMBERS]
        first_rows, last_rows = seen.index("member rows"), len(seen) - seen[::-1].index("member rows")
        assert {str(i.name) for i in DEFERRABLE} - {members_index} == set(seen[:first_rows])
        assert [members_index] == [s for s in seen[last_rows:] if s != "member rows"]

    async def test_a_change_feed_priming_defers_too(
        self, slapd: Slapd, store_url: str, engine: AsyncEngine
    ) -> None:
        """An incremental run on an empty store primes the change feed (a refresh without a
        cookie): it loads every user, so it defers and rebuilds like a full one. (With the
        rules tracked, the default, such a run is a full one: the rules were never applied.)"""
        settings = settings_for(slapd, store_url, ldap_change_feed="syncrepl")

        report, ddl, _ = await _run(
            settings, lambda d: dataclasses.replace(d, rules_fingerprint=""),
            mode=RunMode.INCREMENTAL)

        assert (RunStatus.SUCCESS, "contentsync") == (report.status, report.method)
        assert len(DEFERRABLE) == ddl.count("DROP INDEX") == ddl.count("CREATE INDEX")
        _assert_every_index(await _indexes(engine))


class TestIndexesAlwaysComeBack:
    async def test_a_first_load_whose_directory_dies_after_a_page(
        self, slapd: Slapd, store_url: str, engine: AsyncEngine
    ) -> None:
        """slapd killed once the first page of users is written: the run fails, the users it
        wrote stay, and so does every index (built as the run closed)."""
        settings = settings_for(slapd, store_url)

        report, ddl, logs = await _run(settings, progress=_DoAt(slapd.kill, EntryKind.USER))

        assert RunStatus.FAILED == report.status
        assert ddl.count("DROP INDEX") == len(DEFERRABLE)
        assert ["run ended early"] == [e["reason"] for e in _events(logs, "store.indexes_built")]
        async with engine.connect() as conn:
            assert await conn.scalar(select(USERS.c.id).limit(1)) is not None
        _assert_every_index(await _indexes(engine))

    async def test_a_first_load_stopped_by_shutdown_after_a_page(
        self, slapd: Slapd, store_url: str, engine: AsyncEngine
    ) -> None:
        """A shutdown (the stop event) once the first page of users is written: the run stops
        at the next page boundary and still builds every index before it ends."""
        settings = settings_for(slapd, store_url)
        stopping = asyncio.Event()

        report, _, logs = await _run(settings, lambda d: dataclasses.replace(d, stopping=stopping),
                                     progress=_DoAt(stopping.set, EntryKind.USER))

        assert (RunStatus.FAILED, "stopped by shutdown") == \
            (report.status, (report.detail or "")[:19])
        assert ["run ended early"] == [e["reason"] for e in _events(logs, "store.indexes_built")]
        _assert_every_index(await _indexes(engine))

    async def test_a_run_after_a_killed_process_builds_the_missing_ones(
        self, slapd: Slapd, store_url: str, engine: AsyncEngine
    ) -> None:
        """Indexes left dropped by a process killed mid-load (a `syncsvc sync` killed while
        the server runs on; here dropped by hand) are built at the next run's start, whatever
        the run: here an incremental one."""
        settings = settings_for(slapd, store_url)
        assert RunStatus.SUCCESS == (await _run(settings))[0].status

        async with pipeline(settings) as service:
            async with service.engine.begin() as conn:
                for index in DEFERRABLE:
                    await conn.execute(DropIndex(index))
            with _ddl_seen(service.engine) as ddl, capture_logs() as logs:
                report = await run_sync(service.sync, SyncOptions(mode=RunMode.INCREMENTAL))

        assert RunStatus.SUCCESS == report.status
        assert (0, len(DEFERRABLE)) == (ddl.count("DROP INDEX"), ddl.count("CREATE INDEX"))
        assert ["missing at run start"] == [e["reason"]
                                            for e in _events(logs, "store.indexes_built")]
        _assert_every_index(await _indexes(engine))

    async def test_the_upgrade_at_service_start_builds_the_missing_ones(
        self, store_url: str, engine: AsyncEngine
    ) -> None:
        """The store's upgrade (every service start, ``syncsvc db upgrade``) builds them too,
        from another engine as another process would."""
        async with engine.begin() as conn:
            for index in DEFERRABLE[:3]:
                await conn.execute(DropIndex(index))
        other = create_engine(StoreSettings(url=store_url))
        try:
            await upgrade(other)
        finally:
            await other.dispose()

        _assert_every_index(await _indexes(engine))

    @pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
    async def test_the_upgrade_leaves_them_to_a_sync_running_elsewhere(
        self, store_url: str, engine: AsyncEngine
    ) -> None:
        """While another replica's sync holds the run lock (its first load drops them and
        builds them itself), a starting replica's upgrade builds none; once no sync runs, it
        does."""
        async with engine.begin() as conn:
            for index in DEFERRABLE[:3]:
                await conn.execute(DropIndex(index))
        other = create_engine(StoreSettings(url=store_url))
        try:
            async with engine.connect() as running:
                await running.execute(text("SELECT pg_advisory_lock(:k)"), {"k": RUN_LOCK_KEY})
                await running.commit()
                await upgrade(other)
                left = set(await _indexes(engine))
                await running.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": RUN_LOCK_KEY})
                await running.commit()
            await upgrade(other)
        finally:
            await other.dispose()

        assert {str(index.name) for index in DEFERRABLE[:3]}.isdisjoint(left)
        _assert_every_index(await _indexes(engine))


class TestNothingDropped:
    async def test_on_a_store_that_holds_users(self, slapd: Slapd, store_url: str) -> None:
        """A second full run, an incremental run and a single-user run send no index DDL."""
        settings = settings_for(slapd, store_url)
        assert RunStatus.SUCCESS == (await _run(settings))[0].status

        for opts in ({}, {"mode": RunMode.INCREMENTAL},
                     {"mode": RunMode.USER, "user_name": "ada.lovelace"}):
            report, ddl, logs = await _run(settings, **opts)
            assert (RunStatus.SUCCESS, [], []) == \
                (report.status, ddl, _events(logs, "store.indexes_deferred")), opts

    async def test_a_dry_run_on_an_empty_store(
        self, slapd: Slapd, store_url: str, engine: AsyncEngine
    ) -> None:
        """A dry run of a first load changes nothing, indexes included."""
        report, ddl, _ = await _run(settings_for(slapd, store_url), dry_run=True)

        assert (RunStatus.SUCCESS, []) == (report.status, ddl)
        _assert_every_index(await _indexes(engine))
