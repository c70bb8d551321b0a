"""A live SCIM server over real sockets, on a real store, with a real bearer token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from syncsvc.auth import create_token
from syncsvc.http import create_app
from syncsvc.settings import ScimSettings, Settings, StoreSettings
from syncsvc.store import create_engine, upgrade
from tests.integration.syncenv import settings_for, sync_once

SCIM_JSON = "application/scim+json"


@dataclass
class Scim:
    """A client for the server under test; every call carries the bearer token."""

    http: TestClient[Any, Any]
    token: str

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": SCIM_JSON, **(extra or {})}

    async def request(self, method: str, path: str, body: Any = None,
                      headers: dict[str, str] | None = None, **params: Any) -> ClientResponse:
        return await self.http.request(method, f"/scim/v2{path}", json=body,
                                       headers=self._headers(headers), params=params or None)

    async def json(self, method: str, path: str, body: Any = None, expect: int = 200,
                   headers: dict[str, str] | None = None, **params: Any) -> Any:
        response = await self.request(method, path, body, headers, **params)
        text = await response.text()
        assert expect == response.status, text
        return await response.json(content_type=None) if text else None


@asynccontextmanager
async def serving(
    store_url: str, aiohttp_client: Any, scim: ScimSettings | None = None
) -> AsyncIterator[Scim]:
    settings = Settings(store=StoreSettings(url=store_url), scim=scim or ScimSettings())
    engine = create_engine(settings.store)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            token = await create_token(conn, name="tests", scopes="scim:read,scim:write",
                                       now=datetime.now(UTC))
        client = await aiohttp_client(create_app(engine, settings))
        yield Scim(client, token)
        await client.close()
    finally:
        await engine.dispose()


@pytest.fixture
async def scim(store_url: str, aiohttp_client: Any) -> AsyncIterator[Scim]:
    """An empty store behind a live server."""
    async with serving(store_url, aiohttp_client) as client:
        yield client


@pytest.fixture
async def synced(slapd: Any, store_url: str, aiohttp_client: Any) -> AsyncIterator[Scim]:
    """The seed directory synced into the store, behind a live server."""
    await sync_once(settings_for(slapd, store_url))
    async with serving(store_url, aiohttp_client) as client:
        yield client
