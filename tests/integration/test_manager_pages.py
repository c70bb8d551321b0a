"""Managers resolved as a run writes its pages, on both stores: a user's manager is known as
soon as the page holding the user commits when the manager came on an earlier page or the same
one; the run's end (``resolve_managers``) settles the rest, and writes only what is still wrong.
Each real change moves version and lastModified once and, with push targets, writes an outbox
row; a dry run writes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.domain import EntryKind, UserRecord
from syncsvc.store import writes
from syncsvc.store.schema import EMAILS, OUTBOX, USERS
from syncsvc.store.writes import PageOutcome, WriteContext

T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
BASE = "ou=people,dc=example,dc=com"


def dn(n: int) -> str:
    return f"uid=user{n:05d},{BASE}"


def user(n: int, manager: int | str | None = None, title: str = "") -> UserRecord:
    name = f"user{n:05d}"
    return UserRecord(
        anchor=f"anchor-{n:05d}",
        dn=dn(n),
        user_name=name,
        resource={"userName": name, "active": True, "title": title,
                  "emails": [{"value": f"{name}@example.com", "primary": True}]},
        manager_dn=dn(manager) if isinstance(manager, int) else manager,
    )


async def write_pages(engine: AsyncEngine, ctx: WriteContext, *pages: Sequence[UserRecord]) -> None:
    """Each page in a transaction of its own, as a run writes them."""
    for page in pages:
        async with engine.begin() as conn:
            outcome = await writes.upsert_users(conn, ctx, page)
            await writes.capture_page(conn, ctx, EntryKind.USER, outcome)


async def resolve(engine: AsyncEngine, ctx: WriteContext) -> PageOutcome:
    async with engine.begin() as conn:
        return await writes.resolve_managers(conn, ctx)


async def run(engine: AsyncEngine, ctx: WriteContext, *pages: Sequence[UserRecord]) -> PageOutcome:
    await write_pages(engine, ctx, *pages)
    return await resolve(engine, ctx)


async def state(engine: AsyncEngine) -> dict[str, tuple[str | None, int]]:
    """userName -> (the manager's userName, version)."""
    async with engine.connect() as conn:
        rows = list(await conn.execute(
            select(USERS.c.id, USERS.c.user_name, USERS.c.manager_id, USERS.c.version)))
    names = {uid: name for uid, name, _, _ in rows}
    return {name: (names.get(mid, f"<{mid}>") if mid else None, version)
            for _, name, mid, version in rows}


async def captured(engine: AsyncEngine) -> list[str]:
    """userNames of the users' push outbox rows, in order."""
    async with engine.connect() as conn:
        return list(await conn.scalars(
            select(USERS.c.user_name).join(OUTBOX, OUTBOX.c.resource_id == USERS.c.id)
            .where(OUTBOX.c.kind == "User").order_by(OUTBOX.c.seq)))


class TestFirstLoad:
    async def test_a_manager_on_an_earlier_page_is_set_when_the_report_is_written(
        self, engine: AsyncEngine
    ) -> None:
        """The report's page already names its manager; the run's end has nothing to write."""
        ctx = WriteContext(now=T0)
        await write_pages(engine, ctx, [user(1)], [user(2, manager=1), user(3, manager=1)])
        assert {"user00001": (None, 1), "user00002": ("user00001", 1),
                "user00003": ("user00001", 1)} == await state(engine)

        out = await resolve(engine, ctx)
        assert (0, []) == (out.updated, out.problems)
        assert ("user00001", 1) == (await state(engine))["user00002"]

    async def test_a_manager_on_the_same_page_is_set_with_it_in_either_order(
        self, engine: AsyncEngine
    ) -> None:
        ctx = WriteContext(now=T0)
        await write_pages(engine, ctx, [user(2, manager=1), user(1), user(3, manager=2)])
        assert {"user00001": (None, 1), "user00002": ("user00001", 1),
                "user00003": ("user00002", 1)} == await state(engine)
        assert 0 == (await resolve(engine, ctx)).updated

    async def test_a_manager_on_a_later_page_is_set_at_the_end_without_a_second_version(
        self, engine: AsyncEngine
    ) -> None:
        ctx = WriteContext(now=T0)
        await write_pages(engine, ctx, [user(2, manager=1)], [user(1)])
        assert (None, 1) == (await state(engine))["user00002"]

        out = await resolve(engine, ctx)
        assert (1, []) == (out.updated, out.problems)
        assert ("user00001", 1) == (await state(engine))["user00002"]


class TestLaterRuns:
    async def test_a_changed_manager_moves_the_version_once_wherever_the_new_one_comes(
        self, engine: AsyncEngine
    ) -> None:
        """Manager 1 -> 3 (stored already) is written with the page; 1 -> 9 (new, on a later
        page) keeps the old manager until the run's end sets the new one. Each user's version
        moves once; a run that changes nothing writes nothing."""
        await run(engine, WriteContext(now=T0), [user(1), user(2, manager=1), user(3),
                                                 user(4, manager=1)])
        ctx = WriteContext(now=T1)
        await write_pages(engine, ctx, [user(2, manager=3), user(4, manager=9)])
        assert ("user00003", 2) == (await state(engine))["user00002"]
        assert ("user00001", 2) == (await state(engine))["user00004"]

        await write_pages(engine, ctx, [user(9)])
        out = await resolve(engine, ctx)
        assert (1, []) == (out.updated, out.problems)
        found = await state(engine)
        assert (("user00003", 2), ("user00009", 2)) == (found["user00002"], found["user00004"])

        again = await run(engine, WriteContext(now=T1.replace(hour=10)),
                          [user(1), user(2, manager=3), user(3), user(4, manager=9), user(9)])
        assert 0 == again.updated
        assert found == await state(engine)

    async def test_a_removed_manager_attribute_clears_the_manager_with_the_page(
        self, engine: AsyncEngine
    ) -> None:
        await run(engine, WriteContext(now=T0), [user(1), user(2, manager=1)])
        ctx = WriteContext(now=T1)
        await write_pages(engine, ctx, [user(2)])
        assert (None, 2) == (await state(engine))["user00002"]
        assert 0 == (await resolve(engine, ctx)).updated
        assert (None, 2) == (await state(engine))["user00002"]

    async def test_a_manager_found_for_an_unchanged_user_moves_its_version(
        self, engine: AsyncEngine
    ) -> None:
        """A user the run does not rewrite whose manager appears (or whose stored manager_id
        is wrong) changes at the run's end: version and lastModified move once."""
        await run(engine, WriteContext(now=T0), [user(2, manager=1)])
        assert (None, 1) == (await state(engine))["user00002"]
        out = await run(engine, WriteContext(now=T1), [user(1)])
        assert (1, []) == (out.updated, out.problems)
        assert ("user00001", 2) == (await state(engine))["user00002"]
        async with engine.connect() as conn:
            modified = await conn.scalar(
                select(USERS.c.last_modified).where(USERS.c.anchor == "anchor-00002"))
        assert T1.replace(tzinfo=None) == modified.replace(tzinfo=None)  # SQLite's are naive

        async with engine.begin() as conn:
            await conn.execute(update(USERS).where(USERS.c.anchor == "anchor-00002")
                               .values(manager_id="stale"))
        now = T1.replace(hour=10)
        assert 1 == (await resolve(engine, WriteContext(now=now))).updated
        assert ("user00001", 3) == (await state(engine))["user00002"]

    async def test_a_manager_whose_entry_moved_is_not_kept(self, engine: AsyncEngine) -> None:
        """The stored manager_id names a user no longer at the manager DN: it is cleared and
        the manager reported missing."""
        await run(engine, WriteContext(now=T0), [user(1), user(2, manager=1)])
        moved = UserRecord(anchor="anchor-00001", dn=f"uid=user00001,ou=moved,{BASE}",
                           user_name="user00001", resource={"userName": "user00001"})
        out = await run(engine, WriteContext(now=T1), [moved])
        assert 1 == out.updated
        assert [f"manager {dn(1)} not found"] == [p.reason for p in out.problems]
        assert (None, 2) == (await state(engine))["user00002"]

    async def test_a_manager_moving_away_on_the_reports_page_is_not_taken(
        self, engine: AsyncEngine
    ) -> None:
        await run(engine, WriteContext(now=T0), [user(1), user(2)])
        moved = UserRecord(anchor="anchor-00001", dn=f"uid=user00001,ou=moved,{BASE}",
                           user_name="user00001", resource={"userName": "user00001"})
        out = await run(engine, WriteContext(now=T1), [moved, user(2, manager=1)])
        assert 0 == out.updated  # nothing left to correct after the page
        assert [f"manager {dn(1)} not found"] == [p.reason for p in out.problems]
        assert (None, 2) == (await state(engine))["user00002"]


class TestDanglingAndDuplicates:
    async def test_a_dangling_manager_is_reported_on_every_run_and_never_written(
        self, engine: AsyncEngine
    ) -> None:
        for now in (T0, T1):
            out = await run(engine, WriteContext(now=now), [user(2, manager=7)])
            assert 0 == out.updated
            assert [(dn(2), f"manager {dn(7)} not found")] == [
                (p.dn, p.reason) for p in out.problems]
        assert (None, 1) == (await state(engine))["user00002"]

    async def test_a_manager_at_a_dn_two_users_share_is_either_and_stays(
        self, engine: AsyncEngine
    ) -> None:
        """Two stored users at one DN (a deactivated user and the new entry that took its DN):
        the report points at one of them, and later runs do not move it back and forth."""
        twin = UserRecord(anchor="anchor-twin", dn=dn(1), user_name="twin",
                          resource={"userName": "twin"})
        await run(engine, WriteContext(now=T0), [user(1), twin], [user(2, manager=1)])
        first = await state(engine)
        assert first["user00002"][0] in ("user00001", "twin")
        for hour in (10, 11):
            assert 0 == (await resolve(engine, WriteContext(now=T1.replace(hour=hour)))).updated
        assert first == await state(engine)


class TestDryRunAndCapture:
    async def test_a_dry_run_writes_no_manager_and_still_reports_dangling_ones(
        self, engine: AsyncEngine
    ) -> None:
        await run(engine, WriteContext(now=T0), [user(1), user(3), user(5, manager=8)])
        before = await state(engine)
        dry = WriteContext(now=T1, dry_run=True, keep_changes=True, capture=True)
        out = await run(engine, dry, [user(2, manager=1)], [user(3, manager=1)])
        assert 0 == out.updated
        assert [(dn(5), f"manager {dn(8)} not found")] == [(p.dn, p.reason) for p in out.problems]
        assert before == await state(engine)
        assert [] == await captured(engine)

    async def test_every_changed_user_is_captured_once_per_change(
        self, engine: AsyncEngine
    ) -> None:
        """A page's users once (their page-time manager included); a user whose manager is
        set at the run's end only once more if that end changed it and its page did not."""
        ctx = WriteContext(now=T0, capture=True)
        await run(engine, ctx, [user(1), user(2, manager=1)], [user(3, manager=4), user(4)])
        # user00003's manager came on its own page: no second row; all four once.
        assert ["user00001", "user00002", "user00003", "user00004"] == await captured(engine)

        later = WriteContext(now=T1, capture=True)
        await run(engine, later, [user(5, manager=6)], [user(6)])
        assert ["user00005", "user00006", "user00005"] == (await captured(engine))[4:]
        assert ("user00006", 1) == (await state(engine))["user00005"]

        # A stored user the run does not rewrite, whose manager is found by the run's end.
        await run(engine, WriteContext(now=T1.replace(hour=10), capture=True), [user(7, manager=8)])
        await run(engine, WriteContext(now=T1.replace(hour=11), capture=True), [user(8)])
        assert ["user00007", "user00008", "user00007"] == (await captured(engine))[7:]
        assert ("user00008", 2) == (await state(engine))["user00007"]


class TestEmails:
    async def test_a_users_email_rows_are_those_of_its_last_write(self, engine: AsyncEngine) -> None:
        """New users get their e-mail rows (COPY on PostgreSQL); a rewritten user's old rows
        are replaced, an unchanged user's kept."""
        await run(engine, WriteContext(now=T0), [user(1), user(2, manager=1)])
        two = user(2, manager=1)
        rewritten = UserRecord(
            anchor=two.anchor, dn=two.dn, user_name=two.user_name, manager_dn=two.manager_dn,
            resource={**two.resource, "emails": [
                {"value": "Two@Example.com", "type": "work"},
                {"value": "two@home.example", "type": "home", "primary": True}]})
        await run(engine, WriteContext(now=T1), [user(1), rewritten])
        async with engine.connect() as conn:
            rows = list(await conn.execute(
                select(USERS.c.user_name, EMAILS.c.position, EMAILS.c.value, EMAILS.c.value_lower,
                       EMAILS.c.type, EMAILS.c.primary)
                .join(USERS, USERS.c.id == EMAILS.c.user_id)
                .order_by(USERS.c.user_name, EMAILS.c.position)))
        assert [("user00001", 0, "user00001@example.com", "user00001@example.com", None, True),
                ("user00002", 0, "Two@Example.com", "two@example.com", "work", False),
                ("user00002", 1, "two@home.example", "two@home.example", "home", True),
                ] == [tuple(r) for r in rows]
