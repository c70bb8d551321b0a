"""Bad input over real HTTP: never a 500, never a traceback, always an RFC 7644 error document.

One live server per store backend (module scope: the real ``create_app`` on a loopback port,
run in a thread with its own event loop) is fed with hypothesis-made filters, PATCH bodies,
Bulk requests, query parameters, headers and raw bodies (invalid JSON, deep nesting, huge
strings, non-UTF-8, wrong content types), through ``http.client`` so that nothing is cleaned up
on the way. Every answer is checked by :func:`check`: below 500; an error is the RFC 7644 §3.12
document (``schemas``, ``status`` as a string equal to the HTTP status, ``detail``, a known
``scimType``) as ``application/scim+json``, with no traceback or Python class name in it.

The server runs with small limits (:data:`LIMITS`) so that the 413 and ``tooMany`` paths are hit.
Every example that once found a bug is kept in :data:`REGRESSIONS` and replayed explicitly.
The counts of requests sent and 5xx seen are printed at the end of the module (and recorded in
docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote, urlencode

import pytest
from aiohttp import web
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from syncsvc.auth import create_token
from syncsvc.http import create_app
from syncsvc.settings import ScimSettings, Settings, StoreSettings
from syncsvc.store import create_engine, upgrade
from tests.support import postgres

ERROR_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST: Final = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
CORE_USER: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP: Final = "urn:ietf:params:scim:schemas:core:2.0:Group"
SCIM_TYPES: Final = frozenset({  # RFC 7644 §3.12, plus invalidCursor (RFC 9865 §2.3)
    "invalidFilter", "tooMany", "uniqueness", "mutability", "invalidSyntax", "invalidPath",
    "noTarget", "invalidValue", "invalidVers", "sensitive", "invalidCursor"})
LIMITS: Final = ScimSettings(max_request_bytes=32_768, bulk_max_payload=65_536,
                             bulk_max_operations=8, max_results=50, max_filter_results=6)
SEED_USERS: Final = 8  # more than max_filter_results: a filter matching all is tooMany
# What must never reach a client: a traceback, or the name of a Python or driver class.
LEAK: Final = re.compile(r"Traceback|File \"|\b\w+(Error|Exception)\b|<class |sqlalchemy|asyncpg|"
                         r"aiosqlite|psycopg|\bsqlite3?\b|aiohttp\.|syncsvc\.")
FUZZ: Final = settings(max_examples=200, deadline=None, database=None, derandomize=False,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
STATS: Final[Counter[str]] = Counter()


# --- the server ----------------------------------------------------------------------------


@dataclass
class Server:
    port: int
    token: str = field(repr=False)  # scim:write
    user_id: str  # a local user and group the PATCH and PUT fuzz may change
    group_id: str
    backend: str
    seen: list[tuple[str, str, int]] = field(default_factory=list)  # 5xx: (method, path, status)

    def __repr__(self) -> str:  # hypothesis prints the fixture with a failing example
        return f"Server({self.backend}, port={self.port})"

    def _repr_pretty_(self, printer: Any, _cycle: bool) -> None:  # hypothesis's printer
        printer.text(repr(self))


class _Thread:
    """The app on 127.0.0.1, in a thread with its own loop (and its own engine)."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stopping: asyncio.Event | None = None
        self.info: tuple[int, str] | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="fuzz-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # shown by the fixture
            self.error = exc
            self.ready.set()
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        settings = Settings(store=StoreSettings(url=self.store_url), scim=LIMITS)
        engine = create_engine(settings.store)
        self.stopping = asyncio.Event()
        try:
            await upgrade(engine)
            async with engine.begin() as conn:
                now = datetime.now(UTC)
                token = await create_token(conn, name="fuzz", scopes="scim:write", now=now)
            runner = web.AppRunner(create_app(engine, settings), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            self.info = (port, token)
            self.ready.set()
            await self.stopping.wait()
            await runner.cleanup()
        finally:
            await engine.dispose()

    def stop(self) -> None:
        if self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(timeout=30)


def _seed(port: int, token: str) -> tuple[str, str]:
    ids = []
    for n in range(SEED_USERS):
        status, body, _ = _call(port, "POST", "/scim/v2/Users", token, json.dumps({
            "schemas": [CORE_USER], "userName": f"fuzz{n}", "displayName": f"Fuzz {n}",
            "emails": [{"value": f"fuzz{n}@example.com", "type": "work", "primary": True}],
            "active": n % 2 == 0}).encode())
        assert 201 == status, body
        ids.append(json.loads(body)["id"])
    status, body, _ = _call(port, "POST", "/scim/v2/Groups", token, json.dumps({
        "schemas": [CORE_GROUP], "displayName": "fuzzers",
        "members": [{"value": i} for i in ids[:3]]}).encode())
    assert 201 == status, body
    return ids[0], json.loads(body)["id"]


def _report(config: pytest.Config, line: str) -> None:
    """Print ``line`` on the terminal now (the figures for docs/reliability.md)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(line)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One live server per backend for the whole module."""
    database = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz') / 'store.db'}"
    else:
        database = postgres.fresh_database(request.getfixturevalue("pg_admin_url"))
        url = database.__enter__()
    runner = _Thread(url)
    runner.thread.start()
    runner.ready.wait(timeout=60)
    try:
        if runner.info is None:
            raise RuntimeError(f"the fuzz server did not start: {runner.error!r}")
        port, token = runner.info
        user_id, group_id = _seed(port, token)
        before = STATS["requests"]
        live = Server(port, token, user_id, group_id, request.param)
        yield live
        sent = STATS["requests"] - before
        _report(request.config, f"fuzz_http[{request.param}]: {sent} requests, "
                                f"{len(live.seen)} answered 5xx")
    finally:
        runner.stop()
        if database is not None:
            database.__exit__(None, None, None)


# --- requests and the check every answer must pass -------------------------------------------


def _call(port: int, method: str, path: str, token: str | None, body: bytes | None = None,
          headers: dict[str, Any] | None = None) -> tuple[int, bytes, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        sent = {"Content-Type": "application/scim+json"} if body is not None else {}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        for name, value in sent.items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        return response.status, data, response.getheader("Content-Type") or ""
    finally:
        conn.close()


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    doc: Any


def send(server: Server, method: str, path: str, body: bytes | None = None, *,
         token: str | None | bool = True, headers: dict[str, Any] | None = None) -> Answer:
    """Send one request and check it with :func:`check`; count it."""
    secret = server.token if token is True else (token or None)
    status, data, ctype = _call(server.port, method, path, secret, body, headers)
    STATS["requests"] += 1
    if status >= 500:
        STATS["5xx"] += 1
        server.seen.append((method, path[:200], status))
    doc = None
    if data and ctype.startswith("application/scim+json"):
        doc = json.loads(data)
    answer = Answer(status, ctype, data, doc)
    check(answer, method, path, body)
    return answer


def check(answer: Answer, method: str, path: str, body: bytes | None) -> None:
    where = f"{method} {path[:300]!r} body={(body or b'')[:300]!r}"
    assert answer.status < 500, f"{where} -> {answer.status}: {answer.body[:500]!r}"
    request_text = path + (body or b"").decode("utf-8", "replace")
    for leak in LEAK.finditer(answer.body.decode("utf-8", "replace")):
        assert leak.group(0) in request_text, f"{where} leaks {leak.group(0)!r}: {answer.body[:500]!r}"
    if answer.status < 400:
        return
    assert answer.content_type.startswith("application/scim+json"), (where, answer.content_type)
    doc = answer.doc
    assert isinstance(doc, dict), (where, answer.body[:300])
    assert [ERROR_SCHEMA] == doc.get("schemas"), (where, doc)
    assert str(answer.status) == doc.get("status"), (where, doc)
    assert isinstance(doc.get("detail"), str), (where, doc)
    if "scimType" in doc:
        assert doc["scimType"] in SCIM_TYPES, (where, doc)


def expect(answer: Answer, statuses: set[int], scim_types: set[str] | None = None) -> None:
    assert answer.status in statuses, (answer.status, answer.doc)
    if scim_types is not None and answer.status == 400:
        assert answer.doc.get("scimType") in scim_types, answer.doc


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()


# --- strategies -------------------------------------------------------------------------------

ATTRS: Final = ["userName", "displayName", "name.givenName", "emails", "emails.value",
                "emails[type eq \"work\"].value", "active", "meta.lastModified", "id", "externalId",
                "members", "members.value", "title", "nickName", "groups",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User:skills", "x", "",
                "name..givenName", "emails[", "emails[value eq]", "a.b.c.d"]
OPS: Final = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "EQ", "Co", "xx"]
TEXT: Final = st.text(max_size=40)
WEIRD_TEXT: Final = st.one_of(
    TEXT, st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(["\x00", "\\", "\"", "'", "%", "_", "\u202e", "\ud800", "é", "𝔘", "\n",
                     "' OR 1=1 --", "\" or \"\"=\"", "*)(uid=*", "${jndi:x}", "%00", "a" * 5000]))
VALUES: Final = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False), WEIRD_TEXT,
    st.sampled_from(['"x"', "true", "false", "null", "2024-01-01T00:00:00Z", "1e999", '"\\"']))
