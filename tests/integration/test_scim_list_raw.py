"""SCIM list pages read on the driver's own connection (ScimService._list_kept), on both stores.

A page of kept renderings reads its keys and total in one statement, built once per query shape
and run on SQLite's worker threads or on asyncpg directly. Every page must be the one the
engine's path gives (same resources, order, totals, cursors), and a statement kept for a shape
must still see every commit made before the page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from syncsvc import jsoncodec
from syncsvc.errors import ScimError
from syncsvc.scim.service import KINDS, ListQuery, ScimService
from syncsvc.settings import ScimSettings, StoreSettings
from syncsvc.store import create_engine, upgrade
from syncsvc.store.loopreads import loop_reader_for
from syncsvc.store.pgreads import PgReader
from tests.integration.syncenv import settings_for, sync_once
from tests.support.slapd import Slapd

BASE = "https://scim.example.test/scim/v2"
USERS = KINDS["Users"]
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"

# Every shape a list statement takes: filters (column, JSON, multi-valued, groups), sorts both
# ways, deep and empty pages, count 0, and startIndex past the end.
QUERIES = [
    ListQuery(count=1000),
    ListQuery(start_index=3, count=4),
    ListQuery(start_index=10_000, count=5),
    ListQuery(count=0),
    ListQuery(sort_by="displayName", sort_order="descending", count=6),
    ListQuery(sort_by="userName", start_index=2, count=3),
    ListQuery(sort_order="descending", count=5),
    ListQuery(filter='displayName co "a"', count=3),
    ListQuery(filter='displayName co "a"', start_index=2, count=2),
    ListQuery(filter='displayName co "a"', count=0),
    ListQuery(filter="title pr", count=2),
    ListQuery(filter='emails.value co "example"', sort_by="displayName", count=3),
    ListQuery(filter='groups.display co "e"', count=50),
    ListQuery(filter='userName sw "zzz-nobody"', count=10),
]


@dataclass
class Services:
    raw: ScimService  # as the server builds it: the driver's connection for list pages
    engine_only: ScimService  # no raw reader: every page through SQLAlchemy's execution


@pytest.fixture
async def services(slapd: Slapd, store_url: str) -> AsyncIterator[Services]:
    await sync_once(settings_for(slapd, store_url))
    engine = create_engine(StoreSettings(url=store_url))
    loop_reader = loop_reader_for(engine)
    pg_reader = PgReader(engine) if engine.dialect.name == "postgresql" else None
    try:
        await upgrade(engine)
        settings = ScimSettings(base_url=BASE, response_cache_bytes=0)
        yield Services(ScimService(engine, settings, loop_reader=loop_reader, pg_reader=pg_reader),
                       ScimService(engine, settings))
    finally:
        if loop_reader is not None:
            loop_reader.close()
        if pg_reader is not None:
            await pg_reader.aclose()
        await engine.dispose()


async def listed(service: ScimService, query: ListQuery) -> dict[str, Any]:
    """The page as a client reads it (kept renderings are encoded JSON inside the page)."""
    return jsoncodec.loads(jsoncodec.dumps(await service.list(USERS, query, base_url=BASE)))


async def walk(service: ScimService, query: ListQuery) -> list[dict[str, Any]]:
    """Every cursor page of ``query``, from the first."""
    pages, cursor = [], ""
    while cursor is not None:
        page = await listed(service, ListQuery(**{**_fields(query), "cursor": cursor}))
        pages.append(page)
        cursor = page.get("nextCursor")
    return pages


def _fields(query: ListQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in query.__dataclass_fields__}


async def test_pages_equal_the_engines(services: Services) -> None:
    """Index pages and cursor pages (keyset and sorted) read raw are the engine path's."""
    for query in QUERIES:
        raw = await listed(services.raw, query)
        assert await listed(services.engine_only, query) == raw, query
        # Twice: the second read runs the statement kept for this shape.
        assert await listed(services.raw, query) == raw, query
    for query in (ListQuery(count=3), ListQuery(sort_by="displayName", count=4),
                  ListQuery(filter='displayName co "a"', sort_order="descending", count=2)):
        raw_pages = await walk(services.raw, query)
        assert await walk(services.engine_only, query) == raw_pages, query
        ids = [r["id"] for page in raw_pages for r in page["Resources"]]
        assert len(ids) == len(set(ids)) == raw_pages[0]["totalResults"] > 0


async def test_a_kept_statement_sees_new_writes(services: Services) -> None:
    """A user created and a group renamed after a query shape was read are in its next page."""
    query = ListQuery(count=1000)
    before = await listed(services.raw, query)
    some = before["Resources"][0]

    created = await services.raw.create(USERS, {"schemas": [USER], "userName": "zz-new-user"},
                                        base_url=BASE)
    group = await services.raw.create(
        KINDS["Groups"], {"schemas": [GROUP], "displayName": "Newcomers",
                          "members": [{"value": some["id"]}]}, base_url=BASE)
    await services.raw.patch(
        KINDS["Groups"], group.body["id"],
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
         "Operations": [{"op": "replace", "path": "displayName", "value": "Veterans"}]},
        base_url=BASE)
    after = await listed(services.raw, query)

    assert after["totalResults"] == before["totalResults"] + 1
    shown = {r["id"]: r for r in after["Resources"]}
    assert created.body["id"] in shown
    assert {"value": group.body["id"], "display": "Veterans"} in [
        {"value": g["value"], "display": g["display"]} for g in shown[some["id"]]["groups"]]
    assert after == await listed(services.engine_only, query)


async def test_an_unknown_sort_is_refused_on_every_path(services: Services) -> None:
    """A bad sortBy is a 400 also where the page would be a unique lookup."""
    for query in (ListQuery(sort_by="nope.nothing", count=3),
                  ListQuery(filter='userName eq "x"', sort_by="nope.nothing", count=3)):
        with pytest.raises(ScimError):
            await services.raw.list(USERS, query, base_url=BASE)
