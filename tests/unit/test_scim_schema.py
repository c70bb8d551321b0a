"""Schema registry and the shipped schema documents (syncsvc.scim.schema, RFC 7643 §7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from syncsvc.scim.schema import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE_USER,
    PROFILE_USER,
    SCHEMA_SCHEMA,
    Attribute,
    ResolvedPath,
    load_schemas,
)

BASE = "https://idp.example/scim/v2"
STATIC = Path(__file__).parents[2] / "syncsvc" / "scim" / "static"
TYPES = {"string", "boolean", "decimal", "integer", "dateTime", "binary", "reference", "complex"}
MUTABILITY = {"readOnly", "readWrite", "immutable", "writeOnly"}
RETURNED = {"always", "never", "default", "request"}
UNIQUENESS = {"none", "server", "global"}


def paths(resource_type: str, path: str) -> tuple[str, str | None] | None:
    """The (attribute, sub-attribute) names a path resolves to, for compact asserts."""
    found = load_schemas().attribute(resource_type, path)
    if found is None:
        return None
    attr, sub = found
    return attr.name, sub.name if sub else None


def check_attribute(raw: dict[str, Any], *, nested: bool) -> None:
    """Assert one §7 attribute definition has every characteristic with a legal value."""
    for key in ("name", "type", "multiValued", "description", "required", "mutability", "returned"):
        assert key in raw, f"{raw.get('name')}: missing {key}"
    assert raw["type"] in TYPES
    assert raw["mutability"] in MUTABILITY
    assert raw["returned"] in RETURNED
    if raw["type"] not in ("complex", "boolean"):
        assert isinstance(raw["caseExact"], bool)
        assert raw["uniqueness"] in UNIQUENESS
    if raw["type"] == "reference":
        assert raw["referenceTypes"], raw["name"]
    if raw["type"] == "complex":
        assert not nested, "RFC 7643 §2.3.8: a complex attribute has no complex sub-attributes"
        assert raw["subAttributes"]
        for sub in raw["subAttributes"]:
            check_attribute(sub, nested=True)
    else:
        assert "subAttributes" not in raw


class TestResolve:
    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            ("userName", ("userName", None)),
            ("username", ("userName", None)),
            ("name.givenName", ("name", "givenName")),
            ("emails.value", ("emails", "value")),
            ("EMAILS.Value", ("emails", "value")),
            ("id", ("id", None)),
            ("meta.lastModified", ("meta", "lastModified")),
            (f"{CORE_USER}:name.givenName", ("name", "givenName")),
            (f"{CORE_USER.upper()}:userName", ("userName", None)),
            (f"{ENTERPRISE_USER}:manager.value", ("manager", "value")),
            (f"{ENTERPRISE_USER}:manager.$ref", ("manager", "$ref")),
            ("department", ("department", None)),
            (f"{PROFILE_USER}:socialLinks.url", ("socialLinks", "url")),
            ("publicProfile.slug", ("publicProfile", "slug")),
        ],
    )
    def test_user_paths_resolve(self, path: str, expected: tuple[str, str | None]) -> None:
        """Plain, dotted, any-case and URN-qualified User paths resolve (RFC 7644 §3.10)."""
        assert expected == paths("User", path)

    @pytest.mark.parametrize(
        "path",
        [
            "nope",
            "name.nope",
            "name.givenName.x",
            "",
            ".",
            f"{ENTERPRISE_USER}:userName",
            f"{CORE_GROUP}:displayName",
            "members",
        ],
    )
    def test_unknown_paths_are_none(self, path: str) -> None:
        """Unknown names, deeper paths and attributes under the wrong URN give None."""
        assert None is load_schemas().attribute("User", path)

    def test_group_paths_resolve(self) -> None:
        """Group attributes, including members.$ref and common attributes, resolve."""
        assert ("members", "$ref") == paths("Group", "members.$ref")
        assert ("displayName", None) == paths("Group", f"{CORE_GROUP}:DISPLAYNAME")
        assert ("externalId", None) == paths("Group", "externalId")

    def test_a_bare_extension_urn_resolves_to_the_schema(self) -> None:
        """A path that is only an extension URN names the whole extension."""
        expected = ResolvedPath(ENTERPRISE_USER, None)

        assert expected == load_schemas().resolve("User", ENTERPRISE_USER.lower())
        assert None is load_schemas().attribute("User", ENTERPRISE_USER)

    def test_resolved_attributes_carry_their_schema(self) -> None:
        """An extension attribute knows its URN; common attributes sit under the core URN."""
        manager = load_schemas().attribute("User", "manager")
        ident = load_schemas().attribute("Group", "id")

        assert manager is not None and ENTERPRISE_USER == manager[0].schema
        assert ident is not None and CORE_GROUP == ident[0].schema


class TestCharacteristics:
    def attr(self, path: str, resource_type: str = "User") -> Attribute:
        found = load_schemas().attribute(resource_type, path)
        assert found is not None
        return found[1] or found[0]

    def test_id_is_readonly_always_caseexact(self) -> None:
        """id is readOnly, returned always, caseExact and server-unique (RFC 7643 §3.1)."""
        ident = self.attr("id")

        assert ("readOnly", "always", True, "server") == (
            ident.mutability,
            ident.returned,
            ident.case_exact,
            ident.uniqueness,
        )

    def test_username_is_required_and_server_unique(self) -> None:
        """userName is required, caseExact false, uniqueness server (RFC 7643 §4.1.1)."""
        user_name = self.attr("userName")

        assert (True, False, "server", "default") == (
            user_name.required,
            user_name.case_exact,
            user_name.uniqueness,
            user_name.returned,
        )

    def test_password_is_writeonly_never_returned(self) -> None:
        """password is writeOnly and returned never (RFC 7643 §4.1.1)."""
        password = self.attr("password")

        assert ("writeOnly", "never") == (password.mutability, password.returned)

    @pytest.mark.parametrize(
        ("path", "resource_type"),
        [
            ("groups", "User"),
            ("groups.value", "User"),
            ("meta", "User"),
            ("meta.version", "Group"),
            ("manager.displayName", "User"),
            ("completeness", "User"),
            ("photo.thumbnail", "User"),
        ],
    )
    def test_readonly_attributes(self, path: str, resource_type: str) -> None:
        """Server-computed attributes are readOnly."""
        assert "readOnly" == self.attr(path, resource_type).mutability

    def test_group_display_name_is_required(self) -> None:
        """A Group needs a displayName (RFC 7643 §4.2)."""
        assert self.attr("displayName", "Group").required

    def test_members_reference_users_and_groups(self) -> None:
        """members.$ref references User or Group; members.type offers both as canonical values."""
        assert ("User", "Group") == self.attr("members.$ref", "Group").reference_types
        assert ("User", "Group") == self.attr("members.type", "Group").canonical_values

    def test_profile_types(self) -> None:
        """The profile extension's attributes have the documented types and plurality."""
        actual = {
            path: (self.attr(path).type, self.attr(path).multi_valued)
            for path in (
                "headline",
                "bio",
                "skills",
                "socialLinks",
                "socialLinks.url",
                "photo",
                "publicProfile.enabled",
                "completeness",
                "pronouns",
            )
        }

        assert {
            "headline": ("string", False),
            "bio": ("string", False),
            "skills": ("string", True),
            "socialLinks": ("complex", True),
            "socialLinks.url": ("reference", False),
            "photo": ("complex", False),
            "publicProfile.enabled": ("boolean", False),
            "completeness": ("integer", False),
            "pronouns": ("string", False),
        } == actual

    def test_user_core_has_every_rfc_attribute(self) -> None:
        """The core User schema lists every attribute of RFC 7643 §4.1, in order."""
        names = [a.name for a in load_schemas().resource("User").attributes[CORE_USER]]

        assert [
            "id",
            "externalId",
            "meta",
            "userName",
            "name",
            "displayName",
            "nickName",
            "profileUrl",
            "title",
            "userType",
            "preferredLanguage",
            "locale",
            "timezone",
            "active",
            "password",
            "emails",
            "phoneNumbers",
            "ims",
            "photos",
            "addresses",
            "groups",
            "entitlements",
            "roles",
            "x509Certificates",
        ] == names