JSON_LEAF: Final = st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64),
                             st.floats(allow_nan=False, allow_infinity=False), WEIRD_TEXT)
JSON: Final = st.recursive(JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(ATTRS), TEXT), inner,
                                                 max_size=4)), max_leaves=12)


def _literal(value: Any) -> str:
    if isinstance(value, str) and value.startswith(('"', "t", "f", "n", "1", "2")):
        return value
    return json.dumps(value)


@st.composite
def filters(draw: st.DrawFn, depth: int = 0) -> str:
    """Filters in and around RFC 7644 §3.4.2.2: mostly well-formed, some broken on purpose."""
    kind = draw(st.integers(0, 7 if depth < 2 else 3))
    if kind == 0:
        return draw(WEIRD_TEXT)
    if kind <= 3:
        attr, op = draw(st.sampled_from(ATTRS)), draw(st.sampled_from(OPS))
        if op.lower() == "pr":
            return f"{attr} {op}"
        return f"{attr} {op} {_literal(draw(VALUES))}"
    if kind == 4:
        return f"not ({draw(filters(depth + 1))})"
    if kind == 5:
        return f"{draw(filters(depth + 1))} {draw(st.sampled_from(['and', 'or', 'AND', 'xor']))} " \
               f"{draw(filters(depth + 1))}"
    if kind == 6:
        return f"emails[{draw(filters(depth + 1))}]"
    return "(" * draw(st.integers(1, 300)) + "userName pr" + ")" * draw(st.integers(0, 300))


