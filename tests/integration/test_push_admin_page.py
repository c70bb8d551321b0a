"""The admin page's push targets table in a real browser (Debian's Chromium under playwright),
against the real app on a loopback port with the reference SCIM server as the target."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from syncsvc.admin import AdminState
from syncsvc.auth import create_token
from syncsvc.http import create_app
from syncsvc.push import PUSH_RUNNER, state
from syncsvc.push.runner import PushRunner
from syncsvc.service import open_service
from syncsvc.settings import (
    DEMO_LDIF,
    LdapSettings,
    Settings,
    StoreSettings,
    TargetAuthSettings,
    TargetSettings,
)
from tests.integration.test_admin_page import _open_page, _real_errors, browser  # noqa: F401
from tests.support.scim2server import Scim2Server, scim2_server  # noqa: F401 (fixture)

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


async def test_targets_table_shows_quarantine_resume_and_push(
    tmp_path: Path, browser: Any, scim2_server: Scim2Server  # noqa: F811
) -> None:
    """A quarantined target shows as such with a Resume button; resuming it offers Push now,
    which drains the queue into the real target; a disabled target is listed without actions."""
    settings = Settings(
        ldap=LdapSettings(url=(f"ldif://{DEMO_LDIF}",)),
        store=StoreSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"),
        targets=(TargetSettings(name="peer", url=scim2_server.url, quarantine_after=2,
                                auth=TargetAuthSettings(token=scim2_server.token)),
                 TargetSettings(name="off", url="http://127.0.0.1:9/scim/v2", enabled=False,
                                auth=TargetAuthSettings(kind="none"))))
    async with open_service(settings) as service:
        now = datetime.now(UTC)
        async with service.engine.begin() as conn:
            token = await create_token(conn, name="admin", scopes="admin", now=now)
            await state.ensure_targets(conn, ["peer", "off"])
            for _ in range(2):
                await state.record_failure(conn, "peer", "503 Service Unavailable", now, 2)
        runner = PushRunner(service.engine, settings)
        app = create_app(service.engine, settings, admin=AdminState(deps=service.sync))
        app[PUSH_RUNNER] = runner
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            async with ClientSession() as http:
                created = await http.post(server.make_url("/scim/v2/Users"),
                                          json={"schemas": [USER], "userName": "ann"},
                                          headers={"Authorization": f"Bearer {token}"})
                assert 201 == created.status
            site = dataclasses.make_dataclass("S", ["url"])(str(server.make_url("/admin/")))
            page, errors = await _open_page(browser, site)
            await page.fill("#token", token)
            await page.click("#sign-in-button")
            peer = page.locator("#targets-table tr", has_text="peer")
            await peer.locator("text=quarantined").wait_for()
            off = page.locator("#targets-table tr", has_text="off")
            assert "disabled" in await off.inner_text()
            assert 0 == await off.locator("button").count()
            assert 0 == await peer.locator("text=Push now").count()

            await peer.locator("button", has_text="Resume").click()
            await page.locator("#targets-message", has_text="peer resumed").wait_for()
            await peer.locator("button", has_text="Push now").click()
            await page.locator("#targets-message", has_text="pushed 1").wait_for()
            await peer.locator("td", has_text="done").wait_for()

            assert ["ann"] == [u["userName"] for u in scim2_server.all("Users")]
            assert [] == _real_errors(errors)
        finally:
            await server.close()
            await runner.worker("peer").aclose()

