"""Resolving members holds one batch of member names at a time, whatever the groups' id order.

Ids are time-ordered, so the groups a directory writes first (its department groups, the
largest) sit together in id order. The groups are planned into batches from member counts the
store makes, and read with their members a batch at a time: no read holds more names than a
batch (or a single larger group), even when every group would fit on one page of ids. On
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from syncsvc.domain import GroupRecord, UserRecord
from syncsvc.store import writes
from syncsvc.store.schema import GROUPS, MEMBERS, USERS
from syncsvc.store.writes import WriteContext

T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)  # the groups and users are written
T1 = datetime(2026, 3, 1, 9, 5, 0, tzinfo=UTC)  # their members are resolved
T2 = datetime(2026, 3, 1, 9, 10, 0, tzinfo=UTC)  # and again
PEOPLE = "ou=people,dc=example,dc=com"
GROUP_BASE = "ou=groups,dc=example,dc=com"

BATCH_GROUPS = 5
BATCH_NAMES = 20  # a department (50 names) is more than a batch: a batch of its own
DEPARTMENTS = 4
TEAMS = 40
USERS_COUNT = 200


def user(n: int) -> UserRecord:
    name = f"user{n:05d}"
    return UserRecord(anchor=f"anchor-{n:05d}", dn=f"uid={name},{PEOPLE}", user_name=name,
                      resource={"userName": name, "active": True})


def group_dn(name: str) -> str:
    return f"cn={name},{GROUP_BASE}"


def directory() -> tuple[list[GroupRecord], dict[str, set[str]], set[str]]:
    """Departments (every 4th user each) first, then teams of 2-4 names: a team nesting the
    next team, one naming a missing DN, one naming memberUids (one unknown).

    Returns the groups in writing order, each group's members as they should resolve (user and
    group names), and the problems' reasons."""
    groups: list[GroupRecord] = []
    expected: dict[str, set[str]] = {}
    for d in range(DEPARTMENTS):
        name = f"dept{d}"
        users = range(d, USERS_COUNT, DEPARTMENTS)
        groups.append(GroupRecord(
            anchor=f"g-{name}", dn=group_dn(name), display_name=name,
            resource={"displayName": name},
            member_dns=tuple(user(u).dn for u in users)))
        expected[name] = {f"user{u:05d}" for u in users}
    for t in range(TEAMS):
        name = f"team{t:02d}"
        users = [(7 * t + k) % USERS_COUNT for k in range(2)]
        dns = [user(u).dn for u in users]
        members = {f"user{u:05d}" for u in users}
        if t % 3 == 0 and t + 1 < TEAMS:
            dns.append(group_dn(f"team{t + 1:02d}"))
            members.add(f"team{t + 1:02d}")
        if t == 10:
            dns.append(f"uid=nobody,{PEOPLE}")
        uids: tuple[str, ...] = ()
        if t == 20:
            uids = ("user00150", "ghost")
            members.add("user00150")
        groups.append(GroupRecord(
            anchor=f"g-{name}", dn=group_dn(name), display_name=name,
            resource={"displayName": name}, member_dns=tuple(dns), member_user_names=uids))
        expected[name] = members
    problems = {f"member uid=nobody,{PEOPLE.lower()} not found", "memberUid ghost not found"}
    return groups, expected, problems


def names_in(source: dict[str, Any] | None) -> int:
    source = source or {}
    return len(source.get("dns", ())) + len(source.get("uids", ()))


