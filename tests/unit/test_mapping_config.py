"""[mapping] overrides and compile errors (syncsvc.mapping.compile_mapping)."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from syncsvc.domain import LdapEntry, UserRecord
from syncsvc.errors import ConfigError
from syncsvc.mapping import compile_mapping, map_user

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def user(overrides: dict[str, Any], **attributes: str | list[str]) -> dict[str, Any]:
    """The resource mapped from an openldap entry with ``[mapping.user]`` = ``overrides``."""
    values = {k.lower(): tuple(v) if isinstance(v, list) else (v,) for k, v in attributes.items()}
    mapping = compile_mapping("openldap", {"user": overrides})
    record = map_user(LdapEntry("uid=jo,dc=x", "a-1", values), mapping)
    assert isinstance(record, UserRecord)
    return dict(record.resource)


def problems(overrides: dict[str, Any], flavor: str = "openldap") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        compile_mapping(flavor, overrides)
    return list(caught.value.problems)


class TestOverrides:
    def test_add_rule(self) -> None:
        """A new target is added with the shorthand form."""
        assert "jojo" == user({"nickName": "displayName"}, uid="jo", displayName="jojo")["nickName"]

    def test_replace_rule(self) -> None:
        """An override replaces the preset's rule for the same target."""
        resource = user({"title": "personalTitle"}, uid="jo", title="Eng", personalTitle="Dr.")
        assert "Dr." == resource["title"]

    def test_remove_rule(self) -> None:
        """false removes a preset rule."""
        assert "title" not in user({"title": False}, uid="jo", title="Eng")

    def test_template(self) -> None:
        """A template joins first values of named attributes."""
        overrides = {"displayName": {"template": "{givenName} {sn}"}}
        resource = user(overrides, uid="jo", givenName=["Jo", "J"], sn="Doe")
        assert "Jo Doe" == resource["displayName"]

    def test_template_with_missing_attribute_yields_nothing(self) -> None:
        """A template naming an absent attribute gives no value, not an error."""
        overrides = {"displayName": {"template": "{givenName} {sn}"}}
        assert "displayName" not in user(overrides, uid="jo", sn="Doe")

    def test_template_then_transform(self) -> None:
        """Transforms run on the rendered template."""
        overrides = {"emails[home]": {"template": "{uid}@Home.Example", "transform": ["lower"]}}
        expected = {"value": "jo@home.example", "type": "home"}
        assert expected == user(overrides, uid="jo")["emails"][0]

    def test_fallback_list(self) -> None:
        """from = [a, b] uses the first attribute that has a value."""
        overrides = {"nickName": {"from": ["nickName", "cn"]}}
        assert ("Jo", "Joey") == (
            user(overrides, uid="jo", cn="Jo")["nickName"],
            user(overrides, uid="jo", cn="Jo", nickName="Joey")["nickName"],
        )

    def test_enterprise_alias_and_urn(self) -> None:
        """enterprise:<attr> and the full URN name the same target."""
        by_alias = user({"enterprise:costCenter": "roomNumber"}, uid="jo", roomNumber="42")
        by_urn = user({f"{ENTERPRISE}:costCenter": "roomNumber"}, uid="jo", roomNumber="42")
        assert by_alias == by_urn == {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "userName": "jo",
            "active": True,
            ENTERPRISE: {"costCenter": "42"},
        }

    def test_value_suffix_and_case_are_folded(self) -> None:
        """emails[WORK].value names the same target as emails[work]."""
        resource = user({"EMAILS[WORK].value": "altMail"}, uid="jo", altMail="a@x", mail="m@x")
        assert [{"value": "a@x", "type": "work", "primary": True}] == resource["emails"]

    def test_default(self) -> None:
        """default is used when the source has no value."""
        overrides = {"userType": {"from": "employeeType", "default": "Employee"}}
        assert "Employee" == user(overrides, uid="jo")["userType"]

    def test_external_id_rule_replaces_anchor(self) -> None:
        """An externalId rule sets the record's external_id, None when it yields nothing."""
        mapping = compile_mapping("openldap", {"user": {"externalId": "employeeNumber"}})
        numbered = {"uid": ("a",), "employeenumber": ("7",)}
        with_number = map_user(LdapEntry("uid=a,dc=x", "a-1", numbered), mapping)
        without = map_user(LdapEntry("uid=b,dc=x", "b-1", {"uid": ("b",)}), mapping)
        assert isinstance(with_number, UserRecord)
        assert isinstance(without, UserRecord)
        assert ("7", None) == (with_number.external_id, without.external_id)

    def test_toml_example_from_docs(self) -> None:
        """The documented TOML example compiles and maps."""
        config = tomllib.loads(
            """
            [mapping.user]
            "title" = "title"
            "emails[work]" = { from = "mail", transform = ["lower"] }
            "displayName" = { template = "{givenName} {sn}" }
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter" = \
                { from = "departmentNumber" }
            "nickName" = false
            [mapping.group]
            "displayName" = "cn"
            """
        )
        mapping = compile_mapping("openldap", config["mapping"])
        values = {"uid": ("jo",), "mail": ("Jo@X",), "givenname": ("Jo",), "sn": ("Doe",)}
        record = map_user(LdapEntry("uid=jo,dc=x", "a", values), mapping)
        assert isinstance(record, UserRecord)
        assert ("Jo Doe", [{"value": "jo@x", "type": "work", "primary": True}]) == (
            record.resource["displayName"],
            record.resource["emails"],
        )


