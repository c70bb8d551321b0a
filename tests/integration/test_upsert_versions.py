"""A sync's update of a stored resource gives it the next version of the row as stored when
written, on both stores: a SCIM write committed between the sync's read of a page and its
write must not leave two states with one version (one ETag)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from syncsvc.domain import UserRecord
from syncsvc.store import writes
from syncsvc.store.schema import USERS
from syncsvc.store.writes import WriteContext

T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
DN = "uid=ada,ou=people,dc=example,dc=com"


def ada(title: str) -> UserRecord:
    return UserRecord(anchor="anchor-ada", dn=DN, user_name="ada",
                      resource={"userName": "ada", "title": title, "active": True})


async def stored(engine: AsyncEngine) -> tuple[int, str]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(USERS.c.version, USERS.c.resource)
                                  .where(USERS.c.anchor == "anchor-ada"))).one()
    return row.version, row.resource["title"]


async def test_a_version_written_in_between_is_not_reused(
    engine: AsyncEngine, monkeypatch: Any
) -> None:
    """The stored version moves (a SCIM PATCH commits) after the sync classified its page and
    before it writes: the sync's update gets the moved version plus one, not a version the
    PATCH's state already holds."""
    async with engine.begin() as conn:
        await writes.upsert_users(conn, WriteContext(now=T0), [ada("engineer")])
    assert (1, "engineer") == await stored(engine)

    # The PATCH lands between the page's read of the stored rows and its upsert.
    async def patch_in_between(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        await real_page_managers(conn, rows)
        async with engine.begin() as other:
            await other.execute(update(USERS).where(USERS.c.anchor == "anchor-ada")
                                .values(version=USERS.c.version + 1))

    real_page_managers: Callable[..., Awaitable[None]] = writes._page_managers
    monkeypatch.setattr(writes, "_page_managers", patch_in_between)
    # SQLite allows one writer: the sync's page transaction begins (and locks) at its first
    # write, after the PATCH above committed, as a PostgreSQL page's row lock would order them.
    async with engine.connect() as conn:
        await writes.upsert_users(conn, WriteContext(now=T1), [ada("architect")])
        await conn.commit()

    assert (3, "architect") == await stored(engine)


async def test_an_unchanged_then_changed_user_counts_each_change_once(engine: AsyncEngine) -> None:
    """Without anything in between, each change the directory makes is one new version."""
    for now, title in ((T0, "engineer"), (T1, "engineer"), (T1, "architect"), (T1, "cto")):
        async with engine.begin() as conn:
            await writes.upsert_users(conn, WriteContext(now=now), [ada(title)])

    assert (3, "cto") == await stored(engine)
