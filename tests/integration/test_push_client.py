"""The push client against the real reference SCIM server (scim2-server as a process)."""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from syncsvc.errors import TargetRejected, TargetUnavailable
from syncsvc.push.client import ScimClient, parse_retry_after
from syncsvc.settings import TargetAuthSettings, TargetSettings
from tests.support.faultproxy import Fault, fault_proxy
from tests.support.scim2server import Scim2Server, scim2_server
from tests.support.tls import session_tls_files

__all__ = ["scim2_server"]

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def target_for(url: str, token: str, **over: Any) -> TargetSettings:
    auth = over.pop("auth", None) or TargetAuthSettings(kind="bearer", token=token)
    return TargetSettings(name="t", url=url, auth=auth, **over)


class Sleeps:
    """Records the waits the client asks for instead of sleeping them (keeps tests fast)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def client(scim2_server: Scim2Server) -> AsyncIterator[ScimClient]:
    c = ScimClient(target_for(scim2_server.url, scim2_server.token), sleep=Sleeps())
    yield c
    await c.aclose()


class TestAgainstScim2Server:
    async def test_reads_service_provider_config(self, client: ScimClient) -> None:
        """The target's announced features are read from /ServiceProviderConfig."""
        features = await client.features()
        assert (True, True, True, 1000) == (features.patch, features.bulk, features.filter,
                                            features.bulk_max_operations)

    async def test_create_find_patch_delete(self, client: ScimClient,
                                            scim2_server: Scim2Server) -> None:
        """A user made through the client is found by filter, patched and deleted."""
        made = await client.create("Users", {"schemas": [USER], "userName": "ann",
                                             "externalId": "x-1", "active": True})
        assert [made["id"]] == [u["id"] for u in await client.find("Users", "externalId", "x-1")]
        await client.patch("Users", made["id"],
                           [{"op": "replace", "path": "active", "value": False}])
        assert False is scim2_server.users()["ann"]["active"]
        await client.delete("Users", made["id"])
        await client.delete("Users", made["id"])  # already gone: fine
        assert None is await client.get("Users", made["id"])

    async def test_duplicate_is_rejected_with_the_targets_detail(self, client: ScimClient) -> None:
        """A 409 carries the target's status, scimType and detail, and is not retried."""
        await client.create("Users", {"schemas": [USER], "userName": "bob"})
        with pytest.raises(TargetRejected) as info:
            await client.create("Users", {"schemas": [USER], "userName": "bob"})
        assert (409, "uniqueness") == (info.value.status, info.value.scim_type)
        assert "already in use" in info.value.detail

    async def test_wrong_token_stops_the_target_not_one_resource(
        self, scim2_server: Scim2Server
    ) -> None:
        """401 is a target-level failure (TargetUnavailable), and the token is never shown."""
        client = ScimClient(target_for(scim2_server.url, "not-the-token"), sleep=Sleeps())
        try:
            with pytest.raises(TargetUnavailable) as info:
                await client.get("Users", "x")
            assert "401" in str(info.value) and "not-the-token" not in str(info.value)
        finally:
            await client.aclose()

    async def test_stopped_target_is_retried_then_unavailable(
        self, scim2_server: Scim2Server
    ) -> None:
        """Connection refused: max_retries retries with growing backoff, then TargetUnavailable."""
        sleeps = Sleeps()
        client = ScimClient(target_for(scim2_server.url, scim2_server.token, max_retries=3),
                            sleep=sleeps, rng=lambda: 1.0)
        scim2_server.stop()
        try:
            with pytest.raises(TargetUnavailable):
                await client.get("Users", "x")
        finally:
            await client.aclose()
        assert [0.5, 1.0, 2.0] == sleeps.waits

    async def test_429_with_retry_after_is_waited_then_succeeds(
        self, scim2_server: Scim2Server
    ) -> None:
        """Two 429s with Retry-After (seconds, then an HTTP date): waited, then the request goes."""
        sleeps = Sleeps()
        async with fault_proxy(scim2_server.url.removesuffix("/v2")) as proxy:
            when = format_datetime(datetime.now(UTC) + timedelta(seconds=7), usegmt=True)
            proxy.inject(Fault(429, {"Retry-After": "3"}), Fault(503, {"Retry-After": when}))
            client = ScimClient(target_for(proxy.url + "/v2", scim2_server.token),
                                sleep=sleeps, rng=lambda: 0.0)
            try:
                made = await client.create("Users", {"schemas": [USER], "userName": "cy"})
            finally:
                await client.aclose()
        assert made["id"] in {u["id"] for u in scim2_server.all("Users")}
        assert 3.0 == sleeps.waits[0] and 5.0 <= sleeps.waits[1] <= 7.0
        assert (2, 1) == (proxy.served_faults, proxy.forwarded)

    async def test_a_long_retry_after_stops_instead_of_waiting(
        self, scim2_server: Scim2Server
    ) -> None:
        """Retry-After beyond a minute is not slept through: TargetUnavailable carries it."""
        async with fault_proxy(scim2_server.url.removesuffix("/v2")) as proxy:
            proxy.inject(Fault(429, {"Retry-After": "600"}))
            client = ScimClient(target_for(proxy.url + "/v2", scim2_server.token), sleep=Sleeps())
            try:
                with pytest.raises(TargetUnavailable) as info:
                    await client.get("Users", "x")
            finally:
                await client.aclose()
        assert 600.0 == info.value.retry_after


