"""attributes / excludedAttributes projection (syncsvc.scim.projection, RFC 7644 §3.4.2.5)."""

from __future__ import annotations

from typing import Any

import pytest

from syncsvc.scim.projection import needs, project
from syncsvc.scim.schema import CORE_GROUP, CORE_USER, ENTERPRISE_USER, PROFILE_USER

META = {
    "resourceType": "User",
    "created": "2024-01-01T00:00:00Z",
    "lastModified": "2024-01-02T00:00:00Z",
    "location": "https://x/Users/1",
    "version": 'W/"3"',
}


def user() -> dict[str, Any]:
    """A full User representation as the routes would build it."""
    return {
        "schemas": [CORE_USER, ENTERPRISE_USER, PROFILE_USER],
        "id": "1",
        "externalId": "anchor-1",
        "userName": "bjensen",
        "password": "secret",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs",
        "active": True,
        "emails": [
            {"value": "b@example.com", "type": "work", "primary": True},
            {"value": "b@home.example", "type": "home"},
        ],
        "groups": [{"value": "g1", "display": "eng", "$ref": "https://x/Groups/g1"}],
        "meta": META,
        ENTERPRISE_USER: {"department": "R&D", "manager": {"value": "2", "displayName": "Boss"}},
        PROFILE_USER: {"headline": "Builder", "skills": ["python"]},
    }


def group() -> dict[str, Any]:
    """A Group with members."""
    return {
        "schemas": [CORE_GROUP],
        "id": "g1",
        "displayName": "eng",
        "members": [{"value": "1", "type": "User", "display": "Babs"}],
        "meta": {"resourceType": "Group"},
    }


class TestDefaults:
    def test_without_parameters_default_attributes_are_returned(self) -> None:
        """No parameters: everything but returned-never attributes (password)."""
        expected = user()
        del expected["password"]

        assert expected == project(user(), "User", attributes=None, excluded=None)

    def test_password_is_never_returned_even_when_asked(self) -> None:
        """returned: never wins over attributes=password."""
        assert {"schemas": [CORE_USER], "id": "1"} == project(
            user(), "User", attributes=["password"], excluded=None
        )

    def test_unknown_schema_extension_urns_are_pruned(self) -> None:
        """schemas lists only the extensions present in the result."""
        resource = user()
        del resource[PROFILE_USER]

        assert [CORE_USER, ENTERPRISE_USER] == project(
            resource, "User", attributes=None, excluded=None
        )["schemas"]


class TestAttributes:
    def test_only_named_plus_always(self) -> None:
        """attributes=userName gives userName plus id and schemas, not meta."""
        assert {"schemas": [CORE_USER], "id": "1", "userName": "bjensen"} == project(
            user(), "User", attributes=["userName"], excluded=None
        )

    def test_names_are_case_insensitive_and_comma_lists_split(self) -> None:
        """ "USERNAME,displayname" works like the canonical names."""
        assert {
            "schemas": [CORE_USER],
            "id": "1",
            "userName": "bjensen",
            "displayName": "Babs",
        } == project(user(), "User", attributes=["USERNAME,displayname"], excluded=None)

    def test_sub_attribute_keeps_only_that_part(self) -> None:
        """name.givenName keeps name with only givenName; emails.value strips other subs."""
        assert {
            "schemas": [CORE_USER],
            "id": "1",
            "name": {"givenName": "Barbara"},
            "emails": [{"value": "b@example.com"}, {"value": "b@home.example"}],
        } == project(user(), "User", attributes=["name.givenName", "emails.value"], excluded=None)

    def test_parent_and_sub_named_keeps_the_whole_parent(self) -> None:
        """Naming name and name.givenName keeps all of name."""
        assert {"givenName": "Barbara", "familyName": "Jensen"} == project(
            user(), "User", attributes=["name.givenName", "name"], excluded=None
        )["name"]

    def test_urn_qualified_extension_attribute_keeps_its_urn_in_schemas(self) -> None:
        """Only an extension attribute kept: its URN stays in schemas."""
        assert {
            "schemas": [CORE_USER, ENTERPRISE_USER],
            "id": "1",
            ENTERPRISE_USER: {"manager": {"value": "2"}},
        } == project(user(), "User", attributes=[f"{ENTERPRISE_USER}:manager.value"], excluded=None)

    def test_unqualified_extension_attribute(self) -> None:
        """An extension attribute is found without its URN too."""
        assert {"headline": "Builder"} == project(
            user(), "User", attributes=["headline"], excluded=None
        )[PROFILE_USER]

    def test_whole_extension_by_urn(self) -> None:
        """Naming the extension URN keeps the whole extension object."""
        assert {
            "schemas": [CORE_USER, ENTERPRISE_USER],
            "id": "1",
            ENTERPRISE_USER: user()[ENTERPRISE_USER],
        } == project(user(), "User", attributes=[ENTERPRISE_USER], excluded=None)

    def test_urn_qualified_core_attribute(self) -> None:
        """A core attribute may be qualified with the core URN."""
        assert (
            "bjensen"
            == project(user(), "User", attributes=[f"{CORE_USER}:userName"], excluded=None)[
                "userName"
            ]
        )

    def test_meta_sub_attribute(self) -> None:
        """meta.version can be asked for on its own."""
        assert {"version": 'W/"3"'} == project(
            user(), "User", attributes=["meta.version"], excluded=None
        )["meta"]

    def test_unknown_names_are_ignored(self) -> None:
        """An unknown name is not an error; it just selects nothing."""
        assert {"schemas": [CORE_USER], "id": "1"} == project(
            user(), "User", attributes=["nope", "name.nope"], excluded=None
        )


