"""Kept User renderings (syncsvc.scim.rendered) on both stores, through the real server: a list
page reuses the bytes of users it rendered before, and after every kind of write each page is
the one a fresh render gives (docs/reliability.md, "Freshness of SCIM reads").

The response cache is off in both servers here, so every list reaches the store: ``kept`` keeps
renderings, ``fresh`` renders every user on every read.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from PIL import Image

from syncsvc.auth import create_token
from syncsvc.http import create_app
from syncsvc.scim.state import SCIM
from syncsvc.settings import ScimSettings, Settings, StoreSettings
from syncsvc.store import create_engine, upgrade
from tests.integration.scimenv import Scim
from tests.integration.syncenv import settings_for, sync_once
from tests.support.slapd import Slapd, ldif_line

ENG = "ou=engineering,ou=people,dc=example,dc=com"
SALES = "ou=sales,ou=people,dc=example,dc=com"
GRACE = f"uid=grace.hopper,{ENG}"
LINUS = f"uid=linus.torvalds,{ENG}"
ALAN = f"uid=alan.turing,{ENG}"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PROFILE = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, format="JPEG")
    return out.getvalue()


def replace(path: str, value: Any) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": [{"op": "replace", "path": path, "value": value}]}


@dataclass
class Pair:
    kept: Scim
    fresh: Scim

    @property
    def rendered(self) -> Any:
        return self.kept.http.app[SCIM].service._rendered

    async def pages(self, scim: Scim) -> list[Any]:
        """Every way this test reads users: one page of all users, cursor pages of 4, an index
        page deep in, a sorted page, a ``co`` filter, and each user by id (body and ETag) and
        by ``userName eq`` (in upper case: userName is not caseExact)."""
        everyone = await scim.json("GET", "/Users", count=1000)
        out = [everyone,
               await scim.json("GET", "/Users", startIndex=5, count=7),
               await scim.json("GET", "/Users", sortBy="displayName", sortOrder="descending",
                               count=9),
               await scim.json("GET", "/Users", filter='displayName co "a"', count=6)]
        cursor = ""
        while cursor is not None:
            page = await scim.json("GET", "/Users", cursor=cursor, count=4)
            out.append(page)
            cursor = page.get("nextCursor")
        for user in everyone["Resources"]:
            response = await scim.request("GET", f"/Users/{user['id']}")
            out.append((response.status, response.headers["ETag"], await response.json()))
            out.append(await scim.json("GET", "/Users",
                                       filter=f'userName eq "{user["userName"].upper()}"'))
        return out

    async def same(self) -> dict[str, Any]:
        """Asserts both servers answer every list alike; the kept one's first page."""
        kept, fresh = await self.pages(self.kept), await self.pages(self.fresh)
        assert fresh == kept
        return {r["userName"]: r for r in kept[0]["Resources"]}


@pytest.fixture
async def pair(slapd: Slapd, store_url: str, aiohttp_client: Any) -> AsyncIterator[Pair]:
    """The seed synced, and two servers on one engine."""
    await sync_once(settings_for(slapd, store_url))
    engine = create_engine(StoreSettings(url=store_url))
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            token = await create_token(conn, name="tests", scopes="scim:read,scim:write",
                                       now=datetime.now(UTC))

        async def serve(scim: ScimSettings) -> Scim:
            settings = Settings(store=StoreSettings(url=store_url), scim=scim)
            return Scim(await aiohttp_client(create_app(engine, settings)), token)

        # One public base for both, so that their answers can be compared byte for byte.
        base = "https://scim.example.test/scim/v2"
        kept = await serve(ScimSettings(base_url=base, response_cache_bytes=0))
        fresh = await serve(ScimSettings(base_url=base, response_cache_bytes=0,
                                         rendered_cache_bytes=0))
        yield Pair(kept, fresh)
        await kept.http.close()
        await fresh.http.close()
    finally:
        await engine.dispose()


async def test_a_page_reuses_kept_renderings(pair: Pair) -> None:
    first = await pair.kept.json("GET", "/Users", count=1000)
    misses, hits = pair.rendered.misses, pair.rendered.hits

    again = await pair.kept.json("GET", "/Users", count=1000)

    assert first == again
    assert (misses, hits + first["itemsPerPage"]) == (pair.rendered.misses, pair.rendered.hits)
    assert first["itemsPerPage"] == len(pair.rendered) > 10


