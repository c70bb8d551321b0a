"""Migration 0003 (thumbnails and the public slug column) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine, upgrade
from syncsvc.store.engine import _alembic_config
from syncsvc.store.schema import Base, UserRow

# These tests migrate step by step from an empty database.
pytestmark = pytest.mark.empty_store

T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)

# scim_user as revision 0002 has it (no public_slug, no photo_hash).
OLD_USERS = sa.table(
    "scim_user", *(sa.column(n) for n in (
        "id", "origin", "user_name", "user_name_lower", "active", "content_hash", "version",
        "created", "last_modified")),
    sa.column("resource", sa.JSON()), sa.column("profile", sa.JSON()),
)


@pytest.fixture
async def engine(store_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(StoreSettings(url=store_url))
    try:
        yield engine
    finally:
        await engine.dispose()


def _user(n: int, profile: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": f"00000000-0000-0000-0000-00000000000{n}", "origin": "local",
            "user_name": f"u{n}", "user_name_lower": f"u{n}", "active": True,
            "content_hash": "", "version": 1, "created": T0 + timedelta(minutes=n),
            "last_modified": T0, "resource": {"userName": f"u{n}"}, "profile": profile}


class TestMigration0003:
    async def test_slug_backfill_oldest_keeps_a_duplicate(self, engine: AsyncEngine) -> None:
        """Slugs are copied lower-cased; of two users with one slug the older keeps it; a
        malformed slug and a missing profile give NULL."""
        await upgrade(engine, "0002")
        async with engine.begin() as conn:
            await conn.execute(sa.insert(OLD_USERS), [
                _user(1, {"publicProfile": {"enabled": True, "slug": "Ada-L"}}),
                _user(2, {"publicProfile": {"enabled": False, "slug": "ada-l"}}),
                _user(3, {"publicProfile": {"slug": "x"}}),
                _user(4, None),
                _user(5, {"bio": "no page", "publicProfile": {"enabled": False, "slug": "grace"}}),
            ])
        await upgrade(engine)
        async with engine.connect() as conn:
            rows = await conn.execute(select(UserRow.user_name, UserRow.public_slug,
                                             UserRow.photo_hash))
            got = {name: (slug, photo) for name, slug, photo in rows}
        assert {"u1": ("ada-l", None), "u2": (None, None), "u3": (None, None),
                "u4": (None, None), "u5": ("grace", None)} == got

    async def test_head_matches_the_schema_and_downgrade_is_clean(
        self, engine: AsyncEngine
    ) -> None:
        """At head nothing differs from schema.py; 0003 -> 0002 drops exactly what it added."""
        await upgrade(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
        assert [] == diff

        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(_alembic_config(c), "0002"))
            tables, columns = await conn.run_sync(lambda c: (
                set(inspect(c).get_table_names()),
                {col["name"] for col in inspect(c).get_columns("scim_user")}))
        assert ("user_photo" in tables, "api_token" in tables) == (False, True)
        assert {"public_slug", "photo_hash"}.isdisjoint(columns) and "profile" in columns
        await upgrade(engine)
