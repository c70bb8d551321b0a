"""Every route of the real app needs a token of the right scope, except the few public ones.

The app is built the way ``syncsvc serve`` builds it (SCIM, profiles, admin API and page,
/metrics, probes) and served on a real port. The walk covers every route in ``app.router``,
every method, path parameters filled in. The scope each route needs is written down here, in
:data:`EXPECTED_SCOPE`, keyed by (method, route pattern): a route added without an entry fails
the walk, so adding a route means deciding, in review, who may call it.

Right-scope requests are built to change nothing (an unknown id, a body that is refused), so
the walk is safe to run against the admin API too.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from syncsvc.admin import AdminState
from syncsvc.auth import VALID_SCOPES, create_token, grants
from syncsvc.http import create_app
from syncsvc.http.metrics import Metrics
from syncsvc.service import open_service
from syncsvc.settings import StoreSettings, demo_settings

ERROR_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:Error"
PUBLIC: Final = None
READ, WRITE, METRICS, ADMIN = "scim:read", "scim:write", "metrics", "admin"

_SCIM: Final = "/scim/v2"
_KINDS: Final = f"{_SCIM}/{{endpoint}}"


def _get(pattern: str, scope: str | None) -> dict[tuple[str, str], str | None]:
    """GET routes answer HEAD too (aiohttp adds it), with the same scope."""
    return {("GET", pattern): scope, ("HEAD", pattern): scope}


EXPECTED_SCOPE: Final[dict[tuple[str, str], str | None]] = {
    # Probes: load balancers and kubelets carry no token.
    **_get("/healthz", PUBLIC),
    **_get("/readyz", PUBLIC),
    **_get("/metrics", METRICS),
    # SCIM: reading needs scim:read, writing scim:write (.search is a read, RFC 7644 §3.4.3).
    **_get(f"{_SCIM}/ServiceProviderConfig", READ),
    **_get(f"{_SCIM}/ResourceTypes", READ),
    **_get(f"{_SCIM}/ResourceTypes/{{name}}", READ),
    **_get(f"{_SCIM}/Schemas", READ),
    **_get(f"{_SCIM}/Schemas/{{urn}}", READ),
    ("POST", f"{_SCIM}/.search"): READ,
    ("POST", f"{_SCIM}/Bulk"): WRITE,
    ("POST", f"{_KINDS}/.search"): READ,
    **_get(_KINDS, READ),
    ("POST", _KINDS): WRITE,
    **_get(f"{_KINDS}/{{id}}", READ),
    ("PUT", f"{_KINDS}/{{id}}"): WRITE,
    ("PATCH", f"{_KINDS}/{{id}}"): WRITE,
    ("DELETE", f"{_KINDS}/{{id}}"): WRITE,
    # Profile outputs of any user: read-only views, scim:read.
    **_get("/profiles/{id}/vcard", READ),
    **_get("/profiles/{id}/qr.svg", READ),
    **_get("/profiles/{id}/qr.png", READ),
    **_get("/profiles/{id}/signature.html", READ),
    **_get("/profiles/{id}/signature.txt", READ),
    **_get("/profiles/{id}/photo", READ),
    # Public profile pages: only users who opted in; the handler checks the opt-in.
    **_get("/p/{slug}", PUBLIC),
    **_get("/p/{slug}/vcard", PUBLIC),
    **_get("/p/{slug}/photo", PUBLIC),
    # Admin API: admin only. The page and its two assets are a static sign-in shell.
    ("POST", "/admin/sync"): ADMIN,
    ("POST", "/admin/sync/user"): ADMIN,
    **_get("/admin/runs", ADMIN),
    **_get("/admin/runs/{id}", ADMIN),
    ("POST", "/admin/runs/{id}/confirm"): ADMIN,
    **_get("/admin/status", ADMIN),
    **_get("/admin/quality", ADMIN),
    **_get("/admin/targets", ADMIN),
    **_get("/admin/targets/{name}", ADMIN),
    ("POST", "/admin/targets/{name}/push"): ADMIN,
    ("POST", "/admin/targets/{name}/reconcile"): ADMIN,
    ("POST", "/admin/targets/{name}/resume"): ADMIN,
    **_get("/admin/", PUBLIC),
    **_get("/admin/static/{name}", PUBLIC),
}
"""(method, route pattern) -> the scope a request needs; None: public."""

# Values for path parameters: unknown ids, so a right-scope request changes nothing.
_PARAMS: Final[dict[str, list[str]]] = {
    "endpoint": ["Users", "Groups"],
    "id": [str(uuid.UUID(int=7))],
    "name": ["User"],
    "urn": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "slug": ["nobody-here"],
}
_ASSET_NAMES: Final = ["admin.js", "admin.css"]
# Refused by every write handler (no userName, unknown mode, no uid/dn, no Operations).
_REFUSED_BODY: Final = {"mode": "none"}


@dataclasses.dataclass(frozen=True)
class Call:
    method: str
    pattern: str
    path: str


def _calls(app: web.Application) -> list[Call]:
    """One call per (route, parameter combination), every method of the router."""
    calls: list[Call] = []
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None, route
        pattern = resource.canonical
        info = resource.get_info()
        names = sorted(set(_field_names(pattern)))
        combos: list[dict[str, str]] = [{}]
        for name in names:
            values = (_ASSET_NAMES if pattern.startswith("/admin/static/")
                      else _PARAMS.get(name, ["no-such-thing"]))
            combos = [{**c, name: v} for c in combos for v in values]
        for combo in combos:
            path = str(resource.url_for(**combo)) if names else info.get("path", pattern)
            calls.append(Call(route.method, pattern, path))
    return calls


def _field_names(pattern: str) -> list[str]:
    parts = pattern.split("{")[1:]
    return [part.split("}")[0].split(":")[0] for part in parts]


@pytest.fixture
async def site(store_url: str, aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """The whole app as serve builds it (demo LDIF source), one token per scope."""
    settings = dataclasses.replace(demo_settings(tmp_path), store=StoreSettings(url=store_url))
    async with open_service(settings) as service:
        tokens: dict[str, str] = {}
        async with service.engine.begin() as conn:
            for scope in VALID_SCOPES:
                tokens[scope] = await create_token(conn, name=f"walk-{scope.replace(':', '-')}",
                                                   scopes=scope, now=datetime.now(UTC))
        app = create_app(service.engine, settings, admin=AdminState(deps=service.sync),
                         metrics=Metrics())
        client: TestClient[Any, Any] = await aiohttp_client(app)
        yield client, app, tokens
        await client.close()


async def _send(client: TestClient[Any, Any], call: Call, token: str | None) -> ClientResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = _REFUSED_BODY if call.method in ("POST", "PUT", "PATCH") else None
    response = await client.request(call.method, call.path, json=body, headers=headers)
    await response.read()
    return response


async def _problems_without_token(client: TestClient[Any, Any], call: Call) -> list[str]:
    response = await _send(client, call, None)
    where = f"{call.method} {call.path}"
    if response.status != 401:
        return [f"{where}: {response.status} without a token, expected 401"]
    problems = []
    if not response.headers.get("WWW-Authenticate", "").startswith("Bearer "):
        problems.append(f"{where}: 401 without a Bearer WWW-Authenticate challenge")
    if call.method != "HEAD":
        body = await response.json(content_type=None)
        if ERROR_SCHEMA not in body.get("schemas", ()) or body.get("status") != "401":
            problems.append(f"{where}: 401 body is not an RFC 7644 error: {body}")
    return problems


class TestRouteTable:
    async def test_every_route_has_a_decided_scope(self, site: Any) -> None:
        """A route missing from EXPECTED_SCOPE fails here: decide who may call it first."""
        _client, app, _tokens = site
        routes = {(c.method, c.pattern) for c in _calls(app)}

        assert (set(), set()) == (routes - EXPECTED_SCOPE.keys(), EXPECTED_SCOPE.keys() - routes)

    async def test_every_route_enforces_its_scope(self, site: Any) -> None:
        """No token: 401 + challenge + SCIM error; each wrong scope: 403; the right one passes."""
        client, app, tokens = site
        problems: list[str] = []
        walked = 0
        for call in _calls(app):
            scope = EXPECTED_SCOPE.get((call.method, call.pattern), "<missing>")
            walked += 1
            where = f"{call.method} {call.path}"
            if scope is PUBLIC:
                status = (await _send(client, call, None)).status
                if status in (401, 403):
                    problems.append(f"{where}: public route answered {status}")
                continue
            problems += await _problems_without_token(client, call)
            garbage = (await _send(client, call, "scs_" + "x" * 43)).status
            if garbage != 401:
                problems.append(f"{where}: unknown token answered {garbage}, expected 401")
            for held, token in tokens.items():
                status = (await _send(client, call, token)).status
                allowed = grants([held], scope)
                if allowed and status in (401, 403):
                    problems.append(f"{where}: {held} token answered {status}, needs only {scope}")
                if not allowed and status != 403:
                    problems.append(f"{where}: {held} token answered {status}, expected 403")

        assert [] == problems
        assert walked >= len(EXPECTED_SCOPE)

    async def test_unknown_paths_need_a_token_too(self, site: Any) -> None:
        """Without a token an unknown path is 401, not 404: the route table does not leak."""
        client, _app, _tokens = site
        for path in ("/scim/v2/Nope", "/admin/secret", "/profiles", "/anything"):
            response = await client.get(path)
            assert 401 == response.status, path


PROFILE: Final = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"
_DOCUMENTS: Final = ("text/html", "image/svg+xml")


def _header_problems(where: str, response: ClientResponse) -> list[str]:
    """What is missing from a response's security headers (see syncsvc.http.headers)."""
    h = response.headers
    problems = []
    if h.get("X-Content-Type-Options") != "nosniff":
        problems.append(f"{where}: no X-Content-Type-Options: nosniff")
    if response.content_type not in _DOCUMENTS:
        return problems
    csp = h.get("Content-Security-Policy", "")
    directives = {d.split()[0]: d for d in (p.strip() for p in csp.split(";")) if d}
    script = directives.get("script-src", directives.get("default-src", ""))
    if "frame-ancestors 'none'" not in csp:
        problems.append(f"{where}: CSP without frame-ancestors 'none': {csp!r}")
    if not script or "'unsafe-inline'" in script or "'unsafe-eval'" in script or "*" in script:
        problems.append(f"{where}: CSP lets scripts run: {csp!r}")
    if h.get("X-Frame-Options") != "DENY":
        problems.append(f"{where}: no X-Frame-Options: DENY")
    if h.get("Referrer-Policy") != "no-referrer":
        problems.append(f"{where}: no Referrer-Policy: no-referrer")
    return problems


