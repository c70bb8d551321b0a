"""POST/PUT body validation and value coercion (syncsvc.scim.validate)."""

from __future__ import annotations

from typing import Any

import pytest

from syncsvc.errors import InvalidSyntax, InvalidValue, ScimError
from syncsvc.scim.schema import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE_USER,
    PROFILE_USER,
    Attribute,
    load_schemas,
)
from syncsvc.scim.validate import coerce_value, validate_resource


def body(**attrs: Any) -> dict[str, Any]:
    """A minimal valid User body plus ``attrs``."""
    return {"schemas": [CORE_USER], "userName": "bjensen", **attrs}


def clean(raw: dict[str, Any], resource_type: str = "User") -> dict[str, Any]:
    """Validate a POST body."""
    return validate_resource(raw, resource_type, for_update=False)


def fails(raw: Any, error: type[ScimError], *, resource_type: str = "User") -> str:
    """Validate expecting ``error``; return its detail."""
    with pytest.raises(error) as info:
        validate_resource(raw, resource_type, for_update=False)
    assert type(info.value) is error
    return info.value.detail


def attr(path: str) -> Attribute:
    """The User attribute (or sub-attribute) at ``path``."""
    found = load_schemas().attribute("User", path)
    assert found is not None
    return found[1] or found[0]


class TestStructure:
    def test_minimal_user(self) -> None:
        """A body with schemas and userName passes unchanged."""
        assert {"schemas": [CORE_USER], "userName": "bjensen"} == clean(body())

    def test_minimal_group(self) -> None:
        """A Group needs only displayName; members keep value and type."""
        raw = {
            "schemas": [CORE_GROUP],
            "displayName": "eng",
            "members": [{"value": "1", "type": "User", "display": "Babs"}],
        }

        assert {
            "schemas": [CORE_GROUP],
            "displayName": "eng",
            "members": [{"value": "1", "type": "User"}],
        } == clean(raw, "Group")

    @pytest.mark.parametrize("raw", [[], "x", None, 3])
    def test_body_must_be_an_object(self, raw: Any) -> None:
        """A body that is not a JSON object is invalidSyntax."""
        assert "object" in fails(raw, InvalidSyntax)

    @pytest.mark.parametrize(
        "schemas", [None, [], [CORE_GROUP], [ENTERPRISE_USER], [1], {"a": CORE_USER}]
    )
    def test_schemas_must_list_the_core_urn(self, schemas: Any) -> None:
        """schemas missing, malformed or without the core URN is invalidSyntax naming it."""
        raw = {"userName": "x"} if schemas is None else {"schemas": schemas, "userName": "x"}

        assert CORE_USER in fails(raw, InvalidSyntax)

    def test_schemas_match_any_case_and_a_bare_string(self) -> None:
        """The core URN is matched case-insensitively and may come as a single string."""
        raw = {"Schemas": CORE_USER.upper(), "userName": "x"}

        assert {"schemas": [CORE_USER], "userName": "x"} == clean(raw)

    def test_unknown_top_level_attribute_is_refused(self) -> None:
        """An unknown non-URN attribute is invalidSyntax naming it (strict on typos)."""
        assert "'usrName'" in fails(body(usrName="x"), InvalidSyntax)

    def test_unknown_sub_attribute_is_refused(self) -> None:
        """An unknown sub-attribute is invalidSyntax naming the path."""
        assert "'nick' of 'name'" in fails(body(name={"nick": "B"}), InvalidSyntax)

    def test_unknown_attribute_inside_a_known_extension_is_refused(self) -> None:
        """Inside a known extension the schema is strict too."""
        detail = fails(body(**{ENTERPRISE_USER: {"team": "x"}}), InvalidSyntax)

        assert "'team'" in detail and ENTERPRISE_USER in detail

    def test_unknown_extensions_are_ignored(self) -> None:
        """Unknown URN keys and URNs in schemas are dropped, not refused (RFC 7644 §3.3)."""
        other = "urn:example:params:scim:schemas:extension:custom:2.0:User"
        raw = {"schemas": [CORE_USER, other], "userName": "x", other: {"a": 1}, f"{other}:b": 2}

        assert {"schemas": [CORE_USER], "userName": "x"} == clean(raw)

    def test_duplicate_names_in_different_case_are_refused(self) -> None:
        """userName and USERNAME in one body is ambiguous: invalidSyntax."""
        assert "'userName'" in fails(body(USERNAME="y"), InvalidSyntax)

    def test_names_come_back_canonical(self) -> None:
        """Attribute names in any case are returned in their canonical case."""
        raw = {
            "SCHEMAS": [CORE_USER],
            "USERNAME": "x",
            "Name": {"GIVENNAME": "B"},
            "EMAILS": [{"VALUE": "b@x", "Primary": True}],
        }

        assert {
            "schemas": [CORE_USER],
            "userName": "x",
            "name": {"givenName": "B"},
            "emails": [{"value": "b@x", "primary": True}],
        } == clean(raw)

    def test_nulls_are_unassigned(self) -> None:
        """null values are dropped (RFC 7643 §2.5)."""
        assert {"schemas": [CORE_USER], "userName": "x"} == clean(
            {"schemas": [CORE_USER], "userName": "x", "displayName": None, "name": None}
        )


