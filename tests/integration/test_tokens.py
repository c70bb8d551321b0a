"""API tokens in the store, on SQLite and PostgreSQL: create, list, revoke, authenticate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.auth import (
    TokenInfo,
    TokenNameTaken,
    UnknownScope,
    UnknownToken,
    authenticate,
    create_token,
    hash_secret,
    list_tokens,
    lookup_token,
    revoke_token,
)
from syncsvc.store import current_revision, head_revision, upgrade
from syncsvc.store.engine import _alembic_config
from syncsvc.store.schema import ApiTokenRow, Base

T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
TOKENS = ApiTokenRow.__table__


async def make(engine: AsyncEngine, name: str, scopes: str, now: datetime = T0) -> str:
    async with engine.begin() as conn:
        return await create_token(conn, name=name, scopes=scopes, now=now)


async def auth(engine: AsyncEngine, secret: str, now: datetime) -> TokenInfo | None:
    async with engine.begin() as conn:
        return await authenticate(conn, secret, now)


class TestMigration:
    async def test_head_matches_the_schema(self, engine: AsyncEngine) -> None:
        """After upgrade the database is at the newest revision and nothing differs from
        schema.py (every migration, 0002's token table included, mirrors the models)."""
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))

        assert (head_revision(), []) == (await current_revision(engine), diff)

    async def test_downgrade_drops_only_the_token_table(self, engine: AsyncEngine) -> None:
        """0002 -> 0001 removes api_token and leaves the rest; upgrading again restores it."""
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(_alembic_config(c), "0001"))
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))

        assert ("api_token" not in tables, "scim_user" in tables) == (True, True)
        assert "0001" == await current_revision(engine)
        await upgrade(engine)
        assert head_revision() == await current_revision(engine)


class TestCreate:
    async def test_only_the_hash_is_stored(self, engine: AsyncEngine) -> None:
        """The row holds sha256(secret), sorted scopes, the time; never the secret."""
        secret = await make(engine, "okta", "scim:write,scim:read")
        async with engine.connect() as conn:
            row = (await conn.execute(select(TOKENS))).one()

        assert (hash_secret(secret), "scim:read,scim:write", None, None) == (
            row.token_hash, row.scopes, row.last_used, row.revoked)
        assert secret not in repr(tuple(row))

    async def test_duplicate_name_is_refused(self, engine: AsyncEngine) -> None:
        """A second token with the same name: TokenNameTaken naming it; the first is intact."""
        first = await make(engine, "okta", "scim:read")

        with pytest.raises(TokenNameTaken, match="'okta' already exists"):
            await make(engine, "okta", "admin")

        info = await auth(engine, first, T0)
        assert info is not None
        assert ("okta", ("scim:read",)) == (info.name, info.scopes)

    async def test_revoked_name_is_not_reused(self, engine: AsyncEngine) -> None:
        """Names stay unique with their revoked tokens (the audit trail keeps its meaning)."""
        await make(engine, "okta", "scim:read")
        async with engine.begin() as conn:
            await revoke_token(conn, "okta", T0)

        with pytest.raises(TokenNameTaken, match="a revoked token named 'okta'"):
            await make(engine, "okta", "scim:read")

    async def test_unknown_scope_is_refused_and_nothing_stored(self, engine: AsyncEngine) -> None:
        """The error lists the valid scopes; no row is written."""
        with pytest.raises(UnknownScope, match="valid scopes: scim:read, scim:write, metrics, admin"):
            await make(engine, "okta", "scim:read,root")

        async with engine.connect() as conn:
            assert [] == await list_tokens(conn)


class TestListAndRevoke:
    async def test_list_shows_every_token_oldest_first(self, engine: AsyncEngine) -> None:
        """Names, scopes and times; revoked tokens stay listed with their revocation time."""
        await make(engine, "okta", "scim:read,scim:write", T0)
        await make(engine, "ops", "admin", T0 + timedelta(hours=1))
        async with engine.begin() as conn:
            revoked = await revoke_token(conn, "okta", T0 + timedelta(days=1))
            listed = await list_tokens(conn)

        assert [("okta", ("scim:read", "scim:write"), T0, T0 + timedelta(days=1)),
                ("ops", ("admin",), T0 + timedelta(hours=1), None)] == [
            (t.name, t.scopes, t.created, t.revoked) for t in listed]
        assert T0 + timedelta(days=1) == revoked.revoked

    async def test_revoking_twice_keeps_the_first_time(self, engine: AsyncEngine) -> None:
        """Revocation is idempotent; the first revocation time is the one that counts."""
        await make(engine, "okta", "admin")
        async with engine.begin() as conn:
            await revoke_token(conn, "okta", T0 + timedelta(minutes=1))
            again = await revoke_token(conn, "okta", T0 + timedelta(minutes=5))

        assert T0 + timedelta(minutes=1) == again.revoked

    async def test_unknown_name_cannot_be_revoked(self, engine: AsyncEngine) -> None:
        """Revoking a name nobody has: UnknownToken naming it."""
        with pytest.raises(UnknownToken, match="no token named 'nobody'"):
            async with engine.begin() as conn:
                await revoke_token(conn, "nobody", T0)


class TestAuthenticate:
    async def test_valid_secret_yields_the_token(self, engine: AsyncEngine) -> None:
        """The right secret finds its token, with its scopes."""
        secret = await make(engine, "okta", "scim:write")

        info = await auth(engine, secret, T0 + timedelta(seconds=5))

        assert info is not None
        assert ("okta", True, False) == (info.name, info.allows("scim:read"), info.allows("admin"))

    async def test_wrong_or_malformed_secret_yields_none(self, engine: AsyncEngine) -> None:
        """Another well-formed secret, a mangled one, garbage: all None."""
        secret = await make(engine, "okta", "admin")

        results = [await auth(engine, s, T0) for s in
                   (secret[:-1] + ("A" if secret[-1] != "A" else "B"), secret + "x", "", "Bearer x")]

        assert [None, None, None, None] == results

    async def test_revoked_token_is_refused(self, engine: AsyncEngine) -> None:
        """After revocation the secret authenticates nothing; lookup still names it (for logs)."""
        secret = await make(engine, "okta", "admin")
        async with engine.begin() as conn:
            await revoke_token(conn, "okta", T0 + timedelta(minutes=1))

        assert None is await auth(engine, secret, T0 + timedelta(minutes=2))
        async with engine.connect() as conn:
            found = await lookup_token(conn, secret)
        assert found is not None
        assert ("okta", False) == (found.name, found.active)

    async def test_last_used_moves_at_most_once_a_minute(self, engine: AsyncEngine) -> None:
        """First use is recorded; uses within a minute are not written; a later one is."""
        secret = await make(engine, "okta", "scim:read")

        async def stored_last_used() -> datetime | None:
            async with engine.connect() as conn:
                tokens = await list_tokens(conn)
            return tokens[0].last_used

        await auth(engine, secret, T0 + timedelta(seconds=10))
        assert T0 + timedelta(seconds=10) == await stored_last_used()
        await auth(engine, secret, T0 + timedelta(seconds=50))
        assert T0 + timedelta(seconds=10) == await stored_last_used()
        await auth(engine, secret, T0 + timedelta(seconds=75))
        assert T0 + timedelta(seconds=75) == await stored_last_used()
