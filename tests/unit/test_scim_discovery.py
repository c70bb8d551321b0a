"""ServiceProviderConfig and ResourceTypes documents (syncsvc.scim.discovery)."""

from __future__ import annotations

from typing import Any

import pytest

from syncsvc.scim.discovery import (
    RESOURCE_TYPE_SCHEMA,
    SERVICE_PROVIDER_CONFIG_SCHEMA,
    resource_type,
    resource_types,
    service_provider_config,
)
from syncsvc.scim.schema import CORE_GROUP, CORE_USER, ENTERPRISE_USER, PROFILE_USER

BASE = "https://idp.example/scim/v2"


def config(**overrides: Any) -> dict[str, Any]:
    """A ServiceProviderConfig with test limits."""
    args: dict[str, Any] = {
        "max_results": 200,
        "bulk_max_operations": 100,
        "bulk_max_payload": 1_048_576,
    }
    args.update(overrides)
    return service_provider_config(BASE, **args)


class TestServiceProviderConfig:
    def test_defaults(self) -> None:
        """Every RFC 7643 §5 member is present with the announced capabilities."""
        doc = config()

        assert [SERVICE_PROVIDER_CONFIG_SCHEMA] == doc["schemas"]
        assert {"supported": True} == doc["patch"]
        assert {"supported": True, "maxOperations": 100, "maxPayloadSize": 1_048_576} == doc["bulk"]
        assert {"supported": True, "maxResults": 200} == doc["filter"]
        assert {"supported": False} == doc["changePassword"]
        assert {"supported": True} == doc["sort"]
        assert {"supported": True} == doc["etag"]
        assert {
            "resourceType": "ServiceProviderConfig",
            "location": f"{BASE}/ServiceProviderConfig",
        } == doc["meta"]

    def test_pagination_announces_cursor_per_rfc_9865(self) -> None:
        """The pagination member uses RFC 9865 §4 names; index stays the default method."""
        doc = config(default_page_size=50, cursor_timeout=300)

        assert {
            "cursor": True,
            "index": True,
            "defaultPaginationMethod": "index",
            "defaultPageSize": 50,
            "maxPageSize": 200,
            "cursorTimeout": 300,
        } == doc["pagination"]

    def test_without_cursor(self) -> None:
        """Switching cursors off says so and drops cursorTimeout."""
        pagination = config(cursor=False)["pagination"]

        assert (False, True) == (pagination["cursor"], pagination["index"])
        assert "cursorTimeout" not in pagination

    def test_default_page_size_never_exceeds_the_maximum(self) -> None:
        """defaultPageSize is clamped to maxPageSize."""
        assert 10 == config(max_results=10)["pagination"]["defaultPageSize"]

    def test_flags_are_reported(self) -> None:
        """Each capability flag ends up in its member; zero bulk operations means unsupported."""
        doc = config(
            etag=False,
            patch=False,
            sort=False,
            filter=False,
            change_password=True,
            bulk_max_operations=0,
        )

        assert (False, False, False, False, True, False) == (
            doc["etag"]["supported"],
            doc["patch"]["supported"],
            doc["sort"]["supported"],
            doc["filter"]["supported"],
            doc["changePassword"]["supported"],
            doc["bulk"]["supported"],
        )

    def test_bearer_token_is_the_primary_scheme(self) -> None:
        """One authentication scheme: oauthbearertoken, primary (RFC 7643 §5)."""
        schemes = config()["authenticationSchemes"]

        assert ["oauthbearertoken"] == [s["type"] for s in schemes]
        assert schemes[0]["primary"] is True
        assert schemes[0]["name"] and schemes[0]["description"]


class TestResourceTypes:
    def test_user_and_group(self) -> None:
        """User (with both extensions, not required) and Group, per RFC 7643 §6."""
        user, group = resource_types(BASE + "/")

        assert {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": CORE_USER,
            "schemaExtensions": [
                {"schema": ENTERPRISE_USER, "required": False},
                {"schema": PROFILE_USER, "required": False},
            ],
            "meta": {"resourceType": "ResourceType", "location": f"{BASE}/ResourceTypes/User"},
        } == user
        assert {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Group",
            "schema": CORE_GROUP,
            "meta": {"resourceType": "ResourceType", "location": f"{BASE}/ResourceTypes/Group"},
        } == group

    def test_one_by_name(self) -> None:
        """A single resource type by name, any case; unknown raises KeyError."""
        assert "Group" == resource_type("group", BASE)["id"]
        with pytest.raises(KeyError):
            resource_type("Device", BASE)