class TestOAuth2:
    async def test_token_is_cached_and_refreshed_on_401(self, scim2_server: Scim2Server) -> None:
        """Client credentials: one token for many requests; a 401 gets one fresh token."""
        issued: list[str] = []
        tokens = iter(["stale-token", scim2_server.token, "never"])

        async def token(request: web.Request) -> web.Response:
            creds = base64.b64decode(request.headers["Authorization"].split()[1]).decode()
            form = await request.post()
            assert ("app:s3cret", "client_credentials") == (creds, form["grant_type"])
            issued.append(next(tokens))
            return web.json_response({"access_token": issued[-1], "expires_in": 3600,
                                      "token_type": "Bearer"})

        app = web.Application()
        app.router.add_post("/token", token)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        auth = TargetAuthSettings(kind="oauth2", token_url=f"http://127.0.0.1:{port}/token",
                                  client_id="app", client_secret="s3cret")
        client = ScimClient(target_for(scim2_server.url, "", auth=auth), sleep=Sleeps())
        try:
            for name in ("d1", "d2", "d3"):
                await client.create("Users", {"schemas": [USER], "userName": name})
        finally:
            await client.aclose()
            await runner.cleanup()
        assert ["stale-token", scim2_server.token] == issued
        assert {"d1", "d2", "d3"} == set(scim2_server.users())


class TestBasicAuth:
    async def test_basic_credentials_reach_a_gateway_that_demands_them(
        self, scim2_server: Scim2Server
    ) -> None:
        """HTTP Basic (RFC 7617, UTF-8): a gateway in front of the real server lets through
        only the configured user and password; a wrong password stops the target."""
        seen: list[str] = []

        async def gateway(request: web.Request) -> web.StreamResponse:
            kind, _, value = request.headers.get("Authorization", "").partition(" ")
            creds = base64.b64decode(value).decode() if kind == "Basic" else ""
            seen.append(creds)
            if creds != "svc:p@ss wörd":
                return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="x"'})
            async with aiohttp.ClientSession() as session, session.request(
                request.method, scim2_server.url + request.rel_url.path_qs.removeprefix("/gw"),
                data=await request.read(),
                headers={"Authorization": f"Bearer {scim2_server.token}",
                         "Content-Type": request.headers.get("Content-Type", "application/scim+json")},
            ) as upstream:
                return web.Response(status=upstream.status, body=await upstream.read(),
                                    content_type="application/scim+json")

        app = web.Application()
        app.router.add_route("*", "/gw/{tail:.*}", gateway)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/gw"
        good = ScimClient(target_for(url, "", auth=TargetAuthSettings(
            kind="basic", username="svc", password="p@ss wörd")), sleep=Sleeps())
        bad = ScimClient(target_for(url, "", auth=TargetAuthSettings(
            kind="basic", username="svc", password="wrong")), sleep=Sleeps())
        try:
            await good.create("Users", {"schemas": [USER], "userName": "basic.user"})
            with pytest.raises(TargetUnavailable):
                await bad.create("Users", {"schemas": [USER], "userName": "never"})
        finally:
            await good.aclose()
            await bad.aclose()
            await runner.cleanup()
        assert "basic.user" in set(scim2_server.users())
        assert "never" not in set(scim2_server.users())
        assert {"svc:p@ss wörd", "svc:wrong"} == set(seen)


class TestRetryAfter:
    def test_seconds_and_http_dates(self) -> None:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        assert 120.0 == parse_retry_after("120", now)
        assert 30.0 == parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now)
        assert 0.0 == parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now)
        assert None is parse_retry_after("soon", now)


class TestTls:
    async def test_tls_is_verified_by_default_and_a_ca_file_is_honoured(
        self, scim2_server: Scim2Server
    ) -> None:
        """Behind HTTPS with a private CA: refused without the CA, accepted with ca_file or
        with verification switched off."""
        files = session_tls_files()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(files.cert_file, files.key_file)
        async with fault_proxy(scim2_server.url.removesuffix("/v2"), ssl_context=context) as proxy:
            url = proxy.url + "/v2"
            outcomes = []
            for over in ({}, {"ca_file": str(files.ca_file)}, {"verify_tls": False}):
                client = ScimClient(target_for(url, scim2_server.token, max_retries=0, **over),
                                    sleep=Sleeps())
                try:
                    outcomes.append("ok" if (await client.features()).patch else "?")
                except TargetUnavailable as exc:
                    outcomes.append("refused" if "Certificate" in str(exc) else str(exc))
                finally:
                    await client.aclose()
        assert ["refused", "ok", "ok"] == outcomes
        assert 1 <= proxy.forwarded <= 2
