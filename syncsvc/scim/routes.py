"""aiohttp handlers under /scim/v2: parse the request, call ScimService, shape the response."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from email.errors import MessageError
from typing import Any

from aiohttp import web

from syncsvc import jsoncodec
from syncsvc.errors import InvalidSyntax, InvalidValue, NotFound, NotModified, PayloadTooLarge
from syncsvc.scim.cache import CachedResponse
from syncsvc.scim.discovery import resource_type, resource_types, service_provider_config
from syncsvc.scim.inputs import MAX_DEPTH, MAX_OFFSET, check_document, plausible_id
from syncsvc.scim.middleware import scim_bytes, scim_json
from syncsvc.scim.schema import load_schemas
from syncsvc.scim.serialize import etag_matches
from syncsvc.scim.service import KINDS, Kind, ListQuery, Result, ScimService
from syncsvc.scim.state import SCIM, ScimState

__all__ = ["PREFIX", "add_routes"]

PREFIX = "/scim/v2"
LIST_PARAMS = {"filter", "sortby", "sortorder", "startindex", "count", "cursor", "attributes",
               "excludedattributes"}


def _base_url(request: web.Request) -> str:
    state = request.app[SCIM]
    if state.settings.base_url:
        return state.settings.base_url.rstrip("/") + PREFIX
    return f"{request.scheme}://{request.host}{PREFIX}"


def _service(request: web.Request) -> ScimService:
    return request.app[SCIM].service


def _kind(request: web.Request) -> Kind:
    return KINDS[request.match_info["endpoint"]]


async def _json_body(request: web.Request, limit: int | None = None) -> Any:
    """The JSON body; over ``limit`` bytes (default: scim.max_request_bytes) is 413."""
    try:
        ctype = request.content_type
    except (IndexError, ValueError, MessageError) as exc:
        # CPython's header parser fails on some garbage (";0*": IndexError, bpo-style bug).
        raise InvalidSyntax("the Content-Type header cannot be parsed") from exc
    if request.body_exists and ctype not in ("application/scim+json", "application/json",
                                             "application/octet-stream", "text/plain"):
        raise InvalidSyntax(f"send application/scim+json, not {ctype}")
    raw = await request.read()
    most = limit if limit is not None else request.app[SCIM].settings.max_request_bytes
    if len(raw) > most:
        raise PayloadTooLarge(f"the body has {len(raw)} bytes; the maximum is {most}")
    try:
        body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError as exc:  # "[[[[..." deeper than the parser's stack
        raise InvalidSyntax(f"the body nests deeper than {MAX_DEPTH} levels") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSyntax(f"the body is not valid JSON: {exc}") from exc
    check_document(body)
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 §6)")


def _finite(text: str) -> float:
    # 1e999 parses to inf, which no store and no JSON can hold: refuse it like NaN.
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _resource_id(request: web.Request) -> str:
    """The {id} of the path; one no resource could have (NUL, 300 characters) is not found."""
    resource_id = request.match_info["id"]
    if not plausible_id(resource_id):
        raise NotFound(f"{_kind(request).name} not found")
    return resource_id


def _int(value: Any, name: str, minimum: int) -> int:
    """An integer parameter, at least ``minimum``; a huge one is lowered to MAX_OFFSET (an
    offset past every result: the page is empty, as it would be anyway)."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise InvalidValue(f"{name} must be an integer, got {value!r:.40}")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidValue(f"{name} must be an integer, got {value!r:.40}") from exc
    return min(max(number, minimum), MAX_OFFSET)


def _list_of(value: Any) -> list[str] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def _list_query(params: Mapping[str, Any]) -> ListQuery:
    """Query parameters (case-insensitive names, RFC 7644 §3.4.2) or a SearchRequest body."""
    p = {k.lower(): v for k, v in params.items()}
    order = str(p.get("sortorder") or "ascending")
    if order.lower() not in ("ascending", "descending"):
        raise InvalidValue(f"sortOrder must be ascending or descending, got {order!r}")
    if p.get("cursor") is not None and p.get("startindex") is not None:
        raise InvalidValue("use either cursor or startIndex paging, not both")
    count = p.get("count")
    cursor = p.get("cursor")
    return ListQuery(
        filter=str(p["filter"]) if p.get("filter") not in (None, "") else None,
        sort_by=str(p["sortby"]) if p.get("sortby") else None,
        sort_order=order,
        start_index=_int(p.get("startindex", 1), "startIndex", 1),
        count=None if count in (None, "") else _int(count, "count", 0),
        cursor=None if cursor is None else str(cursor),
        attributes=_list_of(p.get("attributes")),
        excluded=_list_of(p.get("excludedattributes")),
    )


def _one(result: Result, status: int = 200) -> web.Response:
    headers = {"ETag": result.etag}
    if status == 201:
        headers["Location"] = result.location
    return scim_json(result.body, status=status, headers=headers)


async def _cached(
    request: web.Request, render: Callable[[str], Awaitable[CachedResponse]]
) -> CachedResponse:
    """The answer to this GET from the response cache, or ``render(base_url)``'s, then kept."""
    base_url = _base_url(request)
    cache = request.app[SCIM].cache
    if not cache.enabled:  # scim.response_cache_bytes = 0: no key to build, nothing to keep
        return await render(base_url)
    key = (base_url, request.path_qs)
    hit = cache.get(key)
    if hit is None:
        token = cache.token()  # before the read: a commit during it makes the answer suspect
        hit = await render(base_url)
        cache.put(key, token, hit)
    return hit