class TestSecurityHeaders:
    async def test_every_response_carries_them(self, site: Any) -> None:
        """Every route, public or not, found or not: nosniff; HTML and SVG: CSP without
        inline script, no framing, no referrer. A user with a public page makes the profile
        routes answer with their real documents."""
        client, app, tokens = site
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        created = await client.post("/scim/v2/Users", headers=admin, json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", PROFILE],
            "userName": "ada", "displayName": "Ada Lovelace",
            PROFILE: {"publicProfile": {"enabled": True, "slug": "ada"}}})
        assert 201 == created.status, await created.text()
        user_id = (await created.json(content_type=None))["id"]
        paths = {c.path.replace(str(uuid.UUID(int=7)), user_id).replace("nobody-here", "ada")
                 for c in _calls(app) if c.method == "GET"}
        problems: list[str] = []
        documents = 0
        for path in sorted(paths | {"/nowhere", "/p/nobody-here", "/scim/v2/Users?filter=("}):
            for headers in ({}, admin):
                response = await client.get(path, headers=headers)
                await response.read()
                documents += response.content_type in _DOCUMENTS
                problems += _header_problems(f"GET {path} ({response.status})", response)

        assert [] == problems
        assert documents >= 6  # /admin/, /p/ada, /p/nobody-here, signature.html, qr.svg...

    async def test_a_route_without_a_policy_gets_the_strict_default(self) -> None:
        """An HTML response whose route set no policy gets one that allows nothing to run."""
        from syncsvc.http.headers import DEFAULT_CSP, install_security_headers

        async def page(_request: web.Request) -> web.Response:
            return web.Response(text="<p>hi</p>", content_type="text/html")

        app = web.Application()
        install_security_headers(app)
        app.router.add_get("/", page)
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/")

        assert (DEFAULT_CSP, []) == (response.headers["Content-Security-Policy"],
                                     _header_problems("GET /", response))


