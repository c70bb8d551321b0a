"""A full sync holds a bounded part of the directory at a time, with the same outcome as before.

Members are resolved a batch of groups at a time, the groups read from the store a page at a
time; the sweep reads the stored anchors a page at a time; past a bound the run keeps only a
digest of each anchor it read. The bounds are shrunk here so that a small directory spans
several pages and batches; on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.domain import EntryKind, GroupRecord, RunMode, RunStatus, UserRecord
from syncsvc.store import writes
from syncsvc.store.schema import GROUPS, MEMBERS, USERS
from syncsvc.store.writes import WriteContext
from syncsvc.sync import pipeline as sync_pipeline
from syncsvc.sync import seen
from syncsvc.sync.seen import AnchorSet, Survivors
from tests.integration.syncenv import (
    groups_by_name,
    members_of,
    pipeline,
    settings_for,
    sync_once,
    users_by_name,
)

T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
PEOPLE = "ou=people,dc=example,dc=com"
GROUP_BASE = "ou=groups,dc=example,dc=com"
BASE = "dc=example,dc=com"
ENG = f"ou=engineering,ou=people,{BASE}"
SALES = f"ou=sales,ou=people,{BASE}"


def user(n: int) -> UserRecord:
    name = f"user{n:05d}"
    return UserRecord(anchor=f"anchor-{n:05d}", dn=f"uid={name},{PEOPLE}", user_name=name,
                      resource={"userName": name, "active": True})


def group(n: int, users: range | list[int] = (), *, nested: tuple[int, ...] = (),
          missing: tuple[str, ...] = (), uids: tuple[str, ...] = ()) -> GroupRecord:
    name = f"group{n:03d}"
    dns = (*(f"uid=user{u:05d},{PEOPLE}" for u in users),
           *(f"cn=group{g:03d},{GROUP_BASE}" for g in nested), *missing)
    return GroupRecord(anchor=f"g-anchor-{n:03d}", dn=f"cn={name},{GROUP_BASE}", display_name=name,
                       resource={"displayName": name}, member_dns=dns, member_user_names=uids)


async def store(engine: AsyncEngine, users: list[UserRecord], groups: list[GroupRecord]) -> None:
    async with engine.begin() as conn:
        await writes.upsert_users(conn, WriteContext(now=T0), users)
        await writes.upsert_groups(conn, WriteContext(now=T0), groups)


async def resolved(engine: AsyncEngine) -> dict[str, set[str]]:
    """Group name -> the names of its resolved members (users and groups)."""
    async with engine.connect() as conn:
        names = {i: n for i, n in await conn.execute(select(USERS.c.id, USERS.c.user_name))}
        groups = await conn.execute(select(GROUPS.c.id, GROUPS.c.display_name))
        names.update({i: n for i, n in groups})
        out: dict[str, set[str]] = {}
        for gid, mid in await conn.execute(select(MEMBERS.c.group_id, MEMBERS.c.member_id)):
            out.setdefault(names[gid], set()).add(names[mid])
    return out


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL the engine sends while the block runs."""
    seen_sql: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen_sql.append(" ".join(statement.split()).lower())

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen_sql
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages and batches of a few rows, so that a test directory spans many of them."""
    monkeypatch.setattr(writes, "GROUP_PAGE", 4)
    monkeypatch.setattr(writes, "MEMBER_BATCH_GROUPS", 3)
    monkeypatch.setattr(writes, "MEMBER_BATCH_NAMES", 6)
    monkeypatch.setattr(writes, "ANCHOR_PAGE", 7)


class TestMembersInBatches:
    @pytest.mark.usefixtures("small_batches")
    async def test_members_resolve_across_group_pages_and_batches(
        self, engine: AsyncEngine
    ) -> None:
        """11 groups (3 pages of groups, 4+ batches), one naming more members than a batch
        holds, nesting across pages, a missing member and memberUids: every member resolves,
        the missing ones are reported, and the groups are never read all at once."""
        await store(engine, [user(n) for n in range(30)], [
            group(0, range(10)),  # more names than a batch: a batch of its own
            *(group(n, [n, n + 1], nested=(n + 5,)) for n in range(1, 6)),
            *(group(n, [n + 10]) for n in range(6, 10)),
            group(10, [29], missing=(f"uid=nobody,{PEOPLE}",), uids=("user00020", "ghost")),
        ])
        with statements(engine) as sql:
            async with engine.begin() as conn:
                out = await writes.resolve_members(conn, WriteContext(now=T0))

        expected = {"group000": {f"user{u:05d}" for u in range(10)},
                    **{f"group{n:03d}": {f"user{n:05d}", f"user{n + 1:05d}", f"group{n + 5:03d}"}
                       for n in range(1, 6)},
                    **{f"group{n:03d}": {f"user{n + 10:05d}"} for n in range(6, 10)},
                    "group010": {"user00029", "user00020"}}
        assert expected == await resolved(engine)
        assert (11, 11) == (out.updated, len(set(out.changed_ids)))
        assert {f"member uid=nobody,{PEOPLE.lower()} not found", "memberUid ghost not found"} == {
            p.reason for p in out.problems}
        group_reads = [s for s in sql if "source_members" in s and s.startswith("select")]
        assert len(group_reads) >= 3
        # Counts page by page, members a batch of ids at a time: never every group at once.
        assert all(" limit " in s or " in (" in s for s in group_reads)

        async with engine.begin() as conn:
            again = await writes.resolve_members(conn, WriteContext(now=T0))
        assert (0, []) == (again.updated, again.changed_ids)

    @pytest.mark.usefixtures("small_batches")
    async def test_named_groups_resolve_in_batches_and_only_they_change(
        self, engine: AsyncEngine
    ) -> None:
        """An incremental run's changed groups (more than a page of them) resolve; the others
        keep their members even if their source changed."""
        await store(engine, [user(n) for n in range(20)], [group(n, [n]) for n in range(9)])
        async with engine.begin() as conn:
            await writes.resolve_members(conn, WriteContext(now=T0))
        await store(engine, [], [group(n, [n, n + 10]) for n in range(9)])
        async with engine.connect() as conn:
            ids = {n: i for n, i in await conn.execute(select(GROUPS.c.display_name, GROUPS.c.id))}
        chosen = [ids[f"group{n:03d}"] for n in (0, 2, 3, 5, 6, 8)]
        async with engine.begin() as conn:
            out = await writes.resolve_members(conn, WriteContext(now=T0), group_ids=chosen)

        assert sorted(chosen) == sorted(out.changed_ids)
        members = await resolved(engine)
        assert all(members[f"group{n:03d}"] == {f"user{n:05d}", f"user{n + 10:05d}"}
                   for n in (0, 2, 3, 5, 6, 8))
        assert all(members[f"group{n:03d}"] == {f"user{n:05d}"} for n in (1, 4, 7))


async def planned(engine: AsyncEngine, **kwargs: Any) -> set[str]:
    async with engine.connect() as conn:
        return {r.anchor for r in await writes.plan_removals(conn, EntryKind.USER, **kwargs)}


class TestSweepInPages:
    @pytest.mark.usefixtures("small_batches")
    async def test_removals_when_stored_anchors_span_pages(
        self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """50 stored users read 7 anchors at a time: the unseen ones go, on a page's first and
        last row and across the boundary too, a few (looked up) or most (read in pages)."""
        await store(engine, [user(n) for n in range(50)], [])
        every = {f"anchor-{n:05d}" for n in range(50)}
        unseen = {f"anchor-{n:05d}" for n in (0, 6, 7, 13, 14, 31, 49)}
        with statements(engine) as sql:
            assert unseen == await planned(engine, keep=every - unseen, policy="deactivate")
        anchor_reads = [s for s in sql
                        if s.startswith("select") and "anchor" in s and " in (" not in s]
        assert len(anchor_reads) >= 8 and all(" limit " in s for s in anchor_reads)

        monkeypatch.setattr(writes, "IN_CHUNK", 5)  # more go than one lookup: read in pages
        kept = {f"anchor-{n:05d}" for n in range(0, 50, 5)}
        with statements(engine) as sql:
            assert every - kept == await planned(engine, keep=kept, policy="delete")
        assert all(" limit " in s for s in sql if s.startswith("select") and " in (" not in s)
        assert set() == await planned(engine, keep=every, policy="deactivate")

    async def test_a_digest_collision_keeps_the_row(
        self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An anchor not read whose digest equals a read one's is kept; one without is removed."""
        await store(engine, [user(n) for n in range(8)], [])
        colliding = {"anchor-00003", "anchor-00004"}
        monkeypatch.setattr(seen, "digest", lambda a: -1 if a in colliding else hash(a))
        read = AnchorSet(exact_max=2)
        read.update(f"anchor-{n:05d}" for n in range(8) if n not in (4, 5))
        assert read.exact() is None  # past the bound: digests only

        assert {"anchor-00005"} == await planned(engine, keep=read, policy="deactivate")
        exact = AnchorSet()
        exact.update(f"anchor-{n:05d}" for n in range(8) if n not in (4, 5))
        assert {"anchor-00004", "anchor-00005"} == await planned(
            engine, keep=exact, policy="deactivate")


