"""Store writes of a sync run, on both stores: a page of new, changed and unchanged users,
which rows a sweep removes, and managers resolved for the users an incremental run read (and
their reports)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.domain import EntryKind, UserRecord
from syncsvc.store import writes
from syncsvc.store.schema import USERS
from syncsvc.store.writes import WriteContext

T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
BASE = "ou=people,dc=example,dc=com"


def user(n: int, manager: int | None = None) -> UserRecord:
    name = f"user{n:05d}"
    return UserRecord(
        anchor=f"anchor-{n:05d}",
        dn=f"uid={name},{BASE}",
        user_name=name,
        resource={"userName": name, "active": True},
        manager_dn=None if manager is None else f"uid=user{manager:05d},{BASE}",
    )


async def store_users(engine: AsyncEngine, records: list[UserRecord], now: datetime = T0) -> None:
    async with engine.begin() as conn:
        await writes.upsert_users(conn, WriteContext(now=now), records)


async def removals(engine: AsyncEngine, **kwargs: object) -> set[str]:
    async with engine.connect() as conn:
        planned = await writes.plan_removals(conn, EntryKind.USER, **kwargs)  # type: ignore[arg-type]
    return {r.anchor for r in planned}


async def managers(engine: AsyncEngine) -> dict[str, str | None]:
    """userName -> the manager's userName."""
    async with engine.connect() as conn:
        rows = list(await conn.execute(select(USERS.c.id, USERS.c.user_name, USERS.c.manager_id)))
    names = {uid: name for uid, name, _ in rows}
    return {name: names.get(mid) if mid else None for _, name, mid in rows}


class TestPages:
    async def test_a_page_of_new_changed_and_unchanged_users(self, engine: AsyncEngine) -> None:
        """New users are inserted at version 1, changed ones move one version, unchanged ones
        are left alone, all from one page; the stored ones keep their ids."""
        await store_users(engine, [user(n) for n in range(3)])
        async with engine.connect() as conn:
            ids_before = dict((await conn.execute(select(USERS.c.user_name, USERS.c.id))).all())
        changed = dataclasses.replace(user(1), resource={"userName": "user00001", "active": False})

        async with engine.begin() as conn:
            out = await writes.upsert_users(conn, WriteContext(now=T1), [user(0), changed, user(3)])

        assert (1, 1, 1) == (out.created, out.updated, out.unchanged)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(USERS.c.user_name, USERS.c.id, USERS.c.version,
                                              USERS.c.active, USERS.c.last_modified))).all()
        found = {name: (version, active, modified.replace(tzinfo=UTC))  # SQLite: naive, UTC
                 for name, _, version, active, modified in rows}
        assert {"user00000": (1, True, T0), "user00001": (2, False, T1),
                "user00002": (1, True, T0), "user00003": (1, True, T1)} == found
        assert ids_before == {name: id_ for name, id_, *_ in rows if name in ids_before}

    async def test_postgresql_gets_new_users_in_statements_of_many_rows(
        self, engine: AsyncEngine
    ) -> None:
        """1200 new users reach PostgreSQL as two INSERTs of many rows each, not as 1200
        executions of a one-row INSERT (5.4 against 3.6 s of its CPU at 100k users)."""
        if engine.dialect.name != "postgresql":
            pytest.skip("SQLite runs an executemany in C, with no statement to parse per row")
        rows_per_statement: list[int] = []

        def note(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
            if statement.startswith(f"INSERT INTO {USERS.name} "):
                rows_per_statement.append(statement.count("), (") + 1)

        event.listen(engine.sync_engine, "before_cursor_execute", note)
        try:
            await store_users(engine, [user(n) for n in range(1200)])
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", note)

        assert [1000, 200] == rows_per_statement
        async with engine.connect() as conn:
            assert 1200 == len((await conn.execute(select(USERS.c.id))).all())


class TestPlanRemovals:
    async def test_a_complete_read_removes_what_it_did_not_see_few_or_many(
        self, engine: AsyncEngine
    ) -> None:
        """Against a complete read, the rows not seen go, whether a few or most of the table
        (more than one lookup batch) are missing."""
        await store_users(engine, [user(n) for n in range(1200)])
        every = {f"anchor-{n:05d}" for n in range(1200)}
        few_seen = {f"anchor-{n:05d}" for n in range(50)}

        assert set() == await removals(engine, keep=every, policy="deactivate")
        assert {"anchor-00007", "anchor-01199"} == await removals(
            engine, keep=every - {"anchor-00007", "anchor-01199"}, policy="deactivate")
        assert every - few_seen == await removals(engine, keep=few_seen, policy="deactivate")

    async def test_reported_deletions_remove_only_stored_live_users(
        self, engine: AsyncEngine
    ) -> None:
        """Deletions the server reported: those stored go, unknown anchors are ignored, and a
        user already deactivated goes again only under the delete policy."""
        await store_users(engine, [user(n) for n in range(10)])
        async with engine.begin() as conn:
            await conn.execute(update(USERS).where(USERS.c.anchor == "anchor-00003")
                               .values(missing_since=T0))
        gone = {"anchor-00002", "anchor-00003", "not-stored"}

        assert {"anchor-00002"} == await removals(engine, gone=gone, policy="deactivate")
        assert {"anchor-00002", "anchor-00003"} == await removals(engine, gone=gone, policy="delete")
        assert {"anchor-00002", "anchor-00003", "anchor-00009"} == await removals(
            engine, keep={f"anchor-{n:05d}" for n in range(9)}, gone=gone, policy="delete")


class TestLiveCount:
    async def test_counting_below_a_bound_is_exact_under_it(self, engine: AsyncEngine) -> None:
        """The guard's bounded count: exact while under the bound, at least the bound past it;
        deactivated users are not live."""
        await store_users(engine, [user(n) for n in range(30)])
        async with engine.begin() as conn:
            await conn.execute(update(USERS).where(USERS.c.anchor == "anchor-00000")
                               .values(missing_since=T0))
            counts = [await writes.live_count(conn, EntryKind.USER, below=b)
                      for b in (None, 100, 29.5, 29, 10, 0)]
        assert 29 == counts[0]
        assert [29, 29] == counts[1:3]
        assert all(c >= b for c, b in zip(counts[3:], (29, 10, 0), strict=True))


class TestResolveManagers:
    async def test_an_incremental_run_resolves_its_users_and_their_reports_only(
        self, engine: AsyncEngine
    ) -> None:
        """Only the users read (and the users naming one of them as manager) are resolved:
        a manager who appears later is found by its reports that were not re-read, and a
        user outside the run keeps what it had."""
        await store_users(engine, [user(1), user(2, manager=9), user(3, manager=9)])
        async with engine.begin() as conn:
            first = await writes.resolve_managers(conn, WriteContext(now=T0))
        assert 2 == len(first.problems)  # user00009 does not exist yet

        await store_users(engine, [user(9)], now=T1)
        async with engine.begin() as conn:
            # Simulate a stale row outside the run: user00001 points nowhere it should.
            await conn.execute(update(USERS).where(USERS.c.anchor == "anchor-00001")
                               .values(manager_id="stale"))
            out = await writes.resolve_managers(conn, WriteContext(now=T1), anchors={"anchor-00009"})

        assert (2, []) == (out.updated, out.problems)
        found = await managers(engine)
        assert ("user00009", "user00009", None) == (
            found["user00002"], found["user00003"], found["user00009"])
        async with engine.connect() as conn:
            assert "stale" == await conn.scalar(
                select(USERS.c.manager_id).where(USERS.c.anchor == "anchor-00001"))