class TestExcluded:
    def test_excluded_removes_from_defaults(self) -> None:
        """excludedAttributes=emails,meta removes those and keeps the rest."""
        result = project(user(), "User", attributes=None, excluded=["emails", "meta"])

        assert "emails" not in result and "meta" not in result
        assert "bjensen" == result["userName"]

    def test_always_attributes_cannot_be_excluded(self) -> None:
        """id and schemas survive excludedAttributes=id,schemas."""
        result = project(user(), "User", attributes=None, excluded=["id", "schemas"])

        assert ("1", CORE_USER) == (result["id"], result["schemas"][0])

    def test_excluded_sub_attribute(self) -> None:
        """Excluding name.givenName keeps name's other parts; emails.type strips type."""
        result = project(
            user(), "User", attributes=None, excluded=["name.givenName", "emails.type"]
        )

        assert {"familyName": "Jensen"} == result["name"]
        assert [{"value": "b@example.com", "primary": True}, {"value": "b@home.example"}] == result[
            "emails"
        ]

    def test_excluded_extension_drops_its_urn(self) -> None:
        """Excluding a whole extension drops its object and its URN from schemas."""
        result = project(user(), "User", attributes=None, excluded=[ENTERPRISE_USER])

        assert ENTERPRISE_USER not in result
        assert [CORE_USER, PROFILE_USER] == result["schemas"]

    def test_excluding_every_extension_attribute_drops_the_urn(self) -> None:
        """When nothing of an extension remains, its URN goes too."""
        result = project(user(), "User", attributes=None, excluded=["headline", "skills"])

        assert PROFILE_USER not in result["schemas"]

    def test_attributes_then_excluded(self) -> None:
        """Both given: the inclusion applies first, then the exclusion."""
        assert {"schemas": [CORE_USER], "id": "1", "name": {"familyName": "Jensen"}} == project(
            user(), "User", attributes=["name"], excluded=["name.givenName"]
        )

    def test_group_members_excluded(self) -> None:
        """excludedAttributes=members drops the member list from a Group."""
        assert {
            "schemas": [CORE_GROUP],
            "id": "g1",
            "displayName": "eng",
            "meta": {"resourceType": "Group"},
        } == project(group(), "Group", attributes=None, excluded=["members"])


class TestNeeds:
    @pytest.mark.parametrize(
        ("resource_type", "attributes", "excluded", "expected"),
        [
            ("Group", None, None, {"members"}),
            ("Group", None, ["members"], set()),
            ("Group", None, ["MEMBERS"], set()),
            ("Group", None, ["members.display"], {"members"}),
            ("Group", ["displayName"], None, set()),
            ("Group", ["members.value"], None, {"members"}),
            ("User", None, None, {"groups", "manager"}),
            ("User", ["userName"], None, set()),
            ("User", None, ["groups"], {"manager"}),
            ("User", None, [ENTERPRISE_USER], {"groups"}),
            ("User", [f"{ENTERPRISE_USER}:manager.displayName"], None, {"manager"}),
            ("User", [ENTERPRISE_USER], None, {"manager"}),
            ("User", None, ["manager.value", "manager.$ref", "manager.displayName"], {"groups"}),
            ("User", None, ["manager.value", "manager.$ref"], {"groups", "manager"}),
        ],
    )
    def test_needs(
        self,
        resource_type: str,
        attributes: list[str] | None,
        excluded: list[str] | None,
        expected: set[str],
    ) -> None:
        """needs() names the expensive parts the response will show, and only those."""
        assert frozenset(expected) == needs(resource_type, attributes, excluded)