class Reads:
    """The store connection as resolving sees it, noting what each of its reads holds: the
    groups it returned with their source members, and how many member names they name."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.held: list[tuple[int, int]] = []  # (groups, names) per read of source members

    @property
    def dialect(self) -> Any:
        return self._conn.dialect

    async def execute(self, statement: Any, *args: Any) -> list[Any]:
        rows = (await self._conn.execute(statement, *args)).all()
        with_members = [r for r in rows if "source_members" in r._mapping]
        if with_members:
            self.held.append(
                (len(with_members), sum(names_in(r.source_members) for r in with_members)))
        return rows


async def store(engine: AsyncEngine) -> tuple[dict[str, set[str]], set[str]]:
    groups, expected, problems = directory()
    async with engine.begin() as conn:
        await writes.upsert_users(conn, WriteContext(now=T0), [user(n) for n in range(USERS_COUNT)])
        # One page each, departments first: their ids come first, as on a first load.
        await writes.upsert_groups(conn, WriteContext(now=T0), groups[:DEPARTMENTS])
        await writes.upsert_groups(conn, WriteContext(now=T0), groups[DEPARTMENTS:])
    return expected, problems


async def batches(engine: AsyncEngine, group_ids: Sequence[str] | None) -> tuple[
        list[list[str]], list[tuple[int, int]]]:
    """The batches (their group names) and what each read of source members held."""
    async with engine.connect() as conn:
        reads = Reads(conn)
        out = [[g.display_name for g in batch] async for batch in writes._member_batches(
            reads, group_ids, groups=BATCH_GROUPS, names=BATCH_NAMES,  # type: ignore[arg-type]
            page=writes.GROUP_PAGE)]
    return out, reads.held


def assert_bounded(held: list[tuple[int, int]]) -> None:
    """No read holds more names than a batch, but for a single larger group alone."""
    assert held
    too_many = [(groups, names) for groups, names in held if groups > 1 and names > BATCH_NAMES]
    assert [] == too_many
    assert all(groups <= BATCH_GROUPS for groups, _ in held)


async def resolved(engine: AsyncEngine) -> dict[str, set[str]]:
    """Group name -> the names of its resolved members (users and groups)."""
    async with engine.connect() as conn:
        names = {i: n for i, n in await conn.execute(select(USERS.c.id, USERS.c.user_name))}
        names.update({i: n for i, n in await conn.execute(
            select(GROUPS.c.id, GROUPS.c.display_name))})
        out: dict[str, set[str]] = {}
        for gid, mid in await conn.execute(select(MEMBERS.c.group_id, MEMBERS.c.member_id)):
            out.setdefault(names[gid], set()).add(names[mid])
    return out


async def versions(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        found = {n: v for n, v in await conn.execute(select(USERS.c.user_name, USERS.c.version))}
        found.update({n: v for n, v in await conn.execute(
            select(GROUPS.c.display_name, GROUPS.c.version))})
    return found


async def ids_by_name(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        return {n: i for n, i in await conn.execute(select(GROUPS.c.display_name, GROUPS.c.id))}


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of a few groups and names; the page of ids keeps its size (every group on it)."""
    monkeypatch.setattr(writes, "MEMBER_BATCH_GROUPS", BATCH_GROUPS)
    monkeypatch.setattr(writes, "MEMBER_BATCH_NAMES", BATCH_NAMES)


class TestNamesHeldAtOnce:
    async def test_large_groups_first_are_read_one_batch_at_a_time(
        self, engine: AsyncEngine
    ) -> None:
        """Four departments of 50 names each, written first, then 40 small teams, all on one
        page of ids: every read of members holds one department alone or at most a batch of
        names, and the batches take every group once, in id order."""
        await store(engine)
        assert DEPARTMENTS + TEAMS <= writes.GROUP_PAGE

        planned, held = await batches(engine, None)

        assert_bounded(held)
        ids = await ids_by_name(engine)
        in_order = [name for batch in planned for name in batch]
        assert sorted(ids, key=ids.__getitem__) == in_order
        assert all(len(batch) == 1 for batch in planned if batch[0].startswith("dept"))

    async def test_named_groups_are_read_one_batch_at_a_time(self, engine: AsyncEngine) -> None:
        """An incremental run's groups, in any order, departments among them: the same bound."""
        await store(engine)
        ids = await ids_by_name(engine)
        chosen = [ids[f"dept{d}"] for d in range(DEPARTMENTS)] + [
            ids[f"team{t:02d}"] for t in range(0, TEAMS, 2)]
        random.Random(7).shuffle(chosen)

        planned, held = await batches(engine, chosen)

        assert_bounded(held)
        assert sorted(chosen) == sorted(ids[name] for batch in planned for name in batch)


