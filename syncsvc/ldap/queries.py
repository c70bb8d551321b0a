"""Search queries: what to ask the directory for, and RFC 4515 filter escaping.

Every query asks for the flavour's anchor and change attribute by name, so operational
attributes (``entryUUID``, ``modifyTimestamp``) come back next to the ``*`` user attributes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from syncsvc.ldap.flavors import Flavor
from syncsvc.settings import LdapSettings

__all__ = [
    "SearchQuery",
    "changed_since",
    "escape_filter_value",
    "generalized_time",
    "group_query",
    "parenthesize",
    "user_query",
]

_GENERALIZED_TIME = re.compile(r"^\d{10}(\d{2}(\d{2})?)?([.,]\d+)?(Z|[+-]\d{2}(\d{2})?)$")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """One subtree search: base DN, RFC 4515 filter and the attributes to return."""

    base: str
    filter: str
    attributes: tuple[str, ...]


def escape_filter_value(value: str | bytes) -> str:
    r"""Escape an assertion value for an RFC 4515 filter.

    ``*``, ``(``, ``)``, ``\`` and NUL become ``\2a``, ``\28``, ``\29``, ``\5c``, ``\00``;
    ``bytes`` (an objectGUID, say) are escaped byte by byte.
    """
    if isinstance(value, bytes):
        return "".join(f"\\{b:02x}" for b in value)
    out = []
    for ch in value:
        if ch in "*()\\\x00":
            out.append(f"\\{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def parenthesize(filter_text: str) -> str:
    """``objectClass=person`` -> ``(objectClass=person)``; an already wrapped filter is kept."""
    text = filter_text.strip()
    if not text:
        return "(objectClass=*)"
    return text if text.startswith("(") else f"({text})"


def generalized_time(moment: datetime) -> str:
    """A UTC generalizedTime (``20240131235959Z``) for ``moment`` (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def _attributes(flavor: Flavor, wanted: Iterable[str]) -> tuple[str, ...]:
    names = list(wanted) or ["*"]
    for extra in (flavor.anchor_attribute, flavor.change_attribute):
        if extra.lower() not in {n.lower() for n in names}:
            names.append(extra)
    seen: set[str] = set()
    unique = []
    for name in names:
        if name.lower() not in seen:
            seen.add(name.lower())
            unique.append(name)
    return tuple(unique)


def user_query(settings: LdapSettings, flavor: Flavor, attributes: Iterable[str] = ()) -> SearchQuery:
    """The users search: ``user_base`` (else ``base_dn``), the flavour's user filter.

    ``attributes`` empty means all user attributes (``*``); the anchor and the change
    attribute are always added.
    """
    return SearchQuery(
        base=settings.user_base or settings.base_dn,
        filter=parenthesize(flavor.user_filter),
        attributes=_attributes(flavor, attributes),
    )


def group_query(settings: LdapSettings, flavor: Flavor, attributes: Iterable[str] = ()) -> SearchQuery:
    """The groups search: ``group_base`` (else ``base_dn``), the flavour's group filter."""
    return SearchQuery(
        base=settings.group_base or settings.base_dn,
        filter=parenthesize(flavor.group_filter),
        attributes=_attributes(flavor, attributes),
    )


def changed_since(query: SearchQuery, flavor: Flavor, mark: str) -> SearchQuery:
    """``query`` narrowed to entries whose change attribute is at or after ``mark``.

    ``mark`` is a generalizedTime (``modifyTimestamp``) or a decimal USN (``uSNChanged``).

    Raises:
        ValueError: ``mark`` does not fit the flavour's change attribute.
    """
    mark = mark.strip()
    if flavor.change_attribute == "uSNChanged":
        if not mark.isdigit():
            raise ValueError(f"uSNChanged mark must be a non-negative integer, got {mark!r}")
    elif not _GENERALIZED_TIME.match(mark):
        raise ValueError(f"modifyTimestamp mark must be a generalizedTime, got {mark!r}")
    condition = f"({flavor.change_attribute}>={escape_filter_value(mark)})"
    return SearchQuery(
        base=query.base,
        filter=f"(&{parenthesize(query.filter)}{condition})",
        attributes=query.attributes,
    )