async def list_resources(request: web.Request) -> web.Response:
    async def render(base_url: str) -> CachedResponse:
        page = await _service(request).list(_kind(request), _list_query(request.query),
                                            base_url=base_url)
        return CachedResponse(jsoncodec.dumps(page))

    return scim_bytes((await _cached(request, render)).body)


async def search(request: web.Request) -> web.Response:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise InvalidSyntax("a SearchRequest is a JSON object")
    query = _list_query({k: v for k, v in body.items() if k.lower() in LIST_PARAMS})
    service = _service(request)
    endpoint = request.match_info.get("endpoint")
    if endpoint is None:
        return scim_json(await service.search_all(query, base_url=_base_url(request)))
    return scim_json(await service.list(KINDS[endpoint], query, base_url=_base_url(request)))


async def get_resource(request: web.Request) -> web.Response:
    async def render(base_url: str) -> CachedResponse:
        q = {k.lower(): v for k, v in request.query.items()}
        body, tag = await _service(request).get_encoded(
            _kind(request), _resource_id(request), base_url=base_url,
            attributes=_list_of(q.get("attributes")), excluded=_list_of(q.get("excludedattributes")),
        )
        return CachedResponse(body, tag)

    hit = await _cached(request, render)
    tag = hit.etag or ""
    if etag_matches(request.headers.get("If-None-Match"), tag):
        raise NotModified("not modified")
    return scim_bytes(hit.body, headers={"ETag": tag})


def _projection(request: web.Request) -> dict[str, list[str] | None]:
    """attributes / excludedAttributes, which RFC 7644 §3.9 allows on POST, PUT and PATCH too."""
    q = {k.lower(): v for k, v in request.query.items()}
    return {"attributes": _list_of(q.get("attributes")),
            "excluded": _list_of(q.get("excludedattributes"))}


async def create(request: web.Request) -> web.Response:
    body = await _json_body(request)
    result = await _service(request).create(_kind(request), body, base_url=_base_url(request),
                                            **_projection(request))
    return _one(result, 201)


async def replace(request: web.Request) -> web.Response:
    body = await _json_body(request)
    result = await _service(request).replace(
        _kind(request), _resource_id(request), body, base_url=_base_url(request),
        if_match=request.headers.get("If-Match"), **_projection(request),
    )
    return _one(result)


async def patch(request: web.Request) -> web.Response:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise InvalidSyntax("a PatchOp is a JSON object")
    result = await _service(request).patch(
        _kind(request), _resource_id(request), body, base_url=_base_url(request),
        if_match=request.headers.get("If-Match"), **_projection(request),
    )
    return _one(result)


async def delete(request: web.Request) -> web.Response:
    await _service(request).delete(_kind(request), _resource_id(request),
                                   if_match=request.headers.get("If-Match"))
    return web.Response(status=204)


async def get_service_provider_config(request: web.Request) -> web.Response:
    s = request.app[SCIM].settings
    return scim_json(service_provider_config(
        _base_url(request), max_results=s.max_results, bulk_max_operations=s.bulk_max_operations,
        bulk_max_payload=s.bulk_max_payload, default_page_size=s.default_page_size,
    ))


def _list_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": len(resources), "itemsPerPage": len(resources), "startIndex": 1,
            "Resources": resources}


async def get_resource_types(request: web.Request) -> web.Response:
    return scim_json(_list_response(resource_types(_base_url(request))))


async def get_resource_type(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        return scim_json(resource_type(name, _base_url(request)))
    except (KeyError, ValueError) as exc:
        raise NotFound(f"no resource type {name!r}") from exc


async def get_schemas(request: web.Request) -> web.Response:
    return scim_json(_list_response(load_schemas().schema_documents(_base_url(request))))


async def get_schema(request: web.Request) -> web.Response:
    urn = request.match_info["urn"]
    document = load_schemas().schema_document(urn, _base_url(request))
    if document is None:
        raise NotFound(f"no schema {urn!r}")
    return scim_json(document)


async def bulk(request: web.Request) -> web.Response:
    from syncsvc.scim.bulk import run_bulk

    state: ScimState = request.app[SCIM]
    body = await _json_body(request, state.settings.bulk_max_payload)
    return scim_json(await run_bulk(state.service, state.settings, body, base_url=_base_url(request)))


def add_routes(app: web.Application) -> None:
    """Register every SCIM route; resource type names are case-sensitive per RFC 7644 §3.2."""
    r = app.router
    kinds = "{endpoint:Users|Groups}"
    r.add_get(f"{PREFIX}/ServiceProviderConfig", get_service_provider_config)
    r.add_get(f"{PREFIX}/ResourceTypes", get_resource_types)
    r.add_get(f"{PREFIX}/ResourceTypes/{{name}}", get_resource_type)
    r.add_get(f"{PREFIX}/Schemas", get_schemas)
    r.add_get(f"{PREFIX}/Schemas/{{urn}}", get_schema)
    r.add_post(f"{PREFIX}/.search", search)
    r.add_post(f"{PREFIX}/Bulk", bulk)
    r.add_post(f"{PREFIX}/{kinds}/.search", search)
    r.add_get(f"{PREFIX}/{kinds}", list_resources)
    r.add_post(f"{PREFIX}/{kinds}", create)
    r.add_get(f"{PREFIX}/{kinds}/{{id}}", get_resource)
    r.add_put(f"{PREFIX}/{kinds}/{{id}}", replace)
    r.add_patch(f"{PREFIX}/{kinds}/{{id}}", patch)
    r.add_delete(f"{PREFIX}/{kinds}/{{id}}", delete)