class TestReadOnly:
    def test_readonly_attributes_are_dropped_silently(self) -> None:
        """id, meta, groups, manager.displayName and profile completeness are ignored."""
        raw = body(
            id="abc",
            meta={"version": "x"},
            groups=[{"value": "g"}],
            **{
                ENTERPRISE_USER: {"manager": {"value": "2", "displayName": "Boss"}},
                PROFILE_USER: {
                    "completeness": 90,
                    "photo": {"url": "https://p/x.jpg", "thumbnail": "https://t"},
                },
            },
        )

        assert {
            "schemas": [CORE_USER, ENTERPRISE_USER, PROFILE_USER],
            "userName": "bjensen",
            ENTERPRISE_USER: {"manager": {"value": "2"}},
            PROFILE_USER: {"photo": {"url": "https://p/x.jpg"}},
        } == clean(raw)

    def test_readonly_dropped_on_update_too(self) -> None:
        """A PUT body carrying id and meta validates the same way."""
        assert {"schemas": [CORE_USER], "userName": "x"} == validate_resource(
            {"schemas": [CORE_USER], "userName": "x", "id": "1", "meta": {}},
            "User",
            for_update=True,
        )


class TestRequired:
    @pytest.mark.parametrize("user_name", [None, "", "   "])
    def test_user_name_is_required(self, user_name: str | None) -> None:
        """A missing or blank userName is invalidValue naming it."""
        raw: dict[str, Any] = {"schemas": [CORE_USER]}
        if user_name is not None:
            raw["userName"] = user_name

        assert "'userName'" in fails(raw, InvalidValue)

    def test_group_display_name_is_required(self) -> None:
        """A Group without displayName is invalidValue naming it."""
        assert "'displayName'" in fails(
            {"schemas": [CORE_GROUP]}, InvalidValue, resource_type="Group"
        )

    def test_required_on_update(self) -> None:
        """PUT replaces the resource, so required attributes are required there too."""
        with pytest.raises(InvalidValue):
            validate_resource({"schemas": [CORE_USER]}, "User", for_update=True)


