"""POST /Bulk (RFC 7644 §3.7): operations in order, bulkId references, failOnErrors.

Each operation runs in its own transaction, as the RFC leaves atomicity across operations to
the server; a failed one is reported in its place and the others stand.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from syncsvc.errors import InvalidSyntax, InvalidValue, PayloadTooLarge, ScimError
from syncsvc.scim.middleware import ERROR_SCHEMA
from syncsvc.scim.service import KINDS, ScimService
from syncsvc.settings import ScimSettings

__all__ = ["BULK_REQUEST", "BULK_RESPONSE", "run_bulk"]

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
_PATH = re.compile(r"^/(Users|Groups)(?:/([^/]+))?$")
_REF = re.compile(r"bulkId:([^\s\"/]+)")


def _resolve(value: Any, ids: Mapping[str, str]) -> Any:
    """Replace every ``bulkId:x`` with the id the operation ``x`` created."""
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            if match.group(1) not in ids:
                raise InvalidValue(f"bulkId {match.group(1)!r} is not (yet) defined")
            return ids[match.group(1)]
        return _REF.sub(sub, value)
    if isinstance(value, list):
        return [_resolve(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, ids) for k, v in value.items()}
    return value


def _error(exc: ScimError) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(exc.status), "detail": exc.detail}
    if exc.scim_type:
        body["scimType"] = exc.scim_type
    return body


async def run_bulk(
    service: ScimService, settings: ScimSettings, body: Any, *, base_url: str
) -> dict[str, Any]:
    """Run a BulkRequest; limits are those announced in ServiceProviderConfig."""
    schemas = body.get("schemas") if isinstance(body, dict) else None
    if not isinstance(schemas, list) or BULK_REQUEST not in schemas:
        raise InvalidSyntax(f"a BulkRequest needs schemas [{BULK_REQUEST!r}]")
    operations = body.get("Operations")
    if not isinstance(operations, list):
        raise InvalidSyntax("Operations must be an array")
    if len(operations) > settings.bulk_max_operations:
        raise PayloadTooLarge(
            f"{len(operations)} operations; the maximum is {settings.bulk_max_operations}"
        )
    fail_on_errors = _fail_on_errors(body.get("failOnErrors"))
    ids: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    errors = 0
    for op in operations:
        if fail_on_errors is not None and errors >= fail_on_errors:
            break
        outcome = await _one(service, op, ids, base_url)
        if int(outcome["status"]) >= 400:
            errors += 1
        results.append(outcome)
    return {"schemas": [BULK_RESPONSE], "Operations": results}


def _fail_on_errors(value: Any) -> int | None:
    """failOnErrors is an integer (RFC 7644 §3.7.3); integral strings are taken as clients send
    them. Anything else is the client's error, not ours."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidValue(f"failOnErrors must be a non-negative integer, got {value!r:.40}")
    return value


async def _one(service: ScimService, op: Any, ids: dict[str, str], base_url: str) -> dict[str, Any]:
    method = str(op.get("method", "")).upper() if isinstance(op, dict) else ""
    bulk_id = op.get("bulkId") if isinstance(op, dict) else None
    out: dict[str, Any] = {"method": method}
    if bulk_id is not None:
        out["bulkId"] = bulk_id
    try:
        if method not in ("POST", "PUT", "PATCH", "DELETE"):
            raise InvalidSyntax(f"unsupported bulk method {method!r:.40}")
        if bulk_id is not None and not isinstance(bulk_id, str):
            raise InvalidValue("bulkId must be a string")
        version = op.get("version")
        if version is not None and not isinstance(version, str):
            raise InvalidValue("version must be a string (an ETag)")
        match = _PATH.match(_resolve(str(op.get("path", "")), ids))
        if match is None:
            raise InvalidValue(f"bad bulk path {op.get('path')!r}: use /Users[/id] or /Groups[/id]")
        kind, resource_id = KINDS[match.group(1)], match.group(2)
        data = _resolve(op.get("data"), ids)
        if method == "POST":
            if resource_id or bulk_id is None:
                raise InvalidValue("a bulk POST needs a bulkId and a path without an id")
            result = await service.create(kind, data, base_url=base_url)
            ids[bulk_id] = result.body["id"]
            out.update(location=result.location, version=result.etag, status="201")
            return out
        if not resource_id:
            raise InvalidValue(f"a bulk {method} needs a path with an id")
        out["location"] = f"{base_url}/{kind.endpoint}/{resource_id}"
        if method == "DELETE":
            await service.delete(kind, resource_id, if_match=version)
            out["status"] = "204"
            return out
        call = service.replace if method == "PUT" else service.patch
        result = await call(kind, resource_id, data, base_url=base_url, if_match=version)
        out.update(version=result.etag, status="200")
        return out
    except ScimError as exc:
        out.update(status=str(exc.status), response=_error(exc))
        return out