class TestAdminBadBodies:
    async def test_admin_bodies_that_are_not_json_objects_are_400(self, site: Any) -> None:
        """Deep nesting, invalid UTF-8, a bare array: 400 with a SCIM error, never a 500."""
        client, _app, tokens = site
        admin = {"Authorization": f"Bearer {tokens['admin']}", "Content-Type": "application/json"}
        for body in (b"[" * 5000 + b"]" * 5000, b"\xff\xfe", b"[]", b"{", b'{"mode": NaN}'):
            for path in ("/admin/sync", "/admin/sync/user"):
                response = await client.post(path, data=body, headers=admin)
                doc = await response.json(content_type=None)
                assert (400, ERROR_SCHEMA) == (response.status, doc["schemas"][0]), (path, body[:20])


_NASTY_SEGMENTS: Final = ["%00", "%ED%A0%80", "%FF", "1" * 300, "..", "%2e%2e", "a%2Fb", "%20",
                          "' OR '1'='1", "*)(uid=*"]


class TestPathParameters:
    async def test_nasty_path_parameters_are_never_a_500(self, site: Any) -> None:
        """Every route with a path parameter, given NUL, invalid UTF-8, a lone surrogate, 300
        characters or an injection attempt, with an admin token: an answer below 500, and a
        SCIM error document when it is a JSON error."""
        client, app, tokens = site
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        problems: list[str] = []
        tried = 0
        for route in app.router.routes():
            resource = route.resource
            assert resource is not None
            pattern = resource.canonical
            names = _field_names(pattern)
            if not names or route.method == "HEAD":
                continue
            for segment in _NASTY_SEGMENTS:
                path = pattern
                for name in names:
                    value = "Users" if name == "endpoint" else segment
                    path = re.sub(r"\{" + name + r"(:[^}]*)?\}", value, path)
                body = _REFUSED_BODY if route.method in ("POST", "PUT", "PATCH") else None
                response = await client.request(route.method, path, json=body, headers=admin)
                text = await response.text()
                tried += 1
                if response.status >= 500:
                    problems.append(f"{route.method} {path}: {response.status} {text[:200]}")
                elif response.status >= 400 and response.content_type.endswith("json"):
                    doc = json.loads(text)
                    if doc.get("schemas") != [ERROR_SCHEMA] or doc.get("status") != str(response.status):
                        problems.append(f"{route.method} {path}: not an RFC 7644 error: {text[:200]}")

        assert not problems, "\n".join(problems)
        assert tried > 100
