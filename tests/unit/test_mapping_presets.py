"""Flavour presets on realistic entries (syncsvc.mapping.presets through map_user/map_group)."""

from __future__ import annotations

import uuid

import pytest

from syncsvc.domain import GroupRecord, LdapEntry, UserRecord
from syncsvc.mapping import PRESETS, compile_mapping, map_group, map_user

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def entry(dn: str, anchor: str = "anchor-1", **attributes: object) -> LdapEntry:
    values = {
        name.lower(): tuple(value) if isinstance(value, list) else (value,)
        for name, value in attributes.items()
    }
    return LdapEntry(dn=dn, anchor=anchor, attributes=values)


JO_OPENLDAP = entry(
    "uid=jo,ou=people,dc=example,dc=com",
    "9e1c7c2a-5b2e-103e-8a8c-4f1b2c3d4e5f",
    objectClass=["top", "person", "organizationalPerson", "inetOrgPerson"],
    uid="jo",
    cn="Jo Doe",
    sn="Doe",
    givenName="Jo",
    mail=["Jo.Doe@example.com", "jo@example.com"],
    telephoneNumber="+1 555 0100",
    mobile="+1 555 0199",
    facsimileTelephoneNumber="+1 555 0101",
    title="Engineer",
    preferredLanguage="en-US",
    labeledURI="https://example.com/~jo Jo's page",
    street="1 Main St",
    l="Springfield",
    st="IL",
    postalCode="62701",
    c="US",
    employeeNumber="1001",
    departmentNumber="4711",
    o="Example Inc",
    businessCategory="R&D",
    ou="Engineering",
    manager="uid=boss,ou=people,dc=example,dc=com",
    jpegPhoto=b"\xff\xd8\xff\xe0",  # not mapped: must not disturb anything
)


class TestOpenLdap:
    def test_full_resource(self) -> None:
        """An inetOrgPerson maps to core + enterprise attributes in a fixed key order."""
        expected = UserRecord(
            anchor="9e1c7c2a-5b2e-103e-8a8c-4f1b2c3d4e5f",
            dn="uid=jo,ou=people,dc=example,dc=com",
            user_name="jo",
            resource={
                "schemas": [CORE, ENTERPRISE],
                "userName": "jo",
                "name": {"formatted": "Jo Doe", "familyName": "Doe", "givenName": "Jo"},
                "displayName": "Jo Doe",
                "profileUrl": "https://example.com/~jo",
                "title": "Engineer",
                "preferredLanguage": "en-US",
                "active": True,
                "emails": [
                    {"value": "Jo.Doe@example.com", "type": "work", "primary": True},
                    {"value": "jo@example.com", "type": "work"},
                ],
                "phoneNumbers": [
                    {"value": "+1 555 0100", "type": "work"},
                    {"value": "+1 555 0199", "type": "mobile"},
                    {"value": "+1 555 0101", "type": "fax"},
                ],
                "addresses": [
                    {
                        "type": "work",
                        "streetAddress": "1 Main St",
                        "locality": "Springfield",
                        "region": "IL",
                        "postalCode": "62701",
                        "country": "US",
                    }
                ],
                ENTERPRISE: {
                    "employeeNumber": "1001",
                    "costCenter": "4711",
                    "organization": "Example Inc",
                    "division": "R&D",
                    "department": "Engineering",
                },
            },
            manager_dn="uid=boss,ou=people,dc=example,dc=com",
            external_id="9e1c7c2a-5b2e-103e-8a8c-4f1b2c3d4e5f",
        )

        actual = map_user(JO_OPENLDAP, compile_mapping("openldap"))

        assert expected == actual
        assert isinstance(actual, UserRecord)
        assert list(expected.resource) == list(actual.resource)

    def test_ppolicy_lock_makes_inactive(self) -> None:
        """pwdAccountLockedTime present (ppolicy lock) -> active False."""
        locked = entry("uid=jo,dc=x", uid="jo", pwdAccountLockedTime="000001010000Z")

        record = map_user(locked, compile_mapping("openldap"))

        assert isinstance(record, UserRecord)
        assert False is record.resource["active"]

    def test_minimal_entry_has_core_schema_only(self) -> None:
        """Without extension values, schemas lists only the core User URN."""
        record = map_user(entry("uid=min,dc=x", uid="min"), compile_mapping("openldap"))

        assert isinstance(record, UserRecord)
        assert {"schemas": [CORE], "userName": "min", "active": True} == record.resource

    def test_user_attributes_include_operational_lock(self) -> None:
        """The attribute list asks for every source, including operational pwdAccountLockedTime."""
        attributes = compile_mapping("openldap").user_attributes

        assert {"uid", "mail", "manager", "pwdAccountLockedTime", "labeledURI"} <= set(attributes)


