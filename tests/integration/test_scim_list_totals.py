"""Kept totalResults of SCIM lists (syncsvc.scim.totals) on both stores, through the real server
with the response cache off: every page of a list reads its rows, but counts its matches only
once while the store stays as it was. A total is never stale: after a write through SCIM, a sync
in the serving process and a write by another engine on the same database (another replica, a
CLI sync), the very next page shows the new total."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncsvc.auth import create_token
from syncsvc.domain import RunMode
from syncsvc.http import create_app
from syncsvc.scim.service import KINDS, ScimService
from syncsvc.scim.state import SCIM
from syncsvc.service import Service, open_service
from syncsvc.settings import ScimSettings, StoreSettings
from syncsvc.store import create_engine
from syncsvc.sync import SyncOptions, run_sync
from tests.integration.scimenv import Scim
from tests.integration.syncenv import settings_for
from tests.support.slapd import Slapd

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SALES = "ou=sales,ou=people,dc=example,dc=com"
# Lists whose pages take every way to a total: an index page deep in (its total counted with
# its rows), a filtered first page that is not the whole list (counted on its own), a sorted
# page, a page read through SQLAlchemy (attributes=: not a kept rendering) and count=0.
PAGES: list[dict[str, Any]] = [
    {"startIndex": 3, "count": 2},
    {"filter": 'userName co "a"', "count": 2},
    {"filter": 'userName co "a"', "startIndex": 2, "count": 2},
    {"sortBy": "displayName", "startIndex": 4, "count": 3},
    {"startIndex": 2, "count": 2, "attributes": "userName"},
    {"count": 0},
]


@dataclass
class Server:
    scim: Scim
    service: Service  # the serving process's sync, on the server's own engine

    @property
    def totals(self) -> Any:
        return self.scim.http.app[SCIM].service.totals

    async def all_users(self, filter: str | None = None) -> list[str]:
        """Every matching userName, from one page holding them all: what the totals must say."""
        params: dict[str, Any] = {"count": 1000}
        if filter:
            params["filter"] = filter
        page = await self.scim.json("GET", "/Users", **params)
        return [r["userName"] for r in page["Resources"]]

    async def expected(self) -> dict[str | None, int]:
        return {None: len(await self.all_users()),
                'userName co "a"': len(await self.all_users('userName co "a"'))}

    async def totals_seen(self) -> list[int]:
        """totalResults of every page in :data:`PAGES`, and of cursor pages walking the list."""
        out = [(await self.scim.json("GET", "/Users", **params))["totalResults"]
               for params in PAGES]
        first = await self.scim.json("GET", "/Users", cursor="", count=3)
        second = await self.scim.json("GET", "/Users", cursor=first["nextCursor"], count=3)
        return [*out, first["totalResults"], second["totalResults"]]

    @staticmethod
    def wanted(expected: dict[str | None, int]) -> list[int]:
        every, some = expected[None], expected['userName co "a"']
        return [every, some, some, every, every, every, every, every]

    async def check(self) -> list[int]:
        """Asserts every page shows the total a full read gives; the totals."""
        seen = await self.totals_seen()
        assert self.wanted(await self.expected()) == seen
        return seen

    async def until_token(self) -> object:
        """The PostgreSQL listener connects in the background after start-up."""
        for _ in range(200):
            token = self.totals.token()
            if token is not None:
                return token
            await asyncio.sleep(0.05)
        raise AssertionError("the store change listener never connected")


@asynccontextmanager
async def server(slapd: Slapd, store_url: str, aiohttp_client: Any) -> AsyncIterator[Server]:
    """The seed synced by the serving process itself, its server without a response cache."""
    settings = dataclasses.replace(settings_for(slapd, store_url),
                                   scim=ScimSettings(response_cache_bytes=0))
    async with open_service(settings) as service:
        await run_sync(service.sync, SyncOptions(mode=RunMode.FULL))
        async with service.engine.begin() as conn:
            token = await create_token(conn, name="tests", scopes="scim:read,scim:write",
                                       now=datetime.now(UTC))
        client = await aiohttp_client(create_app(service.engine, settings))
        try:
            found = Server(Scim(client, token), service)
            await found.until_token()
            yield found
        finally:
            await client.close()


def new_user(name: str) -> dict[str, Any]:
    return {"schemas": [USER], "userName": name, "displayName": name.title()}


async def test_pages_of_one_list_count_once(
    slapd: Slapd, store_url: str, aiohttp_client: Any
) -> None:
    """The second read of each page takes its total from memory, and shows the same."""
    async with server(slapd, store_url, aiohttp_client) as s:
        first = await s.check()
        hits = s.totals.hits

        assert first == await s.check()
        assert s.totals.hits > hits


async def test_a_scim_write_is_in_the_next_pages_total(
    slapd: Slapd, store_url: str, aiohttp_client: Any
) -> None:
    async with server(slapd, store_url, aiohttp_client) as s:
        before = await s.check()
        await s.check()  # every total now kept

        created = await s.scim.json("POST", "/Users", new_user("zara.walker"), expect=201)
        after_post = await s.check()
        await s.scim.json("DELETE", f"/Users/{created['id']}", expect=204)
        after_delete = await s.check()

        assert [n + 1 for n in before] == after_post
        assert before == after_delete


async def test_a_scim_write_is_in_the_next_groups_total(
    slapd: Slapd, store_url: str, aiohttp_client: Any
) -> None:
    """Groups are read through SQLAlchemy: their totals are kept and dropped alike."""
    async with server(slapd, store_url, aiohttp_client) as s:
        async def total() -> int:
            return int((await s.scim.json("GET", "/Groups", startIndex=2, count=1))["totalResults"])

        before = await total()
        assert before == await total()

        await s.scim.json("POST", "/Groups", {"schemas": [GROUP], "displayName": "Tea"}, expect=201)

        assert before + 1 == await total()


async def test_a_sync_is_in_the_next_pages_total(
    slapd: Slapd, store_url: str, aiohttp_client: Any
) -> None:
    """A sync of the serving process, on the server's own engine (no notification needed)."""
    async with server(slapd, store_url, aiohttp_client) as s:
        before = await s.check()
        await s.check()
        slapd.add(f"dn: uid=anna.park,{SALES}\nobjectClass: inetOrgPerson\nuid: anna.park\n"
                  "cn: Anna Park\nsn: Park\nmail: anna.park@example.com\n")

        await run_sync(s.service.sync, SyncOptions(mode=RunMode.FULL))

        after = await s.check()
        assert [n + 1 for n in before] == after


async def test_a_write_by_another_engine_is_in_the_next_pages_total(
    slapd: Slapd, store_url: str, aiohttp_client: Any
) -> None:
    """Another replica writes through its own engine. SQLite: the next page sees it
    (data_version). PostgreSQL: the next page after its NOTIFY reached this process."""
    async with server(slapd, store_url, aiohttp_client) as s:
        before = await s.check()
        await s.check()
        token = await s.until_token()
        other = create_engine(StoreSettings(url=store_url))
        try:
            await ScimService(other, ScimSettings()).create(
                KINDS["Users"], new_user("zara.walker"), base_url="http://other/scim/v2")
        finally:
            await other.dispose()
        if not store_url.startswith("sqlite"):
            for _ in range(200):  # without sending a page: the first one sent must be right
                if s.totals.token() != token:
                    break
                await asyncio.sleep(0.01)

        after = await s.totals_seen()

        assert [n + 1 for n in before] == after
