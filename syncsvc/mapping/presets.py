"""Built-in mapping rules per directory flavour, written in the same shape as the TOML overrides.

Each preset is ``{"user": {target: rule}, "group": {target: rule}}``; ``[mapping.user]`` and
``[mapping.group]`` in the config replace or remove (``false``) single targets. Writing presets
as config data means one compiler checks both, and the docs can show a preset as-is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["PRESETS"]

_ENT: Final = "enterprise:"

# inetOrgPerson / organizationalPerson (RFC 2798, RFC 4519), shared by OpenLDAP and 389-DS.
_INET_ORG_PERSON: Final[Mapping[str, Any]] = {
    "userName": "uid",
    "name.formatted": "cn",
    "name.familyName": "sn",
    "name.givenName": "givenName",
    "displayName": ["displayName", "cn"],
    "profileUrl": {"from": "labeledURI", "transform": ["first_token"]},  # "URI label"
    "title": "title",
    "userType": "employeeType",
    "preferredLanguage": "preferredLanguage",
    # ppolicy: pwdAccountLockedTime is set while the account is locked (operational, so the
    # attribute list below asks for it by name).
    "active": {"from": "pwdAccountLockedTime", "transform": ["present", "not"], "default": True},
    "emails[work]": {"from": "mail", "transform": ["all"]},  # first one is primary
    "phoneNumbers[work]": "telephoneNumber",
    "phoneNumbers[mobile]": "mobile",
    "phoneNumbers[home]": "homePhone",
    "phoneNumbers[fax]": "facsimileTelephoneNumber",
    "phoneNumbers[pager]": "pager",
    "addresses[work].formatted": {"from": "postalAddress", "transform": ["postal_address"]},
    "addresses[work].streetAddress": "street",
    "addresses[work].locality": "l",
    "addresses[work].region": "st",
    "addresses[work].postalCode": "postalCode",
    "addresses[work].country": "c",
    "addresses[home].formatted": {"from": "homePostalAddress", "transform": ["postal_address"]},
    f"{_ENT}employeeNumber": "employeeNumber",
    f"{_ENT}costCenter": "departmentNumber",
    f"{_ENT}organization": "o",
    f"{_ENT}division": "businessCategory",
    f"{_ENT}department": "ou",
    f"{_ENT}manager": "manager",
}

_LDAP_GROUP: Final[Mapping[str, Any]] = {
    "displayName": "cn",
    # groupOfNames has member, groupOfUniqueNames has uniqueMember ("DN#'0101'B").
    "members[dn]": {"from": ["member", "uniqueMember"], "transform": ["strip_uid"]},
    "members[userName]": "memberUid",  # posixGroup
}

_389DS_USER: Final[Mapping[str, Any]] = {
    **_INET_ORG_PERSON,
    # nsAccountLock: TRUE when an admin locked the account (also FreeIPA's "disabled").
    "active": {"from": "nsAccountLock", "transform": ["bool", "not"], "default": True},
}

_AD_USER: Final[Mapping[str, Any]] = {
    "userName": "sAMAccountName",  # or "userPrincipalName" in [mapping.user]
    "name.formatted": "cn",
    "name.familyName": "sn",
    "name.givenName": "givenName",
    "name.middleName": "middleName",
    "displayName": ["displayName", "cn"],
    "profileUrl": "wWWHomePage",
    "title": "title",
    "userType": "employeeType",
    "preferredLanguage": "preferredLanguage",
    # userAccountControl bit 0x2 is ACCOUNTDISABLE (514 = 512 normal account + 2 disabled).
    "active": {"from": "userAccountControl", "transform": ["bitmask_off:2"]},
    "emails[work]": {"from": "mail", "transform": ["all"]},  # first one is primary
    "phoneNumbers[work]": "telephoneNumber",
    "phoneNumbers[mobile]": "mobile",
    "phoneNumbers[home]": "homePhone",
    "phoneNumbers[fax]": "facsimileTelephoneNumber",
    "phoneNumbers[pager]": "pager",
    "addresses[work].streetAddress": "streetAddress",
    "addresses[work].locality": "l",
    "addresses[work].region": "st",
    "addresses[work].postalCode": "postalCode",
    "addresses[work].country": ["c", "co"],  # SCIM wants ISO 3166 alpha-2 (c); co is the name
    f"{_ENT}employeeNumber": ["employeeID", "employeeNumber"],
    f"{_ENT}organization": "company",
    f"{_ENT}division": "division",
    f"{_ENT}department": "department",
    f"{_ENT}manager": "manager",
}

_AD_GROUP: Final[Mapping[str, Any]] = {
    "displayName": ["cn", "sAMAccountName"],
    "members[dn]": "member",
}

PRESETS: Final[Mapping[str, Mapping[str, Mapping[str, Any]]]] = {
    "openldap": {"user": _INET_ORG_PERSON, "group": _LDAP_GROUP},
    "389ds": {"user": _389DS_USER, "group": _LDAP_GROUP},
    "freeipa": {"user": _389DS_USER, "group": _LDAP_GROUP},
    "ad": {"user": _AD_USER, "group": _AD_GROUP},
}
"""Rules per ``[ldap] flavor``, in config form (see :mod:`syncsvc.mapping.rules`)."""
