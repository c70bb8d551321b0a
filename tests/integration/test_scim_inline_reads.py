"""SQLite: a User by id or by ``userName eq`` is read on the event loop's thread; when SQLite
cannot answer there at once, the read goes through aiosqlite and the client notices nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from syncsvc.scim.state import SCIM
from syncsvc.settings import ScimSettings
from tests.integration.scimenv import Scim, serving

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture
async def uncached(tmp_path: Path, aiohttp_client: Any) -> Any:
    """A SQLite store (the only one with inline reads), no response cache in the way."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    async with serving(url, aiohttp_client, ScimSettings(response_cache_bytes=0)) as scim:
        yield scim


class Busy:
    """Stands in for the loop reader: SQLite answers "database is locked" every time."""

    def __init__(self) -> None:
        self.calls = 0

    def all(self, *_args: Any) -> Any:
        self.calls += 1
        raise OperationalError("SELECT", {}, Exception("database is locked"))


async def test_reads_by_id_and_user_name_go_inline(uncached: Scim) -> None:
    ada = await uncached.json("POST", "/Users", {"schemas": [USER], "userName": "Ada"}, expect=201)

    by_id = await uncached.json("GET", f"/Users/{ada['id']}")
    by_name = await uncached.json("GET", "/Users", filter='userName eq "ADA"')

    assert ("Ada", ["Ada"], 1) == (by_id["userName"], [r["userName"] for r in by_name["Resources"]],
                                   by_name["totalResults"])


async def test_a_busy_database_is_read_the_usual_way(uncached: Scim) -> None:
    ada = await uncached.json("POST", "/Users", {"schemas": [USER], "userName": "Ada"}, expect=201)
    busy = Busy()
    uncached.http.app[SCIM].service._loop_reader = busy  # type: ignore[assignment]

    by_id = await uncached.json("GET", f"/Users/{ada['id']}")
    by_name = await uncached.json("GET", "/Users", filter='userName eq "ada"')
    missing = await uncached.json("GET", "/Users/00000000-0000-0000-0000-000000000000", expect=404)

    assert (ada["id"], [ada["id"]]) == (by_id["id"], [r["id"] for r in by_name["Resources"]])
    assert "not found" in missing["detail"]
    # By id: the key, then (nothing kept yet) the whole row; by name: the key only (the GET
    # kept its rendering); the missing id: its key. Each tried inline first.
    assert 4 == busy.calls
