"""The discovery documents: ``/ServiceProviderConfig`` and ``/ResourceTypes``.

RFC 7644 §4 defines the endpoints, RFC 7643 §5 and §6 the document shapes; RFC 9865 §4 adds the
``pagination`` member that announces cursor pagination. The documents are built from arguments
(the effective settings), so they always tell the truth about what the server does.
``/Schemas`` is served from :meth:`syncsvc.scim.schema.SchemaRegistry.schema_documents`.
"""

from __future__ import annotations

from typing import Any

from syncsvc.scim.schema import load_schemas

__all__ = [
    "RESOURCE_TYPE_SCHEMA",
    "SERVICE_PROVIDER_CONFIG_SCHEMA",
    "resource_type",
    "resource_types",
    "service_provider_config",
]

SERVICE_PROVIDER_CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"


def service_provider_config(
    base_url: str,
    *,
    max_results: int,
    bulk_max_operations: int,
    bulk_max_payload: int,
    etag: bool = True,
    patch: bool = True,
    sort: bool = True,
    filter: bool = True,  # shadows the builtin: the RFC names the member so
    change_password: bool = False,
    cursor: bool = True,
    default_page_size: int = 100,
    max_page_size: int | None = None,
    cursor_timeout: int = 600,
) -> dict[str, Any]:
    """The ServiceProviderConfig document (RFC 7643 §5, RFC 9865 §4).

    ``base_url`` is the SCIM root, e.g. ``https://host/scim/v2``. ``max_page_size`` defaults
    to ``max_results``; ``cursor_timeout`` is in seconds. Index pagination is always offered
    and stays the default method (RFC 9865 §4: existing index-based providers keep index as
    default, which is what Entra ID and Okta expect).
    """
    pagination: dict[str, Any] = {
        "cursor": cursor,
        "index": True,
        "defaultPaginationMethod": "index",
        "defaultPageSize": min(default_page_size, max_page_size or max_results),
        "maxPageSize": max_page_size or max_results,
    }
    if cursor:
        pagination["cursorTimeout"] = cursor_timeout
    return {
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": {"supported": patch},
        "bulk": {
            "supported": bulk_max_operations > 0,
            "maxOperations": bulk_max_operations,
            "maxPayloadSize": bulk_max_payload,
        },
        "filter": {"supported": filter, "maxResults": max_results},
        "changePassword": {"supported": change_password},
        "sort": {"supported": sort},
        "etag": {"supported": etag},
        "pagination": pagination,
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Authentication with a bearer token made by 'syncsvc token create'.",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{_root(base_url)}/ServiceProviderConfig",
        },
    }


def resource_types(base_url: str) -> list[dict[str, Any]]:
    """Every ResourceType document (RFC 7643 §6): User (with extensions) and Group."""
    return [resource_type(name, base_url) for name in load_schemas().resources]


def resource_type(name: str, base_url: str) -> dict[str, Any]:
    """One ResourceType document (``GET /ResourceTypes/{name}``); KeyError when unknown.

    Extensions are ``required: false``: a client may create a User without them.
    """
    schema = load_schemas().resource(name)
    doc: dict[str, Any] = {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": schema.name,
        "name": schema.name,
        "endpoint": schema.endpoint,
        "description": schema.description,
        "schema": schema.core,
    }
    if schema.extensions:
        doc["schemaExtensions"] = [{"schema": ext, "required": False} for ext in schema.extensions]
    doc["meta"] = {
        "resourceType": "ResourceType",
        "location": f"{_root(base_url)}/ResourceTypes/{schema.name}",
    }
    return doc


def _root(base_url: str) -> str:
    return base_url.rstrip("/")
