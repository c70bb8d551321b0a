"""map_user / map_group: problems as values, groups and members, determinism."""

from __future__ import annotations

import json

from syncsvc.domain import GroupRecord, LdapEntry, Problem, UserRecord
from syncsvc.mapping import compile_mapping, map_group, map_user

OPENLDAP = compile_mapping("openldap")


def entry(dn: str, **attributes: str | bytes | list[str]) -> LdapEntry:
    values = {k.lower(): tuple(v) if isinstance(v, list) else (v,) for k, v in attributes.items()}
    return LdapEntry(dn=dn, anchor="anchor-1", attributes=values)


class TestUserProblems:
    def test_missing_user_name(self) -> None:
        """An entry without uid is a Problem naming its DN."""
        expected = Problem("cn=x,dc=ex", "missing userName (uid)")
        assert expected == map_user(entry("cn=x,dc=ex", cn="x"), OPENLDAP)

    def test_bad_int(self) -> None:
        """A value int cannot read makes the entry a Problem naming attribute and value."""
        rule = {"from": "employeeNumber", "transform": "int"}
        mapping = compile_mapping("openldap", {"user": {"enterprise:employeeNumber": rule}})

        actual = map_user(entry("uid=jo,dc=ex", uid="jo", employeeNumber="abc"), mapping)

        assert Problem(
            "uid=jo,dc=ex",
            "attribute 'employeeNumber': transform 'int' failed on 'abc': "
            "invalid literal for int() with base 10: 'abc'",
        ) == actual

    def test_non_utf8_bytes_in_text_target(self) -> None:
        """Binary bytes mapped to a text target make the entry a Problem, not an exception."""
        actual = map_user(entry("uid=jo,dc=ex", uid="jo", title=b"\xff\xfeEng"), OPENLDAP)

        reason = "attribute 'title': value b'\\xff\\xfeEng' is not UTF-8 text"
        assert Problem("uid=jo,dc=ex", reason) == actual

    def test_utf8_bytes_are_text(self) -> None:
        """Bytes that are UTF-8 are accepted as text."""
        record = map_user(entry("uid=jo,dc=ex", uid=b"j\xc3\xb6"), OPENLDAP)

        assert isinstance(record, UserRecord)
        assert "jö" == record.user_name

    def test_non_utf8_bytes_in_template(self) -> None:
        """A template field with non-UTF-8 bytes names that attribute."""
        rule = {"template": "{givenName} {sn}"}
        mapping = compile_mapping("openldap", {"user": {"displayName": rule}})

        actual = map_user(entry("uid=jo,dc=ex", uid="jo", givenName="Jo", sn=b"\xff"), mapping)

        assert Problem("uid=jo,dc=ex", "attribute 'sn': value b'\\xff' is not UTF-8 text") == actual

    def test_required_by_config(self) -> None:
        """required = true turns a missing value into a Problem."""
        rule = {"from": "mail", "required": True}
        mapping = compile_mapping("openldap", {"user": {"emails[work]": rule}})

        actual = map_user(entry("uid=jo,dc=ex", uid="jo"), mapping)

        assert Problem("uid=jo,dc=ex", "missing emails[work] (mail)") == actual