async def test_a_read_by_id_or_username_reuses_kept_renderings(pair: Pair) -> None:
    """A GET by id and a ``userName eq`` lookup serve the bytes a page kept, with the ETag of
    the version they show; after a write, the new rendering and the new ETag."""
    page = await pair.kept.json("GET", "/Users", count=1000)
    user = page["Resources"][3]
    misses, hits = pair.rendered.misses, pair.rendered.hits

    response = await pair.kept.request("GET", f"/Users/{user['id']}")
    found = await pair.kept.json("GET", "/Users", filter=f'userName eq "{user["userName"]}"')

    assert (user, [user], 1) == (await response.json(), found["Resources"], found["totalResults"])
    assert user["meta"]["version"] == response.headers["ETag"]
    assert (misses, hits + 2) == (pair.rendered.misses, pair.rendered.hits)

    await pair.kept.json("PATCH", f"/Users/{user['id']}", replace(PROFILE, {"headline": "New"}))
    response = await pair.kept.request("GET", f"/Users/{user['id']}")
    changed = await response.json()
    assert ("New", changed["meta"]["version"]) == \
        (changed[PROFILE]["headline"], response.headers["ETag"])
    assert changed["meta"]["version"] != user["meta"]["version"]
    assert (misses + 1, hits + 2) == (pair.rendered.misses, pair.rendered.hits)
    gone = await pair.kept.json("GET", "/Users", filter='userName eq "nobody.here"')
    assert (0, []) == (gone["totalResults"], gone["Resources"])
    await pair.kept.json("GET", "/Users/00000000-0000-0000-0000-000000000000", expect=404)


async def test_every_write_is_in_the_next_page(pair: Pair, slapd: Slapd, store_url: str) -> None:
    """Each write path, then every kind of list compared with a fresh render."""
    settings = settings_for(slapd, store_url)
    users = await pair.same()
    linus = users["linus.torvalds"]

    # A sync update of the directory body.
    slapd.modify(f"dn: {LINUS}\nchangetype: modify\nreplace: title\ntitle: Kernel Maintainer\n")
    await sync_once(settings)
    assert "Kernel Maintainer" == (await pair.same())["linus.torvalds"]["title"]

    # PATCH of the profile extension of a directory user.
    await pair.kept.json("PATCH", f"/Users/{linus['id']}", replace(PROFILE, {"headline": "Git"}))
    assert "Git" == (await pair.same())["linus.torvalds"][PROFILE]["headline"]

    # The manager renamed in the directory: the report's own version does not move.
    slapd.modify(f"dn: {GRACE}\nchangetype: modify\nreplace: displayName\n"
                 "displayName: Amazing Grace\n")
    await sync_once(settings)
    assert "Amazing Grace" == \
        (await pair.same())["linus.torvalds"][ENTERPRISE]["manager"]["displayName"]

    # The manager changed in the directory.
    slapd.modify(f"dn: {LINUS}\nchangetype: modify\nreplace: manager\nmanager: {ALAN}\n")
    await sync_once(settings)
    manager = (await pair.same())["linus.torvalds"][ENTERPRISE]["manager"]
    assert "Alan Turing" == manager["displayName"]

    # A photo stored by the sync: thumbnail URL and completeness.
    slapd.modify(f"dn: {LINUS}\nchangetype: modify\nreplace: jpegPhoto\n"
                 f"{ldif_line('jpegPhoto', jpeg((200, 40, 40)))}\n")
    await sync_once(settings)
    assert "thumbnail" in (await pair.same())["linus.torvalds"][PROFILE]["photo"]

    # A group of his renamed, then his membership of another: his own version does not move.
    group = await pair.kept.json("POST", "/Groups", {
        "schemas": [GROUP], "displayName": "Kernel", "members": [{"value": linus["id"]}]},
        expect=201)
    assert ["Kernel"] == [g["display"] for g in (await pair.same())["linus.torvalds"]["groups"]
                          if g["value"] == group["id"]]
    await pair.kept.json("PATCH", f"/Groups/{group['id']}", replace("displayName", "Kernel Team"))
    assert ["Kernel Team"] == [g["display"] for g in (await pair.same())["linus.torvalds"]["groups"]
                               if g["value"] == group["id"]]
    await pair.kept.json("PATCH", f"/Groups/{group['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": f'members[value eq "{linus["id"]}"]'}]})
    assert group["id"] not in [g["value"] for g in (await pair.same())["linus.torvalds"]["groups"]]

    # Deactivation by a full sync that no longer sees the entry.
    slapd.delete(f"uid=noah.jones,{SALES}")
    await sync_once(settings)
    assert False is (await pair.same())["noah.jones"]["active"]


