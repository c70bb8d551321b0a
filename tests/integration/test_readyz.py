"""/readyz tells whether the directory answers, and stays ready when it does not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from syncsvc.admin import AdminState
from syncsvc.http import create_app
from syncsvc.http.app import DIRECTORY_PROBE
from syncsvc.service import open_service
from tests.integration.syncenv import settings_for
from tests.support.slapd import Slapd


@pytest.fixture
async def http(
    slapd: Slapd, tmp_path: Path, aiohttp_client: Any
) -> AsyncIterator[TestClient[Any, Any]]:
    """The app `serve` builds (with its admin state), on SQLite, against the test slapd."""
    settings = settings_for(slapd, f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    async with open_service(settings) as service:
        client = await aiohttp_client(create_app(service.engine, settings,
                                                 admin=AdminState(deps=service.sync)))
        yield client
        await client.close()


async def _readyz_after_check(http: TestClient[Any, Any]) -> tuple[int, Any]:
    """The first /readyz starts the check without waiting for it; the next one reports it."""
    first = await http.get("/readyz")
    assert (200, {"status": "ready", "ldap": "unknown"}) == (first.status, await first.json())
    await http.app[DIRECTORY_PROBE].settle()
    response = await http.get("/readyz")
    return response.status, await response.json()


class TestReadyz:
    async def test_reports_a_reachable_directory(self, http: TestClient[Any, Any]) -> None:
        """slapd up: 200, ready, ldap reachable."""
        assert (200, {"status": "ready", "ldap": "reachable"}) == await _readyz_after_check(http)

    async def test_stays_ready_when_the_directory_is_down(
        self, http: TestClient[Any, Any], slapd: Slapd
    ) -> None:
        """slapd stopped: still 200 (reads come from the store), ldap unreachable, no detail."""
        slapd.stop()
        assert (200, {"status": "ready", "ldap": "unreachable"}) == await _readyz_after_check(http)
