"""Tokens at rest: only a SHA-256 digest is stored, and the accept/refuse decision is a
constant-time comparison of digests (never of the secret, never with ``==``).

Timing is not measured (no timing assertions): the tests show instead that the secret never
reaches the store (not in any row, not in SQLite's file after real HTTP use) and that the
decision rests on :func:`hmac.compare_digest` (forced to say "different", a token the database
found is refused).
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.auth import create_token, hash_secret, lookup_token
from syncsvc.auth import tokens as token_module
from syncsvc.http import create_app
from syncsvc.settings import Settings, StoreSettings
from syncsvc.store import create_engine, upgrade

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def _every_value(engine: AsyncEngine) -> list[str]:
    """Every value of every table, as text."""
    async with engine.connect() as conn:
        meta = MetaData()
        await conn.run_sync(meta.reflect)
        values: list[str] = []
        for table in meta.sorted_tables:
            for row in await conn.execute(select(table)):
                values += [str(v) for v in row]
    return values


class TestAtRest:
    async def test_no_part_of_the_secret_is_stored(self, engine: AsyncEngine) -> None:
        """After create and use, no stored value holds 12 characters in a row of the secret."""
        async with engine.begin() as conn:
            secret = await create_token(conn, name="ci", scopes="scim:read", now=NOW)
        async with engine.connect() as conn:
            assert await lookup_token(conn, secret) is not None

        body = secret.removeprefix("scs_")
        pieces = {body[i:i + 12] for i in range(len(body) - 11)}
        values = await _every_value(engine)
        assert [] == [v for v in values if any(p in v for p in pieces)]
        assert hash_secret(secret) in values

    @pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # a file: SQLite's
    async def test_sqlite_file_never_holds_the_secret(
        self, store_url: str, aiohttp_client: Any
    ) -> None:
        """The database file itself, after real authenticated requests (last_used written)."""
        settings = Settings(store=StoreSettings(url=store_url))
        engine = create_engine(settings.store)
        try:
            await upgrade(engine)
            async with engine.begin() as conn:
                secret = await create_token(conn, name="ci", scopes="scim:read", now=NOW)
            client = await aiohttp_client(create_app(engine, settings))
            for _ in range(3):
                response = await client.get("/scim/v2/Users",
                                            headers={"Authorization": f"Bearer {secret}"})
                assert 200 == response.status
            await client.close()
        finally:
            await engine.dispose()
        database = Path(store_url.split("///", 1)[1])
        stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
        assert secret.encode() not in stored
        assert secret.removeprefix("scs_")[:16].encode() not in stored


class TestConstantTime:
    async def test_the_decision_is_compare_digest_of_digests(
        self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """lookup_token compares the stored digest with the secret's digest through
        hmac.compare_digest; made to answer "different", it refuses a token the database found."""
        async with engine.begin() as conn:
            secret = await create_token(conn, name="ci", scopes="scim:read", now=NOW)
        calls: list[tuple[str, str]] = []

        def says_different(a: str, b: str) -> bool:  # the fault: only this comparison lies
            calls.append((a, b))
            return False

        monkeypatch.setattr(token_module.hmac, "compare_digest", says_different)
        async with engine.connect() as conn:
            refused = await lookup_token(conn, secret)

        assert refused is None
        assert [(hash_secret(secret), hash_secret(secret))] == calls

    async def test_the_real_comparison_accepts_the_token(self, engine: AsyncEngine) -> None:
        """Unpatched, the same path accepts the token (the test above is not vacuous)."""
        async with engine.begin() as conn:
            secret = await create_token(conn, name="ci", scopes="scim:read", now=NOW)
        async with engine.connect() as conn:
            found = await lookup_token(conn, secret)

        assert found is not None and "ci" == found.name
        assert hmac.compare_digest is token_module.hmac.compare_digest