class TestAnchorSet:
    def test_exact_then_digests_answer_the_same(self) -> None:
        anchors = [f"a-{n}" for n in range(200)]
        for bound in (0, 10, 1000):
            read = AnchorSet(exact_max=bound)
            read.update(anchors[:150])
            assert (bound >= 150) == (read.exact() is not None)
            assert 150 == len(read)
            assert all(a in read for a in anchors[:150])
            assert not any(a in read for a in anchors[150:])

    def test_survivors_of_a_refresh(self) -> None:
        """Sent and not deleted later, or named present: kept; the count is exact."""
        for bound in (0, 1000):
            read = AnchorSet(exact_max=bound)
            read.update(["a", "b", "c"])
            alive = Survivors(read, deleted=["b", "x"], present=["p"])
            assert (True, False, True, True, False) == tuple(
                a in alive for a in ("a", "b", "c", "p", "x"))
            assert 3 == len(alive)


class TestFullRunsWithSmallBounds:
    @pytest.fixture(autouse=True)
    def _tiny(self, monkeypatch: pytest.MonkeyPatch, small_batches: None) -> None:
        monkeypatch.setattr(seen, "EXACT_MAX", 4)  # 30 users, 6 groups: digests for both
        monkeypatch.setattr(sync_pipeline, "PART_VALUES", 12)  # a page of groups: many parts

    async def test_a_full_run_lands_and_sweeps_as_with_large_bounds(
        self, slapd, store_url, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The directory lands with every member, its page of groups written in parts; a
        deleted user is deactivated, a deleted group deleted; more than the guard allows is
        held; a dry run writes nothing."""
        written: list[list[GroupRecord]] = []
        upsert_groups = writes.upsert_groups

        async def spy(conn: Any, ctx: WriteContext, records: Any) -> Any:
            written.append(list(records))
            return await upsert_groups(conn, ctx, records)

        monkeypatch.setattr(writes, "upsert_groups", spy)
        settings = settings_for(slapd, store_url)
        first = await sync_once(settings)
        assert (RunStatus.SUCCESS, 36, 37) == (first.status, first.created, first.read)
        assert 6 == sum(len(part) for part in written)
        assert len(written) >= 4  # 6 groups on one page of 7, cut by their members
        assert all(len(part) == 1 or sum(len(g.member_dns) for g in part) <= 12 for part in written)
        async with pipeline(settings) as service:
            assert 13 == len(await members_of(service, "engineering"))
            developers = await members_of(service, "developers")
        assert {"linus.torvalds", "ken.thompson", "dennis.ritchie", "jose.nunez", "zoe.muller",
                "guido.vanrossum", "yukihiro.matsumoto"} == developers

        slapd.delete(f"uid=noah.jones,{SALES}")
        slapd.delete(f"cn=on-call,ou=groups,{BASE}")
        dry = await sync_once(settings, dry_run=True)
        assert {"noah.jones", "on-call"} == {r.name for r in dry.removals}
        report = await sync_once(settings, allow_deletions=True)
        assert (RunStatus.SUCCESS, 1, 1) == (report.status, report.deactivated, report.deleted)
        async with pipeline(settings) as service:
            users = await users_by_name(service)
            groups = await groups_by_name(service)
        assert users["noah.jones"].active is False
        assert "on-call" not in groups
        assert all(u.active for name, u in users.items() if name != "noah.jones")

        for uid in ("david.kim", "emily.chen"):
            slapd.delete(f"uid={uid},{SALES}")
        held = await sync_once(settings)
        assert RunStatus.GUARDED == held.status
        assert {"david.kim", "emily.chen"} == {r.name for r in held.removals}

    async def test_a_change_feed_refresh_sweeps_with_digests(self, slapd, store_url) -> None:
        """A content-sync refresh without a cookie (every entry sent) keeps what it sent."""
        settings = settings_for(slapd, store_url, ldap_change_feed="syncrepl")
        await sync_once(settings)
        slapd.delete(f"uid=noah.jones,{SALES}")
        report = await sync_once(settings, RunMode.INCREMENTAL)
        assert ("contentsync", RunStatus.SUCCESS) == (report.method, report.status)
        assert ["noah.jones"] == [r.name for r in report.removals]
        assert 1 == report.deactivated