async def test_local_writes_are_in_the_next_page(pair: Pair) -> None:
    """PUT of a local user's profile, its manager renamed, changed and deleted, the user deleted."""
    boss = await pair.kept.json("POST", "/Users", {"schemas": [USER], "userName": "boss",
                                                   "displayName": "Boss"}, expect=201)
    other = await pair.kept.json("POST", "/Users", {"schemas": [USER], "userName": "other",
                                                    "displayName": "Other"}, expect=201)
    body = {"schemas": [USER, ENTERPRISE, PROFILE], "userName": "worker", "displayName": "Worker",
            ENTERPRISE: {"manager": {"value": boss["id"]}}, PROFILE: {"headline": "Hello"}}
    worker = await pair.kept.json("POST", "/Users", body, expect=201)
    assert "Boss" == (await pair.same())["worker"][ENTERPRISE]["manager"]["displayName"]

    await pair.kept.json("PUT", f"/Users/{worker['id']}", {**body, PROFILE: {"headline": "Bye"}})
    assert "Bye" == (await pair.same())["worker"][PROFILE]["headline"]

    await pair.kept.json("PATCH", f"/Users/{boss['id']}", replace("displayName", "Big Boss"))
    assert "Big Boss" == (await pair.same())["worker"][ENTERPRISE]["manager"]["displayName"]

    await pair.kept.json("PATCH", f"/Users/{worker['id']}",
                         replace(f"{ENTERPRISE}:manager", {"value": other["id"]}))
    assert "Other" == (await pair.same())["worker"][ENTERPRISE]["manager"]["displayName"]

    # Deleting the manager clears the report's manager without moving the report's version.
    await pair.kept.json("DELETE", f"/Users/{other['id']}", expect=204)
    assert ENTERPRISE not in (await pair.same())["worker"]

    await pair.kept.json("DELETE", f"/Users/{worker['id']}", expect=204)
    assert "worker" not in await pair.same()


async def test_projections_are_unchanged(pair: Pair) -> None:
    """attributes/excludedAttributes pages take the full read and agree with a fresh render."""
    for params in ({"attributes": "userName,groups"}, {"excludedAttributes": "groups,emails"},
                   {"attributes": f"{ENTERPRISE}:manager"}):
        kept = await pair.kept.json("GET", "/Users", count=50, **params)
        fresh = await pair.fresh.json("GET", "/Users", count=50, **params)
        assert fresh == kept
        assert kept["itemsPerPage"] > 10


async def test_zero_bytes_keeps_nothing(pair: Pair) -> None:
    fresh = pair.fresh.http.app[SCIM].service._rendered
    for _ in range(2):
        await pair.fresh.json("GET", "/Users", count=1000)
    assert (0, 0) == (len(fresh), fresh.hits)


async def test_every_page_counts_every_match(pair: Pair) -> None:
    """totalResults of deep, cursor and past-the-end pages, with and without a filter, is the
    number of all matches (such pages read it in the page's own statement)."""
    for params in ({}, {"filter": 'displayName co "a"'}, {"filter": 'title co "engineer"'}):
        everyone = await pair.kept.json("GET", "/Users", count=1000, **params)
        matches = everyone["itemsPerPage"]
        assert 3 < matches == everyone["totalResults"]
        deep = await pair.kept.json("GET", "/Users", startIndex=3, count=2, **params)
        first = await pair.kept.json("GET", "/Users", cursor="", count=2, **params)
        after = await pair.kept.json("GET", "/Users", cursor=first["nextCursor"], count=2, **params)
        past = await pair.kept.json("GET", "/Users", startIndex=matches + 5, count=2, **params)
        assert [matches] * 4 == [page["totalResults"] for page in (deep, first, after, past)]
        assert (2, 2, 2, 0) == tuple(page["itemsPerPage"] for page in (deep, first, after, past))
        assert everyone["Resources"][2:4] == deep["Resources"]
        assert everyone["Resources"][:4] == first["Resources"] + after["Resources"]
