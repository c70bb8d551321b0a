"""The admin page at /admin/: public page and assets, strict headers, and a real browser run.

The browser is Debian's Chromium (``/usr/bin/chromium``, installed by ``scripts/test``) driven
by playwright's Python client; playwright's own browser download is never used. The server is
the real app (``create_app`` with the admin state, as ``serve`` builds it) on a real port.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer

from syncsvc.admin import AdminState
from syncsvc.auth import create_token
from syncsvc.http import create_app
from syncsvc.http.metrics import Metrics
from syncsvc.service import open_service
from tests.integration.syncenv import settings_for
from tests.support.slapd import Slapd

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
TIMEOUT_MS = 20_000

@dataclasses.dataclass
class Site:
    server: TestServer
    token: str
    reader: str
    state: AdminState

    @property
    def url(self) -> str:
        return str(self.server.make_url("/admin/"))


@asynccontextmanager
async def serve_site(slapd: Slapd, store_url: str) -> AsyncIterator[Site]:
    """The whole app (admin state included, as ``serve`` builds it) on a real loopback port."""
    settings = settings_for(slapd, store_url)
    async with open_service(settings) as service:
        async with service.engine.begin() as conn:
            now = datetime.now(UTC)
            token = await create_token(conn, name="admin", scopes="admin", now=now)
            reader = await create_token(conn, name="reader", scopes="scim:read", now=now)
        metrics = Metrics()
        deps = dataclasses.replace(service.sync, observers=(metrics.observe_run,))
        state = AdminState(deps=deps)
        app = create_app(service.engine, settings, admin=state, metrics=metrics)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            yield Site(server, token, reader, state)
        finally:
            await asyncio.gather(*state.tasks, return_exceptions=True)
            await server.close()


@pytest.fixture
def make_site(slapd: Slapd, store_url: str) -> Callable[..., Any]:
    """``async with make_site() as site``: see :func:`serve_site`."""
    return functools.partial(serve_site, slapd, store_url)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's headless Chromium under playwright; missing it is a failure (CI must run this)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test (it installs it) or "
                    "apt-get install chromium chromium-driver", pytrace=False)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def _open_page(browser: Any, site: Site) -> tuple[Any, list[str]]:
    """A fresh page on the admin page; console errors and CSP violations are collected."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(site.url)
    return page, errors


_EXPECTED_LOAD_FAILURE = re.compile(r"^Failed to load resource: .* status of (401|403|404|500) ")


def _real_errors(errors: list[str]) -> list[str]:
    """Console errors but the refused sign-ins (401, 403) and the absent or failing quality
    report (404, 500), which Chromium logs as failed loads: script errors and CSP violations
    stay."""
    return [e for e in errors if not _EXPECTED_LOAD_FAILURE.match(e)]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