class TestTypes:
    @pytest.mark.parametrize(
        ("attrs", "name"),
        [
            ({"active": "yes"}, "active"),
            ({"active": 1}, "active"),
            ({"displayName": True}, "displayName"),
            ({"displayName": {"a": 1}}, "displayName"),
            ({"name": "Barbara"}, "name"),
            ({"name": [{"givenName": "B"}]}, "name"),
            ({"emails": [{"value": 5.5j}]}, "emails.value"),
            ({"emails": [{"primary": "maybe"}]}, "emails.primary"),
            ({"x509Certificates": [{"value": "not base64!"}]}, "x509Certificates.value"),
        ],
    )
    def test_wrong_types_are_invalid_value(self, attrs: dict[str, Any], name: str) -> None:
        """A value of the wrong type is invalidValue with a detail naming the attribute."""
        assert f"'{name}'" in fails(body(**attrs), InvalidValue)

    def test_readonly_values_are_not_type_checked(self) -> None:
        """A readOnly attribute is dropped before its type matters."""
        assert [CORE_USER] == clean(body(**{PROFILE_USER: {"completeness": "x"}}))["schemas"]

    def test_profile_integer_and_datetime(self) -> None:
        """Integers and dateTimes are checked where the schema has them."""
        integer = attr("completeness")
        created = load_schemas().attribute("User", "meta.created")
        assert created is not None and created[1] is not None

        assert 42 == coerce_value(integer, "42")
        assert 42 == coerce_value(integer, 42.0)
        assert "2024-05-01T10:00:00Z" == coerce_value(created[1], "2024-05-01T10:00:00Z")
        with pytest.raises(InvalidValue):
            coerce_value(created[1], "yesterday")
        with pytest.raises(InvalidValue):
            coerce_value(integer, True)

    def test_two_primary_values_are_refused(self) -> None:
        """At most one primary: true per multi-valued attribute (RFC 7643 §2.4)."""
        raw = body(emails=[{"value": "a@x", "primary": True}, {"value": "b@x", "primary": True}])

        assert "'emails'" in fails(raw, InvalidValue)

    def test_canonical_values_are_not_enforced(self) -> None:
        """emails.type outside work/home/other is accepted as sent."""
        assert [{"value": "a@x", "type": "school"}] == clean(
            body(emails=[{"value": "a@x", "type": "school"}])
        )["emails"]


class TestQuirks:
    @pytest.mark.parametrize(
        ("sent", "expected"), [("True", True), ("FALSE", False), ("true", True), (" false ", False)]
    )
    def test_boolean_strings(self, sent: str, expected: bool) -> None:
        """Entra ID's "True"/"False" strings become booleans, in any case."""
        assert expected is clean(body(active=sent))["active"]

    def test_single_complex_value_is_wrapped(self) -> None:
        """A single object where an array is expected becomes a one-item array."""
        assert [{"value": "a@x", "type": "work"}] == clean(
            body(emails={"value": "a@x", "type": "work"})
        )["emails"]

    def test_single_string_for_a_multi_valued_string_is_wrapped(self) -> None:
        """skills: "python" becomes ["python"]."""
        assert {"skills": ["python"]} == clean(body(**{PROFILE_USER: {"skills": "python"}}))[
            PROFILE_USER
        ]

    def test_bare_manager_string(self) -> None:
        """Enterprise manager as a bare string becomes {"value": s}."""
        assert {"manager": {"value": "42"}} == clean(body(**{ENTERPRISE_USER: {"manager": "42"}}))[
            ENTERPRISE_USER
        ]

    def test_manager_with_empty_value_is_unassigned(self) -> None:
        """{"value": ""} clears the manager instead of storing an empty id."""
        result = clean(body(**{ENTERPRISE_USER: {"manager": {"value": ""}}}))

        assert [CORE_USER] == result["schemas"]
        assert ENTERPRISE_USER not in result

    def test_numbers_for_strings(self) -> None:
        """employeeNumber: 12345 becomes "12345"."""
        assert {"employeeNumber": "12345"} == clean(
            body(**{ENTERPRISE_USER: {"employeeNumber": 12345}})
        )[ENTERPRISE_USER]

    def test_flat_urn_qualified_keys(self) -> None:
        """A flat "urn:...:User:department" key lands in the extension object."""
        raw = body(
            **{f"{ENTERPRISE_USER}:department": "R&D", f"{ENTERPRISE_USER}:manager.value": "7"}
        )

        assert {"department": "R&D", "manager": {"value": "7"}} == clean(raw)[ENTERPRISE_USER]

    def test_extension_missing_from_schemas_is_added(self) -> None:
        """An extension object whose URN is missing from schemas is kept and listed."""
        assert [CORE_USER, ENTERPRISE_USER] == clean(
            body(**{ENTERPRISE_USER: {"department": "x"}})
        )["schemas"]


