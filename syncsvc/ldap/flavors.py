"""Directory flavour presets: which filters, anchor and change attribute a server family uses.

A preset is data; :func:`flavor_for` overlays what the settings name explicitly
(``user_filter``, ``group_filter``, ``anchor_attribute``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, Literal

from syncsvc.settings import LdapSettings

__all__ = ["BINARY_ATTRIBUTES", "FLAVORS", "Flavor", "flavor_for"]

ChangeAttribute = Literal["modifyTimestamp", "uSNChanged"]

BINARY_ATTRIBUTES: Final = frozenset(
    {
        # RFC 4517/4523/2798 binary syntaxes
        "audio",
        "authoritytimeoutlist",
        "cacertificate",
        "certificaterevocationlist",
        "authorityrevocationlist",
        "crosscertificatepair",
        "deltarevocationlist",
        "jpegphoto",
        "photo",
        "usercertificate",
        "userpkcs12",
        "usersmimecertificate",
        "supportedalgorithms",
        # Active Directory
        "objectguid",
        "objectsid",
        "sidhistory",
        "thumbnailphoto",
        "thumbnaillogo",
        "tokengroups",
        "logonhours",
        "msexchmailboxguid",
        "msexchmailboxsecuritydescriptor",
        "ntsecuritydescriptor",
        "msds-generationid",
        "mstsproperty01",
    }
)
"""Lower-cased names whose values stay ``bytes`` (never decoded as UTF-8)."""


@dataclass(frozen=True, slots=True)
class Flavor:
    """How to read one family of directory servers.

    ``change_attribute`` is the attribute an incremental query compares against its mark:
    ``modifyTimestamp`` (generalizedTime) or, on AD, ``uSNChanged`` (an integer per DC).
    """

    name: str
    anchor_attribute: str
    user_filter: str
    group_filter: str
    change_attribute: ChangeAttribute = "modifyTimestamp"
    binary_attributes: frozenset[str] = BINARY_ATTRIBUTES


FLAVORS: Final[dict[str, Flavor]] = {
    "openldap": Flavor(
        name="openldap",
        anchor_attribute="entryUUID",
        user_filter="(objectClass=inetOrgPerson)",
        group_filter=(
            "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"
        ),
    ),
    # 389-DS 1.4.4+ ships the entryUUID plugin; older servers set anchor_attribute=nsUniqueId.
    "389ds": Flavor(
        name="389ds",
        anchor_attribute="entryUUID",
        user_filter="(objectClass=inetOrgPerson)",
        group_filter="(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
    ),
    # FreeIPA users and groups also carry ipaUniqueID (set anchor_attribute to use it).
    "freeipa": Flavor(
        name="freeipa",
        anchor_attribute="entryUUID",
        user_filter="(&(objectClass=inetOrgPerson)(objectClass=posixAccount))",
        group_filter="(|(objectClass=ipaUserGroup)(objectClass=groupOfNames))",
    ),
    "ad": Flavor(
        name="ad",
        anchor_attribute="objectGUID",
        # sAMAccountType 805306368 = normal user account; excludes computers (also objectClass=user).
        user_filter="(&(objectCategory=person)(objectClass=user)(sAMAccountType=805306368))",
        group_filter="(objectClass=group)",
        change_attribute="uSNChanged",
    ),
}
"""The built-in presets, by the names :class:`~syncsvc.settings.LdapSettings` accepts."""


def flavor_for(settings: LdapSettings) -> Flavor:
    """The preset named by ``settings.flavor`` with the settings' explicit overrides applied.

    Raises:
        KeyError: the flavour name is unknown (settings validation normally catches this).
    """
    flavor = FLAVORS[settings.flavor]
    overrides: dict[str, str] = {}
    if settings.user_filter:
        overrides["user_filter"] = settings.user_filter
    if settings.group_filter:
        overrides["group_filter"] = settings.group_filter
    if settings.anchor_attribute:
        overrides["anchor_attribute"] = settings.anchor_attribute
    return replace(flavor, **overrides) if overrides else flavor