class TestDocuments:
    @pytest.mark.parametrize(
        "fname", ["User.json", "Group.json", "EnterpriseUser.json", "ProfileUser.json"]
    )
    def test_shipped_documents_have_the_section_7_shape(self, fname: str) -> None:
        """Every schema document has id, name, description, attributes with all characteristics."""
        doc = json.loads((STATIC / fname).read_text(encoding="utf-8"))

        assert [SCHEMA_SCHEMA] == doc["schemas"]
        assert doc["id"].startswith("urn:")
        assert doc["name"] and doc["description"]
        for attr in doc["attributes"]:
            check_attribute(attr, nested=False)

    def test_common_attributes_have_the_section_7_shape(self) -> None:
        """id, externalId and meta are defined with every characteristic too."""
        doc = json.loads((STATIC / "common.json").read_text(encoding="utf-8"))

        assert ["id", "externalId", "meta"] == [a["name"] for a in doc["attributes"]]
        for attr in doc["attributes"]:
            check_attribute(attr, nested=False)

    def test_schema_documents_list_all_four_with_locations(self) -> None:
        """/Schemas lists each schema with meta.resourceType Schema and an absolute location."""
        docs = load_schemas().schema_documents(BASE + "/")

        assert [CORE_USER, CORE_GROUP, ENTERPRISE_USER, PROFILE_USER] == [d["id"] for d in docs]
        assert [
            {"resourceType": "Schema", "location": f"{BASE}/Schemas/{d['id']}"} for d in docs
        ] == [d["meta"] for d in docs]

    def test_schema_documents_do_not_list_common_attributes(self) -> None:
        """Common attributes are not part of any schema (RFC 7643 §3.1)."""
        doc = load_schemas().schema_document(CORE_USER, BASE)

        assert doc is not None
        assert "id" not in [a["name"] for a in doc["attributes"]]

    def test_schema_document_by_urn_in_any_case(self) -> None:
        """One schema document is found by its URN regardless of case; unknown gives None."""
        doc = load_schemas().schema_document(ENTERPRISE_USER.upper(), BASE)

        assert doc is not None and ENTERPRISE_USER == doc["id"]
        assert None is load_schemas().schema_document("urn:nope", BASE)

    def test_served_documents_are_copies(self) -> None:
        """Mutating a served document does not change the registry."""
        load_schemas().schema_documents(BASE)[0]["attributes"].clear()

        assert load_schemas().schema_documents(BASE)[0]["attributes"]


class TestRegistry:
    def test_load_is_cached(self) -> None:
        """The registry is built once."""
        assert load_schemas() is load_schemas()

    def test_resource_types(self) -> None:
        """User carries both extensions; Group none; lookup ignores case."""
        user = load_schemas().resource("user")
        group = load_schemas().resource("Group")

        assert ("User", "/Users", CORE_USER, (ENTERPRISE_USER, PROFILE_USER)) == (
            user.name,
            user.endpoint,
            user.core,
            user.extensions,
        )
        assert ("Group", "/Groups", CORE_GROUP, ()) == (
            group.name,
            group.endpoint,
            group.core,
            group.extensions,
        )

    def test_unknown_resource_type_raises_keyerror(self) -> None:
        """An unknown resource type is a programming error, not a client error."""
        with pytest.raises(KeyError):
            load_schemas().resource("Device")