class TestProfileLimits:
    def profile(self, **attrs: Any) -> dict[str, Any]:
        return body(**{PROFILE_USER: attrs})

    @pytest.mark.parametrize(
        ("attrs", "name"),
        [
            ({"headline": "h" * 201}, "headline"),
            ({"bio": "b" * 2001}, "bio"),
            ({"skills": ["s"] * 51}, "skills"),
            ({"languages": ["l" * 101]}, "languages"),
            ({"interests": ["i"] * 51}, "interests"),
            ({"socialLinks": [{"type": "x", "url": "javascript:alert(1)"}]}, "socialLinks.url"),
            ({"socialLinks": [{"type": "x", "url": "https://"}]}, "socialLinks.url"),
            ({"socialLinks": [{"url": "https://x.example"}] * 51}, "socialLinks"),
            ({"publicProfile": {"slug": "ab"}}, "publicProfile.slug"),
            ({"publicProfile": {"slug": "Has-Caps"}}, "publicProfile.slug"),
            ({"publicProfile": {"slug": "x" * 65}}, "publicProfile.slug"),
            ({"photo": {"url": "ftp://x.example/p.jpg"}}, "photo.url"),
        ],
    )
    def test_limits(self, attrs: dict[str, Any], name: str) -> None:
        """Values over the profile limits are invalidValue naming the attribute."""
        assert f"{PROFILE_USER}:{name}'" in fails(self.profile(**attrs), InvalidValue)

    def test_values_at_the_limits_pass(self) -> None:
        """Values exactly at the limits are accepted."""
        attrs = {
            "headline": "h" * 200,
            "bio": "b" * 2000,
            "skills": ["s" * 100] * 50,
            "socialLinks": [{"type": "github", "url": "https://github.com/b"}],
            "publicProfile": {"enabled": "true", "slug": "b-jensen-2"},
        }

        expected = dict(attrs, publicProfile={"enabled": True, "slug": "b-jensen-2"})
        assert expected == clean(self.profile(**attrs))[PROFILE_USER]


class TestCoerceValue:
    def test_sub_attribute(self) -> None:
        """PATCH on name.givenName coerces against the sub-attribute."""
        assert "B" == coerce_value(attr("name.givenName"), "B")

    def test_multi_valued_add(self) -> None:
        """A single email object for emails is wrapped into a list with canonical names."""
        assert [{"value": "a@x", "type": "work"}] == coerce_value(
            attr("emails"), {"VALUE": "a@x", "type": "work"}
        )

    def test_readonly_sub_attributes_are_dropped(self) -> None:
        """manager.displayName inside a PATCH value is ignored."""
        assert {"value": "2"} == coerce_value(attr("manager"), {"value": "2", "displayName": "B"})

    def test_detail_names_the_attribute(self) -> None:
        """A coercion error names the attribute, URN-qualified for extensions."""
        with pytest.raises(InvalidValue) as info:
            coerce_value(attr("headline"), "h" * 201)

        assert f"'{PROFILE_USER}:headline'" in info.value.detail

    def test_none_is_unassigned(self) -> None:
        """None stays None (the PATCH engine treats it as a removal)."""
        assert None is coerce_value(attr("displayName"), None)

    def test_list_for_a_single_valued_attribute_is_refused(self) -> None:
        """An array where one value is expected is invalidValue."""
        with pytest.raises(InvalidValue):
            coerce_value(attr("displayName"), ["a", "b"])
