"""The SCIM response cache, through the real server on both stores: a repeated read is served
from memory, and no read is ever staler than the store allows: writes through SCIM, through
another engine (another replica or a CLI sync) and a lost PostgreSQL listener."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from syncsvc.auth import create_token
from syncsvc.http import create_app
from syncsvc.scim.service import KINDS, ScimService
from syncsvc.scim.state import SCIM
from syncsvc.settings import ScimSettings, Settings, StoreSettings
from syncsvc.store import create_engine, upgrade
from tests.integration.scimenv import Scim, scim, serving  # noqa: F401 - fixtures

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def cache_of(scim: Scim) -> Any:
    return scim.http.app[SCIM].cache


def new_user(name: str) -> dict[str, Any]:
    return {"schemas": [USER], "userName": name, "displayName": name.title()}


def rename(display_name: str) -> dict[str, Any]:
    return {"schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "displayName", "value": display_name}]}


async def until_token(scim: Scim) -> None:
    """The PostgreSQL listener connects in the background after start-up."""
    for _ in range(100):
        if cache_of(scim).token() is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the store change listener never connected")


class TestHits:
    async def test_a_repeated_get_is_served_from_memory_with_the_same_bytes(self, scim: Scim) -> None:
        await until_token(scim)
        user = await scim.json("POST", "/Users", new_user("ada"), expect=201)
        cache = cache_of(scim)
        first = await scim.request("GET", f"/Users/{user['id']}")
        hits = cache.hits
        second = await scim.request("GET", f"/Users/{user['id']}")

        assert hits + 1 == cache.hits
        assert (200, await first.read(), first.headers["ETag"]) == \
            (second.status, await second.read(), second.headers["ETag"])
        assert second.headers["Content-Type"] == "application/scim+json; charset=utf-8"
        assert second.headers["X-Request-Id"] != first.headers["X-Request-Id"]

    async def test_if_none_match_is_304_on_a_cached_answer(self, scim: Scim) -> None:
        await until_token(scim)
        user = await scim.json("POST", "/Users", new_user("ada"), expect=201)
        tag = (await scim.request("GET", f"/Users/{user['id']}")).headers["ETag"]
        hits = cache_of(scim).hits

        again = await scim.request("GET", f"/Users/{user['id']}", headers={"If-None-Match": tag})

        assert (304, hits + 1) == (again.status, cache_of(scim).hits)

    async def test_a_cached_answer_still_needs_a_token(self, scim: Scim) -> None:
        await until_token(scim)
        user = await scim.json("POST", "/Users", new_user("ada"), expect=201)
        await scim.json("GET", f"/Users/{user['id']}")

        anonymous = await scim.http.get(f"/scim/v2/Users/{user['id']}")
        wrong = await scim.http.get(f"/scim/v2/Users/{user['id']}",
                                    headers={"Authorization": "Bearer scs_not-a-token"})

        assert (401, 401) == (anonymous.status, wrong.status)
        assert "ada" not in await anonymous.text() + await wrong.text()

    async def test_lists_are_cached_per_query(self, scim: Scim) -> None:
        await until_token(scim)
        for name in ("ada", "alan", "grace"):
            await scim.json("POST", "/Users", new_user(name), expect=201)
        await scim.json("GET", "/Users", filter='userName eq "alan"')
        hits = cache_of(scim).hits

        alan = await scim.json("GET", "/Users", filter='userName eq "alan"')
        grace = await scim.json("GET", "/Users", filter='userName eq "grace"')

        assert (["alan"], ["grace"]) == ([r["userName"] for r in alan["Resources"]],
                                         [r["userName"] for r in grace["Resources"]])
        assert hits + 1 == cache_of(scim).hits


class TestFreshness:
    async def test_a_scim_write_is_in_the_next_read(self, scim: Scim) -> None:
        await until_token(scim)
        user = await scim.json("POST", "/Users", new_user("ada"), expect=201)
        await scim.json("GET", f"/Users/{user['id']}")
        await scim.json("GET", "/Users", filter='userName eq "ada"')

        await scim.json("PATCH", f"/Users/{user['id']}", rename("Countess"))

        one = await scim.json("GET", f"/Users/{user['id']}")
        listed = await scim.json("GET", "/Users", filter='userName eq "ada"')
        assert ("Countess", "Countess") == (one["displayName"], listed["Resources"][0]["displayName"])

    async def test_a_deleted_user_is_404_at_once(self, scim: Scim) -> None:
        await until_token(scim)
        user = await scim.json("POST", "/Users", new_user("ada"), expect=201)
        await scim.json("GET", f"/Users/{user['id']}")

        await scim.json("DELETE", f"/Users/{user['id']}", expect=204)

        await scim.json("GET", f"/Users/{user['id']}", expect=404)

    async def test_a_write_by_another_engine_reaches_the_reads(
        self, scim: Scim, store_url: str
    ) -> None:
        """Another replica or a CLI sync writes through its own connections. SQLite: the next
        read sees it (data_version). PostgreSQL: as soon as the NOTIFY arrives, a moment later."""
        await until_token(scim)
        user = await scim.json("POST", "/Users", new_user("ada"), expect=201)
        await scim.json("GET", f"/Users/{user['id']}")
        await scim.json("GET", f"/Users/{user['id']}")
        other = create_engine(StoreSettings(url=store_url))
        try:
            await ScimService(other, ScimSettings()).patch(
                KINDS["Users"], user["id"], rename("Countess"), base_url="http://other/scim/v2")
        finally:
            await other.dispose()

        if store_url.startswith("sqlite"):
            seen = (await scim.json("GET", f"/Users/{user['id']}"))["displayName"]
        else:
            for _ in range(100):
                seen = (await scim.json("GET", f"/Users/{user['id']}"))["displayName"]
                if seen == "Countess":
                    break
                await asyncio.sleep(0.02)
        assert "Countess" == seen

    async def test_no_cached_answer_without_the_listener(self, scim: Scim, store_url: str) -> None:
        """PostgreSQL: while the LISTEN connection is gone (killed here, as a failover would),
        every read goes to the store; once it is back, caching resumes."""
        if store_url.startswith("sqlite"):
            return  # nothing to lose: SQLite is asked on every read
        await until_token(scim)
        user = await scim.json("POST", "/Users", new_user("ada"), expect=201)
        cache = cache_of(scim)
        async with other_connection(store_url) as conn:
            killed = (await conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"))).scalar_one()
        assert 1 == killed
        for _ in range(100):
            if cache.token() is None:
                break
            await asyncio.sleep(0.01)
        hits = cache.hits

        for _ in range(3):
            await scim.json("GET", f"/Users/{user['id']}")

        assert hits == cache.hits
        await until_token(scim)
        await scim.json("GET", f"/Users/{user['id']}")
        await scim.json("GET", f"/Users/{user['id']}")
        assert hits + 1 == cache.hits


@asynccontextmanager
async def other_connection(url: str) -> AsyncIterator[AsyncConnection]:
    """A connection of another engine on the same database, as another process would have."""
    engine = create_engine(StoreSettings(url=url))
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()


class TestSettings:
    async def test_zero_bytes_keeps_nothing(self, store_url: str, aiohttp_client: Any) -> None:
        async with serving(store_url, aiohttp_client, ScimSettings(response_cache_bytes=0)) as s:
            user = await s.json("POST", "/Users", new_user("ada"), expect=201)
            for _ in range(3):
                await s.json("GET", f"/Users/{user['id']}")
            assert (0, 0) == (len(cache_of(s)), cache_of(s).hits)


async def test_two_apps_on_one_engine_each_see_the_writes_of_the_other(
    store_url: str, aiohttp_client: Any
) -> None:
    """Two apps on one engine (a cached and an uncached server, as bench_scim runs them):
    each keeps its own commit listeners, sees the other's writes, and both stop cleanly."""
    settings = Settings(store=StoreSettings(url=store_url))
    engine = create_engine(settings.store)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            token = await create_token(conn, name="t", scopes="scim:write", now=datetime.now(UTC))
        first = Scim(await aiohttp_client(create_app(engine, settings)), token)
        second = Scim(await aiohttp_client(create_app(engine, settings)), token)
        await until_token(first)
        await until_token(second)
        user = await first.json("POST", "/Users", new_user("ada"), expect=201)
        await second.json("GET", f"/Users/{user['id']}")

        await first.json("PATCH", f"/Users/{user['id']}", rename("Countess"))

        assert "Countess" == (await second.json("GET", f"/Users/{user['id']}"))["displayName"]
        await first.http.close()
        await second.http.close()
    finally:
        await engine.dispose()
