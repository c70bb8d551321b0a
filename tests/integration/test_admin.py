"""The admin API over real HTTP, and `serve`'s lifecycle as a real process."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from syncsvc.admin import AdminState
from syncsvc.auth import create_token
from syncsvc.http import create_app
from syncsvc.http.metrics import Metrics
from syncsvc.service import open_service
from tests.integration.syncenv import settings_for

SALES = "ou=sales,ou=people,dc=example,dc=com"


class Admin:
    def __init__(self, http: TestClient[Any, Any], token: str, reader: str, scraper: str) -> None:
        self.http, self.token, self.reader, self.scraper = http, token, reader, scraper

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200,
                   token: str | None = None) -> Any:
        response = await self.http.request(method, path, json=body,
                                           headers={"Authorization": f"Bearer {token or self.token}"})
        assert expect == response.status, await response.text()
        return await response.json(content_type=None)

    async def wait(self, run_id: str) -> dict[str, Any]:
        for _ in range(200):
            run = await self.call("GET", f"/admin/runs/{run_id}")
            if run["status"] != "running":
                return run
            await asyncio.sleep(0.05)
        raise AssertionError(f"run {run_id} did not end")


@pytest.fixture
async def admin(slapd: Any, store_url: str, aiohttp_client: Any) -> AsyncIterator[Admin]:
    settings = settings_for(slapd, store_url, guard_max_deletions=1)
    async with open_service(settings) as service:
        async with service.engine.begin() as conn:
            now = datetime.now(UTC)
            token = await create_token(conn, name="admin", scopes="admin", now=now)
            reader = await create_token(conn, name="reader", scopes="scim:read", now=now)
            scraper = await create_token(conn, name="prometheus", scopes="metrics", now=now)
        metrics = Metrics()
        deps = dataclasses.replace(service.sync, observers=(metrics.observe_run,))
        state = AdminState(deps=deps)
        client = await aiohttp_client(create_app(service.engine, settings, admin=state,
                                                 metrics=metrics))
        yield Admin(client, token, reader, scraper)
        await asyncio.gather(*state.tasks, return_exceptions=True)
        await client.close()


class TestAdminApi:
    async def test_trigger_a_sync_and_follow_it(self, admin: Admin) -> None:
        """POST /admin/sync answers 202 with the run id; the run then shows its counts."""
        accepted = await admin.call("POST", "/admin/sync", {"mode": "full"}, expect=202)
        run = await admin.wait(accepted["id"])
        assert ("success", 36) == (run["status"], run["counts"]["created"])
        listed = await admin.call("GET", "/admin/runs")
        assert accepted["id"] == listed["runs"][0]["id"]
        status = await admin.call("GET", "/admin/status")
        assert (30, 6) == (status["store"]["users"], status["store"]["groups"])
        assert status["last_success"] is not None

    async def test_dry_run_diff_is_kept(self, admin: Admin) -> None:
        """A dry run writes nothing but its diff is served by its id."""
        accepted = await admin.call("POST", "/admin/sync", {"dry_run": True}, expect=202)
        run = await admin.wait(accepted["id"])
        creates = [d for d in run["diff"] if d["action"] == "create"]
        assert 36 == len(creates)
        status = await admin.call("GET", "/admin/status")
        assert 0 == status["store"]["users"]

    async def test_guarded_run_is_confirmed(self, admin: Admin, slapd: Any) -> None:
        """Over the guard the run is held; confirming it starts a run that removes."""
        await admin.wait((await admin.call("POST", "/admin/sync", {}, expect=202))["id"])
        slapd.delete(f"uid=noah.jones,{SALES}")
        slapd.delete(f"uid=david.kim,{SALES}")
        held = await admin.wait((await admin.call("POST", "/admin/sync", {}, expect=202))["id"])
        assert "guarded" == held["status"]
        confirmed = await admin.call("POST", f"/admin/runs/{held['id']}/confirm", expect=202)
        run = await admin.wait(confirmed["id"])
        assert ("success", 2) == (run["status"], run["counts"]["deactivated"])
        await admin.call("POST", f"/admin/runs/{run['id']}/confirm", expect=409)

    async def test_resync_one_user_escapes_the_filter(self, admin: Admin) -> None:
        """uid values go into the LDAP filter escaped: '*' matches nobody, a real uid one user."""
        await admin.wait((await admin.call("POST", "/admin/sync", {}, expect=202))["id"])
        evil = await admin.call("POST", "/admin/sync/user", {"uid": "*)(uid=*"}, expect=202)
        run = await admin.wait(evil["id"])
        assert ("failed", 0) == (run["status"], run["counts"]["read"])
        good = await admin.call("POST", "/admin/sync/user", {"uid": "ada.lovelace"}, expect=202)
        run = await admin.wait(good["id"])
        assert ("success", 1) == (run["status"], run["counts"]["read"])

    async def test_scim_token_is_forbidden_here(self, admin: Admin) -> None:
        """A scim:read token gets 403 on the admin API; no token gets 401."""
        await admin.call("GET", "/admin/status", token=admin.reader, expect=403)
        response = await admin.http.get("/admin/status")
        assert 401 == response.status

    async def test_bad_input_is_400(self, admin: Admin) -> None:
        """An unknown mode or a non-boolean flag is refused with a clear detail."""
        body = await admin.call("POST", "/admin/sync", {"mode": "sideways"}, expect=400)
        assert "mode" in body["detail"]
        await admin.call("POST", "/admin/sync/user", {"uid": "a", "dn": "b"}, expect=400)


class TestMetrics:
    async def test_metrics_count_runs_requests_and_the_store(self, admin: Admin) -> None:
        """After a sync: runs by mode/status, entries, requests by route template, store size."""
        await admin.wait((await admin.call("POST", "/admin/sync", {}, expect=202))["id"])
        response = await admin.http.get("/metrics",
                                        headers={"Authorization": f"Bearer {admin.scraper}"})
        assert 200 == response.status
        text = await response.text()
        assert 'syncsvc_sync_runs_total{mode="full",status="success"} 1.0' in text
        assert 'syncsvc_sync_entries_total{outcome="created"} 36.0' in text
        assert 'syncsvc_store_resources{kind="users"} 30.0' in text
        assert 'route="/admin/runs/{id}"' in text  # a template, never a raw id
        assert "syncsvc_sync_last_success_timestamp_seconds" in text

    async def test_metrics_need_the_metrics_scope(self, admin: Admin) -> None:
        """No token: 401; a scim:read token: 403."""
        assert 401 == (await admin.http.get("/metrics")).status
        forbidden = await admin.http.get("/metrics", headers={"Authorization": f"Bearer {admin.reader}"})
        assert 403 == forbidden.status


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestServeLifecycle:
    def test_sigterm_stops_serve_cleanly(self, tmp_path: Path) -> None:
        """serve on the demo answers /readyz; SIGTERM makes it exit 0 after a clean shutdown."""
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCSVC_")}
        env.update(SYNCSVC_HTTP__PORT=str(port), SYNCSVC_LOG__FORMAT="json")
        proc = subprocess.Popen([sys.executable, "-m", "syncsvc", "serve"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                        sock.sendall(b"GET /readyz HTTP/1.0\r\n\r\n")
                        if b"200" in sock.recv(100):
                            break
                except OSError:
                    time.sleep(0.2)
            else:
                raise AssertionError("serve did not become ready")
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert 0 == proc.returncode, err
        assert '"shutdown.done"' in err