class Test389ds:
    @pytest.mark.parametrize("flavor", ["389ds", "freeipa"])
    @pytest.mark.parametrize(("lock", "active"), [("TRUE", False), ("false", True), (None, True)])
    def test_ns_account_lock(self, flavor: str, lock: str | None, active: object) -> None:
        """nsAccountLock TRUE -> inactive; FALSE or absent -> active."""
        attributes = {"uid": "jo"} if lock is None else {"uid": "jo", "nsAccountLock": lock}

        record = map_user(entry("uid=jo,dc=x", **attributes), compile_mapping(flavor))

        assert isinstance(record, UserRecord)
        assert active is record.resource["active"]

    def test_requests_ns_account_lock(self) -> None:
        """389-DS asks for nsAccountLock (operational) instead of pwdAccountLockedTime."""
        attributes = compile_mapping("389ds").user_attributes

        asked = ("nsAccountLock" in attributes, "pwdAccountLockedTime" in attributes)
        assert (True, False) == asked


GUID = uuid.UUID("3f2504e0-4f89-11d3-9a0c-0305e82c3301")

JO_AD = entry(
    "CN=Doe\\, Jo,OU=Staff,DC=corp,DC=example,DC=com",
    str(GUID),
    objectClass=["top", "person", "organizationalPerson", "user"],
    objectGUID=GUID.bytes_le,
    sAMAccountName="jdoe",
    userPrincipalName="jo.doe@corp.example.com",
    cn="Doe, Jo",
    givenName="Jo",
    sn="Doe",
    displayName="Jo Doe",
    mail="jo.doe@example.com",
    telephoneNumber="+1 555 0100",
    title="Engineer",
    department="Engineering",
    company="Example Inc",
    employeeID="E-1001",
    co="Germany",
    l="Berlin",
    manager="CN=Boss,OU=Staff,DC=corp,DC=example,DC=com",
    userAccountControl="514",
)


class TestActiveDirectory:
    def test_disabled_account(self) -> None:
        """AD: sAMAccountName is userName, userAccountControl 514 is inactive, anchor externalId."""
        expected = UserRecord(
            anchor=str(GUID),
            dn="CN=Doe\\, Jo,OU=Staff,DC=corp,DC=example,DC=com",
            user_name="jdoe",
            resource={
                "schemas": [CORE, ENTERPRISE],
                "userName": "jdoe",
                "name": {"formatted": "Doe, Jo", "familyName": "Doe", "givenName": "Jo"},
                "displayName": "Jo Doe",
                "title": "Engineer",
                "active": False,
                "emails": [{"value": "jo.doe@example.com", "type": "work", "primary": True}],
                "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
                "addresses": [{"type": "work", "locality": "Berlin", "country": "Germany"}],
                ENTERPRISE: {
                    "employeeNumber": "E-1001",
                    "organization": "Example Inc",
                    "department": "Engineering",
                },
            },
            manager_dn="CN=Boss,OU=Staff,DC=corp,DC=example,DC=com",
            external_id=str(GUID),
        )

        assert expected == map_user(JO_AD, compile_mapping("ad"))

    def test_enabled_account(self) -> None:
        """userAccountControl 512 (normal account) -> active True."""
        enabled = entry("CN=a,DC=x", sAMAccountName="a", userAccountControl="512")
        record = map_user(enabled, compile_mapping("ad"))

        assert isinstance(record, UserRecord)
        assert True is record.resource["active"]

    def test_object_guid_as_external_id_by_override(self) -> None:
        """objectGUID bytes can be mapped explicitly with the uuid transform."""
        rule = {"from": "objectGUID", "transform": "uuid"}
        mapping = compile_mapping("ad", {"user": {"externalId": rule}})

        record = map_user(JO_AD, mapping)

        assert isinstance(record, UserRecord)
        assert str(GUID) == record.external_id

    def test_user_principal_name_by_override(self) -> None:
        """userName can come from userPrincipalName instead of sAMAccountName."""
        mapping = compile_mapping("ad", {"user": {"userName": "userPrincipalName"}})

        record = map_user(JO_AD, mapping)

        assert isinstance(record, UserRecord)
        assert ("jo.doe@corp.example.com", "jo.doe@corp.example.com") == (
            record.user_name,
            record.resource["userName"],
        )

    def test_group(self) -> None:
        """An AD group: cn as displayName, member DNs in the record, not in the resource."""
        group = entry(
            "CN=Eng,OU=Groups,DC=corp,DC=example,DC=com",
            "g-1",
            cn="Eng",
            sAMAccountName="eng",
            member=[
                "CN=Doe\\, Jo,OU=Staff,DC=corp,DC=example,DC=com",
                "CN=Boss,OU=Staff,DC=corp,DC=example,DC=com",
            ],
        )
        expected = GroupRecord(
            anchor="g-1",
            dn="CN=Eng,OU=Groups,DC=corp,DC=example,DC=com",
            display_name="Eng",
            resource={"schemas": [GROUP], "displayName": "Eng"},
            member_dns=(
                "CN=Doe\\, Jo,OU=Staff,DC=corp,DC=example,DC=com",
                "CN=Boss,OU=Staff,DC=corp,DC=example,DC=com",
            ),
            external_id="g-1",
        )

        assert expected == map_group(group, compile_mapping("ad"))


class TestPresetData:
    @pytest.mark.parametrize("flavor", sorted(PRESETS))
    def test_every_preset_compiles(self, flavor: str) -> None:
        """Each preset compiles, with userName and displayName rules first in their lists."""
        mapping = compile_mapping(flavor)

        assert ("userName", "displayName") == (
            mapping.user_rules[0].target.path,
            mapping.group_rules[0].target.path,
        )