class TestUserShape:
    def test_same_entry_same_json(self) -> None:
        """Mapping is deterministic: the serialised resource is byte-identical across calls."""
        jo = entry("uid=jo,dc=ex", uid="jo", mail="jo@x", sn="Doe", ou="Eng", l="Paris", mobile="1")
        first, second = map_user(jo, OPENLDAP), map_user(jo, OPENLDAP)

        assert isinstance(first, UserRecord)
        assert isinstance(second, UserRecord)
        assert json.dumps(first.resource) == json.dumps(second.resource)

    def test_override_order_does_not_change_key_order(self) -> None:
        """Resource key order follows the target table, not the config's key order."""
        one = compile_mapping("openldap", {"user": {"title": "a", "nickName": "b"}})
        other = compile_mapping("openldap", {"user": {"nickName": "b", "title": "a"}})
        jo = entry("uid=jo,dc=ex", uid="jo", a="A", b="B")
        first, second = map_user(jo, one), map_user(jo, other)

        assert isinstance(first, UserRecord)
        assert isinstance(second, UserRecord)
        assert (["schemas", "userName", "nickName", "title", "active"], list(first.resource)) == (
            list(second.resource),
            list(second.resource),
        )

    def test_manager_only_adds_extension_schema(self) -> None:
        """A manager DN alone still lists the enterprise schema; the DN is not in the resource."""
        record = map_user(entry("uid=jo,dc=ex", uid="jo", manager="uid=boss,dc=ex"), OPENLDAP)

        assert isinstance(record, UserRecord)
        assert (
            [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            ],
            "uid=boss,dc=ex",
            False,
        ) == (
            record.resource["schemas"],
            record.manager_dn,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" in record.resource,
        )

    def test_address_parts_group_by_type(self) -> None:
        """Parts of the work and home addresses land in one object per type."""
        mapping = compile_mapping("openldap", {"user": {"addresses[home].locality": "homeCity"}})

        jo = entry("uid=jo,dc=ex", uid="jo", l="Paris", homeCity="Lyon", postalCode="75001")
        record = map_user(jo, mapping)

        assert isinstance(record, UserRecord)
        assert [
            {"type": "work", "locality": "Paris", "postalCode": "75001"},
            {"type": "home", "locality": "Lyon"},
        ] == record.resource["addresses"]

    def test_postal_address_to_formatted(self) -> None:
        """postalAddress ($-separated lines) becomes addresses[work].formatted with newlines."""
        jo = entry("uid=jo,dc=ex", uid="jo", postalAddress="1 Main St$Springfield")
        record = map_user(jo, OPENLDAP)

        assert isinstance(record, UserRecord)
        expected = [{"type": "work", "formatted": "1 Main St\nSpringfield"}]
        assert expected == record.resource["addresses"]


class TestGroups:
    def test_group_of_names(self) -> None:
        """groupOfNames: cn -> displayName, member DNs to the record, externalId = anchor."""
        group = entry("cn=eng,ou=groups,dc=ex", cn="eng", member=["uid=a,dc=ex", "uid=b,dc=ex"])

        expected = GroupRecord(
            anchor="anchor-1",
            dn="cn=eng,ou=groups,dc=ex",
            display_name="eng",
            resource={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "eng",
            },
            member_dns=("uid=a,dc=ex", "uid=b,dc=ex"),
            external_id="anchor-1",
        )
        assert expected == map_group(group, OPENLDAP)

    def test_unique_member_suffix_stripped(self) -> None:
        """groupOfUniqueNames: the optional #'0101'B UID suffix is dropped; duplicates collapse."""
        group = entry(
            "cn=eng,dc=ex",
            cn="eng",
            uniqueMember=["uid=a,dc=ex#'0101'B", "uid=b,dc=ex", "uid=a,dc=ex"],
        )
        record = map_group(group, OPENLDAP)

        assert isinstance(record, GroupRecord)
        assert ("uid=a,dc=ex", "uid=b,dc=ex") == record.member_dns

    def test_posix_member_uid(self) -> None:
        """posixGroup memberUid values go to member_user_names."""
        record = map_group(entry("cn=dev,dc=ex", cn="dev", memberUid=["jo", "al"]), OPENLDAP)

        assert isinstance(record, GroupRecord)
        assert ((), ("jo", "al")) == (record.member_dns, record.member_user_names)

    def test_missing_display_name(self) -> None:
        """A group without cn is a Problem."""
        expected = Problem("ou=odd,dc=ex", "missing displayName (cn)")
        assert expected == map_group(entry("ou=odd,dc=ex", ou="odd"), OPENLDAP)

    def test_display_name_from_rdn(self) -> None:
        """An override can take the group name from the entry's own DN via rdn."""
        rule = {"from": "entryDN", "transform": "rdn"}
        mapping = compile_mapping("openldap", {"group": {"displayName": rule}})

        record = map_group(entry("cn=ops,dc=ex", entryDN="cn=ops,dc=ex"), mapping)

        assert isinstance(record, GroupRecord)
        assert "ops" == record.display_name