PARAM_VALUES: Final = st.one_of(
    st.integers(-(2**70), 2**70).map(str), WEIRD_TEXT,
    st.sampled_from(["", "0", "-1", "1.5", "1e3", "NaN", "ascending", "descending", "userName",
                     "emails.value", "meta.lastModified", "eyJpZCI6IDF9", "eyJvZmZzZXQiOiAieCJ9",
                     "e30", "bnVsbA", "!!", "ZmY", "eyJpZCI6ICJcdTAwMDAifQ", "W10"]))
PARAM_NAMES: Final = ["filter", "count", "startIndex", "attributes", "excludedAttributes", "sortBy",
                      "sortOrder", "cursor", "COUNT", "startindex", "x"]


@st.composite
def patch_ops(draw: st.DrawFn) -> Any:
    op = {"op": draw(st.one_of(st.sampled_from(["add", "replace", "remove", "Add", "REPLACE",
                                                "move", ""]), JSON_LEAF))}
    if draw(st.booleans()):
        op["path"] = draw(st.one_of(st.sampled_from(ATTRS), WEIRD_TEXT, JSON_LEAF,
                                    filters().map(lambda f: f"emails[{f}].value")))
    if draw(st.booleans()):
        op["value"] = draw(JSON)
    return op


@st.composite
def patch_bodies(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    body: dict[str, Any] = {"schemas": draw(st.one_of(st.just([PATCH_OP]), JSON)),
                            "Operations": draw(st.one_of(st.lists(patch_ops(), max_size=4), JSON))}
    return body


@st.composite
def bulk_bodies(draw: st.DrawFn) -> Any:
    ops = []
    for _ in range(draw(st.integers(0, 5))):
        ops.append({
            "method": draw(st.one_of(st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "GET", "x"]),
                                     JSON_LEAF)),
            "path": draw(st.one_of(st.sampled_from(["/Users", "/Groups", "/Users/bulkId:a",
                                                    "/Groups/bulkId:nope", "/Nope", "Users"]),
                                   WEIRD_TEXT, JSON_LEAF)),
            "bulkId": draw(st.one_of(st.sampled_from(["a", "b"]), JSON)),
            "version": draw(st.one_of(st.none(), WEIRD_TEXT, JSON_LEAF)),
            "data": draw(st.one_of(JSON, st.just({"schemas": [CORE_USER], "userName": "bulk-x"}),
                                   patch_bodies())),
        })
    body: dict[str, Any] = {"schemas": draw(st.one_of(st.just([BULK_REQUEST]), JSON)),
                            "Operations": draw(st.one_of(st.just(ops), JSON))}
    if draw(st.booleans()):
        body["failOnErrors"] = draw(JSON_LEAF)
    return body