class TestSameOutcome:
    @pytest.mark.usefixtures("small_batches")
    async def test_members_problems_and_versions_as_one_batch_gives(
        self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Resolved in small batches, the groups get the members the directory names, the same
        changes and problems (in the same order) as every group in one batch, and every group
        and member user one new version, however many batches it spans."""
        expected, problems = await store(engine)
        before = await versions(engine)
        ctx = WriteContext(now=T1, dry_run=True, keep_changes=True)
        with monkeypatch.context() as unbounded:
            unbounded.setattr(writes, "MEMBER_BATCH_GROUPS", 10**6)
            unbounded.setattr(writes, "MEMBER_BATCH_NAMES", 10**9)
            async with engine.connect() as conn:
                whole = await writes.resolve_members(conn, ctx)

        async with engine.begin() as conn:
            dry = await writes.resolve_members(conn, ctx)
        async with engine.begin() as conn:
            out = await writes.resolve_members(conn, WriteContext(now=T1))

        for outcome in (dry, out):
            assert whole.changed_ids == outcome.changed_ids
            assert whole.problems == outcome.problems
        assert whole.changes == dry.changes
        assert problems == {p.reason for p in out.problems}
        assert expected == await resolved(engine)
        after = await versions(engine)
        in_groups = {m for members in expected.values() for m in members if m.startswith("user")}
        assert {name: before[name] + (name in expected or name in in_groups)
                for name in before} == after

        async with engine.begin() as conn:
            again = await writes.resolve_members(conn, WriteContext(now=T1))
        assert (0, []) == (again.updated, again.changed_ids)

    @pytest.mark.usefixtures("small_batches")
    async def test_named_groups_resolve_as_one_batch_gives(self, engine: AsyncEngine) -> None:
        """The named groups (departments among them, shuffled) get their members; others none."""
        expected, _ = await store(engine)
        ids = await ids_by_name(engine)
        names = [f"dept{d}" for d in range(0, DEPARTMENTS, 2)] + [
            f"team{t:02d}" for t in range(1, TEAMS, 3)]
        chosen = [ids[n] for n in names]
        random.Random(3).shuffle(chosen)

        async with engine.begin() as conn:
            out = await writes.resolve_members(conn, WriteContext(now=T1), group_ids=chosen)

        assert sorted(chosen) == sorted(out.changed_ids)
        assert {n: expected[n] for n in names} == await resolved(engine)


class TestNewGroups:
    async def test_groups_created_by_the_run_are_not_read_for_members(
        self, engine: AsyncEngine
    ) -> None:
        """Groups the run created (every group of a first load) have no memberships to read:
        none is read, and they get every member. On PostgreSQL that read, one a batch with no
        statistics for the table being filled, had scanned every membership written so far (at
        1M users 38.9-44.7 s of the resolution). Groups stored before are still read for the
        members they have."""
        groups, expected, _ = directory()
        reads: list[str] = []

        def note(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
            if statement.startswith("SELECT") and "FROM scim_group_member" in statement:
                reads.append(statement)

        async with engine.begin() as conn:
            await writes.upsert_users(conn, WriteContext(now=T1),
                                      [user(n) for n in range(USERS_COUNT)])
            created = (await writes.upsert_groups(conn, WriteContext(now=T1), groups)).created_ids
        event.listen(engine.sync_engine, "before_cursor_execute", note)
        try:
            async with engine.begin() as conn:
                first = await writes.resolve_members(conn, WriteContext(now=T1), created=created)
            assert ([], len(groups)) == (reads, first.updated)
            assert expected == await resolved(engine)
            async with engine.begin() as conn:
                again = await writes.resolve_members(conn, WriteContext(now=T2))
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", note)

        assert reads and 0 == again.updated
        assert expected == await resolved(engine)

