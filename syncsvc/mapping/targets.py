"""Where a rule may write: every SCIM target path, in the order resources are built.

Path syntax (case-insensitive; the canonical spelling is what rules report):

- a core attribute: ``userName``, ``displayName``, ``active``, ...
- a sub-attribute of ``name``: ``name.givenName``;
- one typed value of a multi-valued attribute: ``emails[work]``, ``phoneNumbers[mobile]``,
  ``ims[xmpp]``, ``photos[thumbnail]`` (``emails[work].value`` is accepted as the same path);
- one part of a typed address: ``addresses[work].locality``;
- the enterprise extension, by full name
  (``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department``) or by the short
  alias ``enterprise:department``;
- records, not the resource: ``externalId`` (default: the anchor), the enterprise ``manager``
  (a DN the store resolves), and for groups ``members[dn]`` / ``members[userName]``.

The table order is the key order of the resource built, so equal entries give equal dicts.
"""

from __future__ import annotations

import difflib
import enum
from dataclasses import dataclass
from typing import Final

from syncsvc.mapping.transforms import Kind

__all__ = [
    "CORE_GROUP",
    "CORE_USER",
    "ENTERPRISE_USER",
    "GROUP_TARGETS",
    "TARGETS",
    "USER_TARGETS",
    "Slot",
    "Target",
    "resolve_target",
    "suggest_target",
]

CORE_USER: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP: Final = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
_ENTERPRISE_ALIAS: Final = "enterprise:"


class Slot(enum.Enum):
    """Where a target's value lands in the resource or the record."""

    TOP = enum.auto()  # resource[key]
    NAME = enum.auto()  # resource["name"][key]
    MULTI = enum.auto()  # resource[key] += {"value", "type"}
    ADDRESS = enum.auto()  # resource["addresses"] item of ``type``, [key]
    ENTERPRISE = enum.auto()  # resource[ENTERPRISE_USER][key]
    MANAGER = enum.auto()  # UserRecord.manager_dn
    EXTERNAL_ID = enum.auto()  # record.external_id
    MEMBER_DNS = enum.auto()  # GroupRecord.member_dns
    MEMBER_NAMES = enum.auto()  # GroupRecord.member_user_names


@dataclass(frozen=True, slots=True)
class Target:
    """One writable SCIM path and how its value is placed."""

    path: str
    slot: Slot
    key: str = ""
    type: str = ""
    kind: Kind = Kind.TEXT
    multi: bool = False  # accepts the 'all' transform
    all_by_default: bool = False
    required: bool = False
    primary: bool = False  # the first value gets "primary": true


_CORE_TOP: Final = (
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
)
_NAME_PARTS: Final = (
    "formatted",
    "familyName",
    "givenName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
)
_MULTI_TYPES: Final = {
    "emails": ("work", "home", "other"),
    "phoneNumbers": ("work", "mobile", "home", "fax", "pager", "other"),
    "ims": ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
    "photos": ("photo", "thumbnail"),
}
_ADDRESS_TYPES: Final = ("work", "home", "other")
_ADDRESS_PARTS: Final = (
    "formatted",
    "streetAddress",
    "locality",
    "region",
    "postalCode",
    "country",
)
_ENTERPRISE_PARTS: Final = (
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
)


def _user_targets() -> tuple[Target, ...]:
    targets = [
        Target("externalId", Slot.EXTERNAL_ID),
        Target("userName", Slot.TOP, "userName", required=True),
        *(Target(f"name.{part}", Slot.NAME, part) for part in _NAME_PARTS),
        *(Target(attr, Slot.TOP, attr) for attr in _CORE_TOP),
        Target("active", Slot.TOP, "active", kind=Kind.BOOL),
    ]
    for attr, types in _MULTI_TYPES.items():
        primary = "work" if attr == "emails" else ""  # the first work e-mail is the primary
        targets += (
            Target(f"{attr}[{t}]", Slot.MULTI, attr, t, multi=True, primary=primary == t)
            for t in types
        )
    for t in _ADDRESS_TYPES:
        targets += (
            Target(f"addresses[{t}].{part}", Slot.ADDRESS, part, t) for part in _ADDRESS_PARTS
        )
    targets += (Target(f"{ENTERPRISE_USER}:{p}", Slot.ENTERPRISE, p) for p in _ENTERPRISE_PARTS)
    targets.append(Target(f"{ENTERPRISE_USER}:manager", Slot.MANAGER))
    return tuple(targets)


USER_TARGETS: Final = _user_targets()
"""Every user target, in resource order."""

GROUP_TARGETS: Final = (
    Target("externalId", Slot.EXTERNAL_ID),
    Target("displayName", Slot.TOP, "displayName", required=True),
    Target("members[dn]", Slot.MEMBER_DNS, multi=True, all_by_default=True),
    Target("members[userName]", Slot.MEMBER_NAMES, multi=True, all_by_default=True),
)
"""Every group target, in resource order."""

TARGETS: Final = {"user": USER_TARGETS, "group": GROUP_TARGETS}
"""The target tables by config section."""

_INDEX: Final = {
    section: {target.path.lower(): target for target in table} for section, table in TARGETS.items()
}


def resolve_target(key: str, section: str) -> Target | None:
    """The target a ``[mapping.<section>]`` key names, or None; aliases and case are folded."""
    path = key.strip()
    if path.lower().startswith(_ENTERPRISE_ALIAS):
        path = f"{ENTERPRISE_USER}:{path[len(_ENTERPRISE_ALIAS):]}"
    index = _INDEX[section]
    target = index.get(path.lower())
    if target is None and path.lower().endswith("].value"):
        target = index.get(path[: -len(".value")].lower())
        if target is not None and target.slot is not Slot.MULTI:
            return None
    return target


def suggest_target(key: str, section: str) -> str:
    """A ``" (did you mean ...?)"`` hint for an unknown key, or an empty string."""
    paths = {target.path.lower(): target.path for target in TARGETS[section]}
    close = difflib.get_close_matches(key.lower(), paths, n=1)
    return f" (did you mean {paths[close[0]]!r}?)" if close else ""