class TestCompileErrors:
    def test_every_problem_reported_at_once(self) -> None:
        """One ConfigError lists every problem, each with its key."""
        overrides = {
            "user": {
                "emails[work].value": {"from": "mail", "transform": ["lowr"]},
                "titel": "title",
                "userName": False,
                "displayName": {"template": "{x.y} {a[0]}"},
                "active": "nsAccountLock",
                "locale": {"from": 3},
                "title": {"from": "title", "frm": "x"},
            },
            "group": {"members[dn]": {"from": "member", "default": 5}},
            "other": {},
        }
        assert [
            "mapping.other: unknown section (expected 'user' or 'group')",
            "mapping.user.titel: unknown target path (did you mean 'title'?)",
            "mapping.user.userName: userName is required and cannot be removed",
            "mapping.user.displayName: bad template field {x.y}: "
            "use a plain attribute name like {sn}",
            "mapping.user.displayName: bad template field {a[0]}: "
            "use a plain attribute name like {sn}",
            "mapping.user.title: unknown key 'frm' "
            "(expected one of from, template, transform, default, required)",
            "mapping.user.locale: 'from' must be a string or a list of strings, got an integer",
            "mapping.user.active: gives a raw LDAP value, but this target needs a boolean: "
            "end with 'bool', 'not', 'present' or 'bitmask_off:<n>'",
            "mapping.user.emails[work].value: unknown transform 'lowr' (did you mean 'lower'?)",
            "mapping.group.members[dn]: 'default' must be a non-empty string, got an integer 5",
        ] == problems(overrides)

    def test_unknown_flavor(self) -> None:
        """An unknown flavour is a ConfigError naming the choices."""
        with pytest.raises(ConfigError) as caught:
            compile_mapping("novell")
        expected = "ldap.flavor: unknown flavour 'novell' (one of openldap, 389ds, freeipa, ad)"
        assert (expected,) == caught.value.problems

    def test_bad_template_syntax(self) -> None:
        """Unbalanced braces, conversions and format specs are refused."""
        assert [
            "mapping.user.displayName: bad template '{sn': expected '}' before end of string",
            "mapping.user.nickName: bad template field {sn}: no format spec or conversion allowed",
            "mapping.user.title: bad template field {sn}: no format spec or conversion allowed",
        ] == problems(
            {
                "user": {
                    "displayName": {"template": "{sn"},
                    "nickName": {"template": "{sn!r}"},
                    "title": {"template": "{sn:>10}"},
                }
            }
        )

    def test_wrong_types(self) -> None:
        """Rule values of the wrong type are named with their key."""
        assert [
            "mapping.user.nickName: expected an attribute name, a list of names, a table or false, "
            "got a boolean",
            "mapping.user.title: give exactly one of 'from' or 'template'",
            "mapping.user.active: 'default' must be true or false, got a string 'yes'",
        ] == problems(
            {
                "user": {
                    "nickName": True,
                    "title": {"from": "title", "template": "{title}"},
                    "active": {"from": "x", "transform": "bool", "default": "yes"},
                }
            }
        )

    def test_two_spellings_of_one_target(self) -> None:
        """The alias and the URN of the same target cannot both be set."""
        assert [
            f"mapping.user.{ENTERPRISE}:division: same target as mapping.user.enterprise:division",
        ] == problems({"user": {"enterprise:division": "a", f"{ENTERPRISE}:division": "b"}})

    def test_bad_attribute_name(self) -> None:
        """An attribute name with blanks or options is refused."""
        expected = ["mapping.user.title: bad attribute name 'job title'"]
        assert expected == problems({"user": {"title": "job title"}})