RAW_BODIES: Final = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"", b"{", b"[", b"null", b"\xff\xfe\x00", b'{"a": "\xc3\x28"}',
                     b'{"schemas": ["\\ud800"]}', b"\xef\xbb\xbf{}", b"NaN", b"1e999999",
                     b"[" * 100_000 + b"]" * 100_000, b"{\"a\":" * 50_000 + b"1" + b"}" * 50_000,
                     b'"' + b"x" * 40_000 + b'"', b'{"userName": "' + b"\x00" * 10 + b'"}']),
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
    st.text(max_size=100).map(lambda t: t.encode("utf-16")))
CONTENT_TYPES: Final = st.one_of(
    st.sampled_from(["application/scim+json", "application/json", "text/plain", "text/html",
                     "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                     "application/scim+json; charset=latin-1", "application/xml", "", ";;;",
                     "application/scim+json; charset=utf-16", "*/*"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
# Bytes a header value may hold (RFC 9110 §5.5: VCHAR, obs-text, SP, HTAB). Others (DEL, NUL)
# are refused by aiohttp's HTTP parser before syncsvc sees the request: see
# test_a_malformed_header_is_refused_by_the_parser.
HEADER_TEXT: Final = st.text(alphabet=st.one_of(
    st.characters(min_codepoint=32, max_codepoint=126), st.characters(min_codepoint=128,
                                                                      max_codepoint=255)),
    max_size=80)


MAX_URL: Final = 8000
"""aiohttp's HTTP parser refuses a request line over 8190 bytes before syncsvc sees it (a plain
400; see test_protocol_errors_are_answered_by_the_parser): the fuzz stays under it."""


def _path(prefix: str, params: list[tuple[str, str]]) -> str:
    # surrogatepass: a lone surrogate goes out as the invalid UTF-8 it would be on the wire.
    query = urlencode(params, quote_via=quote, encoding="utf-8", errors="surrogatepass")
    return prefix + ("?" + query if params else "")


def _fuzz_path(prefix: str, params: list[tuple[str, str]]) -> str:
    path = _path(prefix, params)
    assume(len(path) < MAX_URL)
    return path


# --- the fuzz tests ---------------------------------------------------------------------------


class TestFuzz:
    @FUZZ
    @given(data=st.data())
    def test_filters_in_the_url_and_in_search(self, server: Server, data: st.DataObject) -> None:
        """Any filter: 200, or 400 invalidFilter / tooMany (never 500)."""
        text = data.draw(filters())
        endpoint = data.draw(st.sampled_from(["/Users", "/Groups", ""]))
        if endpoint:
            expect(send(server, "GET", _fuzz_path(f"/scim/v2{endpoint}", [("filter", text)])),
                   {200, 400}, {"invalidFilter", "tooMany", "invalidValue"})
        answer = send(server, "POST", f"/scim/v2{endpoint}/.search", as_json({"filter": text}))
        expect(answer, {200, 400}, {"invalidFilter", "tooMany", "invalidValue"})

    @FUZZ
    @given(params=st.lists(st.tuples(st.sampled_from(PARAM_NAMES), PARAM_VALUES), max_size=5),
           endpoint=st.sampled_from(["/Users", "/Groups"]), by_id=st.booleans())
    def test_query_parameters(self, server: Server, params: list[tuple[str, str]], endpoint: str,
                              by_id: bool) -> None:
        """count, startIndex, attributes, sortBy, cursor...: 200 or a 400 that says why."""
        target = server.user_id if endpoint == "/Users" else server.group_id
        path = f"/scim/v2{endpoint}" + (f"/{target}" if by_id else "")
        expect(send(server, "GET", _fuzz_path(path, params)), {200, 400})

    @FUZZ
    @given(body=st.dictionaries(st.sampled_from(PARAM_NAMES + ["sortorder", "excludedattributes"]),
                                JSON_LEAF, max_size=5))
    def test_search_request_bodies(self, server: Server, body: dict[str, Any]) -> None:
        """A SearchRequest with values of any JSON type: 200 or 400."""
        expect(send(server, "POST", "/scim/v2/Users/.search", as_json(body)), {200, 400})

    @FUZZ
    @given(body=patch_bodies(), group=st.booleans(), if_match=st.one_of(st.none(), HEADER_TEXT))
    def test_patch_bodies(self, server: Server, body: Any, group: bool, if_match: str | None) -> None:
        """A PatchOp of any shape: 200, 400 with a PATCH scimType, or 412 for a stale If-Match."""
        target = f"/scim/v2/Groups/{server.group_id}" if group else f"/scim/v2/Users/{server.user_id}"
        headers = {"If-Match": if_match} if if_match is not None else None
        answer = send(server, "PATCH", target, as_json(body), headers=headers)
        expect(answer, {200, 400, 409, 412}, {"invalidSyntax", "invalidPath", "invalidValue",
                                             "noTarget", "mutability", "invalidFilter"})

    @FUZZ
    @given(body=JSON, kind=st.sampled_from(["Users", "Groups"]), put=st.booleans())
    def test_resource_bodies(self, server: Server, body: Any, kind: str, put: bool) -> None:
        """POST/PUT of any JSON: 201/200, 400 invalidSyntax/invalidValue, 409 uniqueness."""
        if put:
            target = server.user_id if kind == "Users" else server.group_id
            answer = send(server, "PUT", f"/scim/v2/{kind}/{target}", as_json(body))
        else:
            answer = send(server, "POST", f"/scim/v2/{kind}", as_json(body))
        expect(answer, {200, 201, 400, 409}, {"invalidSyntax", "invalidValue", "mutability"})

    @FUZZ
    @given(body=bulk_bodies())
    def test_bulk_requests(self, server: Server, body: Any) -> None:
        """Any BulkRequest: 200 with per-operation results, 400, or 413 over the limits."""
        answer = send(server, "POST", "/scim/v2/Bulk", as_json(body))
        expect(answer, {200, 400, 413})
        if answer.status == 200:
            for op in answer.doc["Operations"]:
                assert isinstance(op.get("status"), str), op
                assert int(op["status"]) < 500, op
                if int(op["status"]) >= 400:
                    check(Answer(int(op["status"]), "application/scim+json", b"", op["response"]),
                          "BULK", "/Bulk", as_json(body))

    @FUZZ
    @given(raw=RAW_BODIES, ctype=CONTENT_TYPES,
           target=st.sampled_from(["POST /scim/v2/Users", "POST /scim/v2/Groups",
                                   "POST /scim/v2/.search", "POST /scim/v2/Bulk",
                                   "PATCH /scim/v2/Users/{user}", "PUT /scim/v2/Groups/{group}",
                                   "POST /scim/v2/Users/.search"]))
    def test_raw_bodies_and_content_types(self, server: Server, raw: bytes, ctype: str,
                                          target: str) -> None:
        """Bytes that are not JSON, JSON that is not an object, odd content types: 4xx."""
        method, path = target.split(" ")
        path = path.format(user=server.user_id, group=server.group_id)
        answer = send(server, method, path, raw, headers={"Content-Type": ctype})
        expect(answer, {200, 201, 400, 409, 413, 415})

    @FUZZ
    @given(authorization=st.one_of(HEADER_TEXT, st.sampled_from([
        "Bearer", "Bearer ", "bearer scs_", "Basic Zm9vOmJhcg==", "Bearer scs_" + "A" * 43,
        "Bearer scs_" + "A" * 4000, "Bearer " + "é" * 50, "Bearer\tscs_x", "Token x"])),
        path=st.sampled_from(["/scim/v2/Users", "/scim/v2/Bulk", "/admin/status", "/metrics",
                              "/profiles/x/vcard", "/scim/v2/Nope"]),
        method=st.sampled_from(["GET", "POST", "DELETE"]))
    def test_authorization_garbage(self, server: Server, authorization: str, path: str,
                                   method: str) -> None:
        """Any Authorization header but a real token: 401 with a challenge, nothing else."""
        answer = send(server, method, path, b"{}" if method == "POST" else None, token=False,
                      headers={"Authorization": authorization.encode("latin-1")})
        expect(answer, {401})

    @FUZZ
    @given(segment=st.one_of(WEIRD_TEXT, st.sampled_from(["%00", "%ff", "..", "%2e%2e", "a%2Fb",
                                                          "Users", "-1", "1" * 300])),
           method=st.sampled_from(["GET", "PUT", "PATCH", "DELETE"]),
           kind=st.sampled_from(["Users", "Groups", "Schemas", "ResourceTypes"]),
           if_match=st.one_of(st.none(), HEADER_TEXT))
    def test_resource_ids(self, server: Server, segment: str, method: str, kind: str,
                          if_match: str | None) -> None:
        """Ids that are not ids (NUL, %ff, 300 digits, unicode): 404/405/400, never 500."""
        path = f"/scim/v2/{kind}/" + quote(segment, safe="%", errors="surrogatepass") if segment else f"/scim/v2/{kind}/x"
        assume(len(path) < MAX_URL)
        headers: dict[str, Any] = {"If-None-Match": if_match} if if_match is not None else {}
        if if_match is not None and method != "GET":
            headers = {"If-Match": if_match}
        body = as_json({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "title",
                                                                "value": "x"}]})
        answer = send(server, method, path, body if method in ("PUT", "PATCH") else None,
                      headers=headers)
        expect(answer, {400, 404, 405, 412})


# --- limits -----------------------------------------------------------------------------------


class TestLimits:
    def test_a_body_over_max_request_bytes_is_413(self, server: Server) -> None:
        """POST /Users with more than scim.max_request_bytes: 413 and a SCIM error."""
        body = as_json({"schemas": [CORE_USER], "userName": "big", "title": "x" * 40_000})
        expect(send(server, "POST", "/scim/v2/Users", body), {413})

    def test_a_bulk_over_max_payload_is_413(self, server: Server) -> None:
        """POST /Bulk over scim.bulk_max_payload (and over the server's body limit): 413."""
        for size in (LIMITS.bulk_max_payload + 1, LIMITS.bulk_max_payload * 4):
            body = as_json({"schemas": [BULK_REQUEST], "Operations": [], "pad": "x" * size})
            expect(send(server, "POST", "/scim/v2/Bulk", body), {413})

    def test_a_bulk_over_max_operations_is_413(self, server: Server) -> None:
        """More operations than bulk.maxOperations: 413 (RFC 7644 §3.7.4), none is run."""
        ops = [{"method": "POST", "path": "/Users", "bulkId": f"b{n}",
                "data": {"schemas": [CORE_USER], "userName": f"over-{n}"}}
               for n in range(LIMITS.bulk_max_operations + 1)]
        expect(send(server, "POST", "/scim/v2/Bulk", as_json({"schemas": [BULK_REQUEST],
                                                              "Operations": ops})), {413})
        found = send(server, "GET", _path("/scim/v2/Users", [("filter", 'userName sw "over-"')]))
        assert 0 == found.doc["totalResults"]

    def test_a_filter_over_max_filter_results_is_too_many(self, server: Server) -> None:
        """A filter matching more than scim.max_filter_results resources: 400 tooMany."""
        answer = send(server, "GET", _path("/scim/v2/Users", [("filter", 'userName sw "fuzz"')]))
        expect(answer, {400}, {"tooMany"})

    def test_protocol_errors_are_answered_by_the_parser(self, server: Server) -> None:
        """A request line over 8 KiB, or a header with a control character, never reaches
        syncsvc: aiohttp's parser answers a plain 400, without a traceback. (Not a SCIM error
        document: there is no request to route yet.) A token in the bad header goes nowhere."""
        for path, headers in [("/scim/v2/Users?filter=" + "a" * 9000, None),
                              ("/scim/v2/Users", {"Authorization": f"Bearer {server.token}\x7f"})]:
            status, data, _ctype = _call(server.port, "GET", path, None, None, headers)
            STATS["requests"] += 1
            assert 400 == status
            assert not LEAK.search(data.decode("utf-8", "replace")), data[:300]

    def test_count_over_max_results_is_lowered(self, server: Server) -> None:
        """count above scim.max_results is lowered to it, not refused (RFC 7644 §3.4.2.4)."""
        answer = send(server, "GET", _path("/scim/v2/Users", [("count", "100000")]))
        assert 200 == answer.status and answer.doc["itemsPerPage"] <= LIMITS.max_results


# --- every example that once found a bug ------------------------------------------------------

def _bulk(ops: list[Any], **extra: Any) -> bytes:
    return as_json({"schemas": [BULK_REQUEST], "Operations": ops, **extra})


_BULK_POST: Final = {"method": "POST", "path": "/Users", "bulkId": "a",
                     "data": {"schemas": [CORE_USER], "userName": "bulk-x"}}

REGRESSIONS: Final[list[tuple[str, str, bytes | None, dict[str, str] | None]]] = [
    # failOnErrors that is not an integer: int("") raised ValueError.
    ("POST", "/scim/v2/Bulk", _bulk([_BULK_POST], failOnErrors=""), None),
    ("POST", "/scim/v2/Bulk", _bulk([], failOnErrors=[1]), None),
    ("POST", "/scim/v2/Bulk", _bulk([], failOnErrors="²"), None),
    # A bulkId or version that is not a string: unhashable dict key, str methods on an int.
    ("POST", "/scim/v2/Bulk", _bulk([{**_BULK_POST, "bulkId": {"a": 1}}]), None),
    ("POST", "/scim/v2/Bulk", _bulk([{"method": "DELETE", "path": "/Users/{user}x",
                                      "version": 3}]), None),
    # A Content-Type CPython's header parser chokes on (IndexError inside email's parser).
    ("POST", "/scim/v2/Users", b"", {"Content-Type": ";0*"}),
    ("POST", "/scim/v2/Users", b"{}", {"Content-Type": ";l*"}),
    # schemas that is not an array: `x in True` raised TypeError.
    ("POST", "/scim/v2/Bulk", as_json({"schemas": True, "Operations": []}), None),
    # A filter string with an unpaired surrogate (valid JSON escape): the driver could not
    # encode it. A NUL: PostgreSQL refuses it in text.
    ("GET", _path("/scim/v2/Users", [("filter", 'userName eq "\\ud800"')]), None, None),
    ("GET", _path("/scim/v2/Users", [("filter", 'title gt "\\ud800"')]), None, None),
    ("POST", "/scim/v2/.search", as_json({"filter": 'userName eq "\\u0000"'}), None),
    # Values longer than their column: PostgreSQL's varchar(255) refused them (SQLite did not).
    ("POST", "/scim/v2/Users", as_json({"schemas": [CORE_USER], "userName": "x" * 256}), None),
    ("POST", "/scim/v2/Users", as_json({"schemas": [CORE_USER], "userName": "long-ext",
                                        "externalId": "x" * 256}), None),
    ("POST", "/scim/v2/Users", as_json({"schemas": [CORE_USER], "userName": "long-dn",
                                        "displayName": "x" * 256}), None),
    ("POST", "/scim/v2/Users", as_json({"schemas": [CORE_USER], "userName": "long-mail",
                                        "emails": [{"value": "x" * 321}]}), None),
    ("PATCH", "/scim/v2/Groups/{group}", as_json({"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "displayName", "value": "g" * 256}]}), None),
]
"""(method, path, body, headers) that once answered 500; {user}/{group} are filled in."""


@pytest.mark.parametrize("method,path,body,headers", REGRESSIONS,
                         ids=[f"{m} {p[:40]}" for m, p, _b, _h in REGRESSIONS] or None)
def test_regressions(server: Server, method: str, path: str, body: bytes | None,
                     headers: dict[str, str] | None) -> None:
    """Each once answered 500; now a 4xx SCIM error (or success)."""
    send(server, method, path.format(user=server.user_id, group=server.group_id), body,
         headers=headers)


# Hand-picked inputs around the edges the strategies reach only by luck; each must answer
# below 500 with a proper error document (the status each gives is pinned where it matters).
NASTY: Final[list[tuple[str, str, bytes | None, int]]] = [
    ("GET", _path("/scim/v2/Users", [("filter", "userName eq 1" + "0" * 30)]), None, 400),
    ("GET", _path("/scim/v2/Users", [("filter", 'meta.lastModified gt "99999-01-01T00:00:00Z"')]),
     None, 400),
    ("GET", _path("/scim/v2/Users", [("filter", 'id eq "' + "x" * 300 + '"')]), None, 200),
    ("GET", "/scim/v2/Users?filter=userName%20eq%20%22%00%22", None, 400),
    ("GET", "/scim/v2/Users?filter=userName%20eq%20%22%ED%A0%80%22", None, 200),
    ("GET", "/scim/v2/Users/%00", None, 404),
    ("GET", "/scim/v2/Users/%ED%A0%80", None, 404),
    ("GET", "/scim/v2/Users/" + "1" * 300, None, 404),
    ("GET", _path("/scim/v2/Users", [("sortBy", "\x00")]), None, 400),
    ("GET", _path("/scim/v2/Users", [("startIndex", str(2**64))]), None, 200),
    ("GET", _path("/scim/v2/Users", [("count", str(-(2**80)))]), None, 200),
    ("GET", _path("/scim/v2/Users", [("cursor", "eyJpZCI6IDF9")]), None, 400),  # {"id": 1}
    ("GET", _path("/scim/v2/Users", [("cursor", "W10")]), None, 400),  # []
    ("GET", _path("/scim/v2/Users", [("cursor", "Wy" * 3000)]), None, 400),  # [[[[...
    ("POST", "/scim/v2/Users/.search", as_json({"count": 1.5}), 400),
    ("POST", "/scim/v2/Users/.search", as_json({"startIndex": True}), 400),
    ("POST", "/scim/v2/Users", b"[" * 15_000 + b"]" * 15_000, 400),  # past json's recursion
    ("POST", "/scim/v2/Users", b'{"a":' * 40 + b"1" + b"}" * 40, 400),
    ("POST", "/scim/v2/Users", b"NaN", 400),
    ("POST", "/scim/v2/Users", b'{"userName": 1e999}', 400),
    ("POST", "/scim/v2/Users", b'{"userName": ' + b"1" * 5000 + b"}", 400),
    ("POST", "/scim/v2/Users", b"\xff\xfe{}", 400),
    ("POST", "/scim/v2/Users", as_json({"schemas": [CORE_USER], "userName": "a\u0000b"}), 400),
]


@pytest.mark.parametrize("method,path,body,status", NASTY, ids=[f"{m} {p[:50]}" for m, p, *_ in NASTY])
def test_nasty_inputs(server: Server, method: str, path: str, body: bytes | None,
                      status: int) -> None:
    """Each answers its pinned status with an RFC 7644 error document (or a list)."""
    assert status == send(server, method, path, body).status


def test_no_5xx_seen(server: Server) -> None:
    """Over the whole module on this backend: not one 5xx (listed if there were)."""
    assert [] == server.seen