class TestPageIsServed:
    async def test_page_and_assets_are_public_with_strict_headers(self, make_site: Any) -> None:
        """GET /admin/ and its two assets need no token; they carry CSP and friends."""
        async with make_site() as site, TestClient(site.server) as http:
            for path, kind in [("/admin/", "text/html"), ("/admin/static/admin.js", "text/javascript"),
                               ("/admin/static/admin.css", "text/css")]:
                response = await http.get(path)
                assert (200, kind) == (response.status, response.content_type), path
                csp = response.headers["Content-Security-Policy"]
                assert csp.startswith("default-src 'self';")
                assert "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
                assert "nosniff" == response.headers["X-Content-Type-Options"]
                assert "DENY" == response.headers["X-Frame-Options"]
                assert "no-referrer" == response.headers["Referrer-Policy"]
            html = await (await http.get("/admin/")).text()
            # No inline script or style, nothing from another origin.
            assert not re.search(r"<script>|<style|\sstyle=|\son[a-z]+=", html)
            assert not re.search(r"(src|href)=\"(https?:)?//", html)

    async def test_only_the_page_is_public(self, make_site: Any) -> None:
        """The API next to the page still needs admin; unknown assets are 404; POST is not public."""
        async with make_site() as site, TestClient(site.server) as http:
            assert 401 == (await http.get("/admin/status")).status
            assert 401 == (await http.get("/admin/runs")).status
            assert 401 == (await http.post("/admin/", json={})).status
            assert 401 == (await http.post("/admin/sync", json={})).status
            assert 401 == (await http.get("/admin")).status
            assert 404 == (await http.get("/admin/static/index.html")).status
            assert 404 == (await http.get("/admin/static/page.py")).status
            reader = {"Authorization": f"Bearer {site.reader}"}
            assert 403 == (await http.get("/admin/status", headers=reader)).status

    async def test_dot_segments_do_not_reach_the_api(self, make_site: Any) -> None:
        """Raw request lines with ../ under /admin/static/ never reach an admin handler without a
        token."""
        async with make_site() as site:
            host, port = site.server.host, site.server.port
            assert port is not None
            for target in ["/admin/static/../status", "/admin/static/%2e%2e/status",
                           "/admin/static/..%2fstatus", "/admin/static/../runs?limit=1"]:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                             .encode())
                await writer.drain()
                raw = await reader.read()
                writer.close()
                await writer.wait_closed()
                status = int(raw.split(b" ", 2)[1])
                assert status in (401, 404), (target, raw[:300])
                assert b'"store"' not in raw and b'"runs"' not in raw, target


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
class TestInBrowser:
    async def test_sign_in_resync_and_see_the_run(
        self, make_site: Any, browser: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A wrong token is refused; the admin token signs in; a full resync appears as a new run
        that ends in success, with its counts; a dry run appears too. Screenshot saved."""
        async with make_site() as site:
            page, errors = await _open_page(browser, site)
            assert await page.locator("#sign-in").is_visible()
            assert not await page.locator("#dashboard").is_visible()

            await page.fill("#token", "scs_not_a_real_token_at_all")
            await page.click("#sign-in-button")
            await page.locator("#sign-in-error").wait_for(state="visible")
            assert "refused" in await page.inner_text("#sign-in-error")

            await page.fill("#token", site.reader)
            await page.click("#sign-in-button")
            # (locators, not wait_for_function: the page's CSP forbids the eval that needs)
            await page.locator("#sign-in-error", has_text="admin scope").wait_for()

            await page.fill("#token", site.token)
            await page.click("#sign-in-button")
            await page.locator("#dashboard").wait_for(state="visible")
            assert site.token == await page.evaluate(
                "sessionStorage.getItem('syncsvc.adminToken')")
            assert await page.evaluate("localStorage.length") == 0
            await page.locator("#runs-empty").wait_for(state="visible")
            assert "0 (0 active)" in await page.inner_text("#status")

            await page.click("#run-full")
            first = page.locator("#runs tbody tr").first
            await first.locator(".status-success").wait_for()
            cells = await first.locator("td").all_inner_texts()
            # Started, Mode, Trigger, Status, Read, Created (30 users + 6 groups), Updated, ...
            assert ["full", "api", "success"] == cells[1:4]
            assert ("36", "0") == (cells[5], cells[6])
            await page.locator("#status", has_text="30 (30 active)").wait_for()
            assert "success" in await page.inner_text("#action-message")
            # The quality section follows GET /admin/quality: shown when it answers 200.
            async with ClientSession() as http:  # (a TestClient would close the server)
                quality = await http.get(site.server.make_url("/admin/quality"),
                                         headers={"Authorization": f"Bearer {site.token}"})
            if quality.status == 200:
                await page.locator("#quality", has_text="Completeness by field").wait_for()
            else:
                assert not await page.locator("#quality").is_visible()

            await page.click("#run-dry")
            await page.locator("#runs tbody tr", has_text="dry run").locator(
                ".status-success").wait_for()
            assert "0 changes" in await page.inner_text("#action-message")
            await page.locator("#runs tbody tr", has_text="dry run").click()
            await page.locator("#run-detail h3").wait_for()

            shot = tmp_path / "admin-page.png"
            await page.screenshot(path=str(shot), full_page=True)
            with capsys.disabled():  # shown in the run's output even when it passes, without -s
                print(f"\nadmin page screenshot: {shot}")
            assert shot.stat().st_size > 10_000

            await page.click("#sign-out")
            await page.locator("#sign-in").wait_for(state="visible")
            assert await page.evaluate("sessionStorage.getItem('syncsvc.adminToken')") is None
            assert [] == _real_errors(errors)

    @pytest.mark.parametrize(("status", "shown"), [(200, True), (404, False), (500, False)])
    async def test_quality_section_follows_the_endpoint(
        self, make_site: Any, browser: Any, status: int, shown: bool
    ) -> None:
        """GET /admin/quality answering 200 shows the section (a report of another shape is
        rendered generically); 404 (not deployed) or an error hides it, and the page works."""
        body = {"score": 87.5, "missing": [{"attribute": "mail", "users": 3}]}

        async def answer(route: Any) -> None:
            await route.fulfill(status=status, content_type="application/json",
                                body=json.dumps(body if status == 200 else {"detail": "no"}))

        async with make_site() as site:
            page, errors = await _open_page(browser, site)
            await page.route("**/admin/quality", answer)
            await page.fill("#token", site.token)
            await page.click("#sign-in-button")
            await page.locator("#status", has_text="Users").wait_for()
            await page.locator("#runs-empty").wait_for(state="visible")
            if shown:
                await page.locator("#quality", has_text="87.5").wait_for()
                assert "mail" in await page.inner_text("#quality")
            else:
                assert not await page.locator("#quality").is_visible()
            assert [] == _real_errors(errors)
