"""The push targets in the admin API (/admin/targets...) and /metrics, over real HTTP, with the
reference SCIM server (``scim2-server``, a real process) as the target."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.auth import create_token
from syncsvc.http import create_app
from syncsvc.push import PUSH_RUNNER, state
from syncsvc.push.runner import PushRunner
from syncsvc.settings import Settings, StoreSettings, TargetAuthSettings, TargetSettings
from tests.support.scim2server import Scim2Server, scim2_server  # noqa: F401 (fixture)

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Api:
    def __init__(self, http: TestClient[Any, Any], tokens: dict[str, str]) -> None:
        self.http, self.tokens = http, tokens

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200,
                   who: str = "admin") -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        response = await self.http.request(method, path, json=body, headers=headers)
        text = await response.text()
        assert expect == response.status, text
        return await response.json(content_type=None) if path != "/metrics" else text


Make = Callable[..., Awaitable[Api]]


@pytest.fixture
def peer() -> tuple[str, str]:
    """The "peer" target's URL and token: nothing listens there (TestActions starts a real one)."""
    return "http://127.0.0.1:9/scim/v2", "not-a-real-token-but-secret"


@pytest.fixture
def settings(store_url: str, peer: tuple[str, str]) -> Settings:
    return Settings(store=StoreSettings(url=store_url), targets=(
        TargetSettings(name="peer", url=peer[0], auth=TargetAuthSettings(token=peer[1]),
                       quarantine_after=2),
        TargetSettings(name="off", url="http://127.0.0.1:9/scim/v2", enabled=False,
                       auth=TargetAuthSettings(kind="none")),
    ))


@pytest.fixture
async def make_api(
    engine: AsyncEngine, settings: Settings, aiohttp_client: Any
) -> AsyncIterator[Make]:
    """An app on the store with both targets; ``runner=True`` gives it a PushRunner, as serve
    does (its loop is not started: only push/reconcile on demand)."""
    async with engine.begin() as conn:
        tokens = {
            "admin": await create_token(conn, name="admin", scopes="admin", now=T0),
            "reader": await create_token(conn, name="reader", scopes="scim:read", now=T0),
            "metrics": await create_token(conn, name="prom", scopes="metrics", now=T0),
            "": "",
        }
    runners: list[PushRunner] = []

    async def make(*, runner: bool = False) -> Api:
        app = create_app(engine, settings)
        if runner:
            runners.append(PushRunner(engine, settings))
            app[PUSH_RUNNER] = runners[-1]
        return Api(await aiohttp_client(app), tokens)

    yield make
    for r in runners:
        for name in r.names:
            await r.worker(name).aclose()


class TestStatus:
    async def test_only_admin_tokens_see_targets(self, make_api: Make) -> None:
        api = await make_api()
        await api.call("GET", "/admin/targets", expect=401, who="")
        await api.call("GET", "/admin/targets", expect=403, who="reader")
        await api.call("POST", "/admin/targets/peer/resume", expect=403, who="reader")

    async def test_every_configured_target_is_listed_with_its_queue(self, make_api: Make) -> None:
        """Before any push, every change waits in each target's queue."""
        api = await make_api()
        for name in ("ann", "bob"):
            await api.http.post("/scim/v2/Users", json={"schemas": [USER], "userName": name},
                                headers={"Authorization": f"Bearer {api.tokens['admin']}"})

        body = await api.call("GET", "/admin/targets")

        assert ["peer", "off"] == [t["name"] for t in body["targets"]]
        peer, off = body["targets"]
        assert (2, False, False, None, True) == (
            peer["queue_depth"], peer["quarantined"], peer["initial_done"], peer["last_success"],
            peer["enabled"])
        assert (False, 2) == (off["enabled"], off["queue_depth"])
        assert body["running"] is False

    async def test_quarantine_is_shown_in_status_and_metrics_until_resumed(
        self, make_api: Make, engine: AsyncEngine
    ) -> None:
        api = await make_api()
        async with engine.begin() as conn:
            await state.ensure_targets(conn, ["peer", "off"])
            for _ in range(2):
                await state.record_failure(conn, "peer", "503 from the target", T0, 2)

        detail = await api.call("GET", "/admin/targets/peer")
        metrics = await api.call("GET", "/metrics", who="metrics")
        resumed = await api.call("POST", "/admin/targets/peer/resume")
        after = await api.call("GET", "/metrics", who="metrics")

        assert (True, "2 consecutive failures; last: 503 from the target", 2) == (
            detail["quarantined"], detail["quarantine_reason"], detail["consecutive_failures"])
        assert 'syncsvc_push_quarantined{target="peer"} 1.0' in metrics
        assert 'syncsvc_push_queue_depth{target="peer"} 0.0' in metrics
        assert (False, None, 0) == (resumed["quarantined"], resumed["quarantine_reason"],
                                    resumed["consecutive_failures"])
        assert 'syncsvc_push_quarantined{target="peer"} 0.0' in after

    async def test_detail_shows_settings_but_never_a_secret(
        self, make_api: Make, settings: Settings
    ) -> None:
        api = await make_api()
        response = await api.http.get(
            "/admin/targets/peer", headers={"Authorization": f"Bearer {api.tokens['admin']}"})
        text = await response.text()
        body = await response.json()

        assert {"kind": "bearer"} == body["settings"]["auth"]
        assert ("put", 2) == (body["settings"]["update_method"],
                              body["settings"]["quarantine_after"])
        assert settings.targets[0].auth.token not in text
        assert [] == body["failures"]

    async def test_unknown_targets_and_a_missing_runner_are_refused(self, make_api: Make) -> None:
        """An unknown name is 404; push and reconcile need serve's runner: 409 without it."""
        api = await make_api()
        await api.call("GET", "/admin/targets/nope", expect=404)
        await api.call("POST", "/admin/targets/nope/resume", expect=404)
        await api.call("POST", "/admin/targets/peer/push", expect=409)
        await api.call("POST", "/admin/targets/peer/reconcile?dry_run=true", expect=409)
        await api.call("POST", "/admin/targets/peer/push?allow_removals=maybe", expect=400)


class TestActions:
    @pytest.fixture
    def peer(self, scim2_server: Scim2Server) -> tuple[str, str]:  # noqa: F811
        return scim2_server.url, scim2_server.token

    async def test_push_now_and_reconcile_reach_the_target(
        self, make_api: Make, scim2_server: Scim2Server  # noqa: F811
    ) -> None:
        """POST push drains the queue into the real target; a dry-run reconcile then finds
        nothing to fix; a disabled target is not pushed (404)."""
        api = await make_api(runner=True)
        for name in ("ann", "bob"):
            await api.http.post("/scim/v2/Users", json={"schemas": [USER], "userName": name},
                                headers={"Authorization": f"Bearer {api.tokens['admin']}"})

        report = await api.call("POST", "/admin/targets/peer/push")
        status = await api.call("GET", "/admin/targets/peer")
        diff = await api.call("POST", "/admin/targets/peer/reconcile?dry_run=true")
        metrics = await api.call("GET", "/metrics", who="metrics")

        assert ("peer", 2, 0, None) == (report["target"], report["pushed"], report["failed"],
                                        report["error"])
        assert {"ann", "bob"} == {u["userName"] for u in scim2_server.all("Users")}
        assert (0, True) == (status["queue_depth"], status["initial_done"])
        assert status["last_success"] is not None
        assert ([], [], [], True) == (diff["create"], diff["update"], diff["remove"],
                                      diff["dry_run"])
        assert 'syncsvc_push_queue_depth{target="peer"} 0.0' in metrics
        await api.call("POST", "/admin/targets/off/push", expect=404)
