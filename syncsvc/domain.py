"""Plain values that flow through the pipeline: frozen, no I/O.

LDAP source -> :class:`LdapEntry` -> mapping -> :class:`UserRecord` / :class:`GroupRecord`
(or a :class:`Problem`) -> store.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AttrValue",
    "ChangeBatch",
    "EntryKind",
    "GroupRecord",
    "LdapEntry",
    "Problem",
    "RunMode",
    "RunStatus",
    "UserRecord",
    "normalize_dn",
    "split_unescaped",
]

AttrValue = str | bytes
"""One LDAP attribute value: ``str`` for text, ``bytes`` for binary syntaxes (objectGUID, jpegPhoto)."""


class EntryKind(enum.StrEnum):
    USER = "User"
    GROUP = "Group"


class RunMode(enum.StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"
    USER = "user"  # one user, re-read now (admin API)


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    GUARDED = "guarded"


# An RDN whose normal form is its lower-case form: one attribute type, ``=``, a value that is
# neither empty nor begins or ends with a blank, holds no unescaped ``=``, ``+`` or ``,``
# (escapes such as ``\,`` and ``\2C`` may stand anywhere). Possessive: no backtracking.
_PLAIN_RDN = r"[^\\,+=\s]++=(?![\s,]|\Z)(?:[^\\,+=]++|\\.)*+(?<!\s)"
# Nearly every DN a directory returns is plain: single-valued RDNs, no blanks around ``=``
# and ``,``, no empty RDN.
_PLAIN_DN = re.compile(rf"{_PLAIN_RDN}(?:,{_PLAIN_RDN})*+")


def normalize_dn(dn: str) -> str:
    """Comparable form of a DN: lower-case, no blanks around ``=`` and ``,``.

    Good enough to match the member values a server stores against the DNs it returns;
    attribute values with escaped commas keep their escapes.
    """
    # Member and manager DNs are normalized by the hundred thousand in a full run (a profile
    # found 11% of its CPU in the general path below). A plain DN only needs lower(); one that
    # already is lower-case is returned itself, so the run holds one string, not two.
    if _PLAIN_DN.fullmatch(dn):
        lower = dn.lower()
        return dn if lower == dn else lower
    return _normalize_dn_parts(dn)


def _normalize_dn_parts(dn: str) -> str:
    """:func:`normalize_dn` for any DN: RDN by RDN, AVA by AVA (multi-valued RDNs sorted)."""
    parts = []
    for rdn in _split_unescaped(dn, ","):
        avas = []
        for ava in _split_unescaped(rdn, "+"):
            name, _, value = ava.partition("=")
            avas.append(f"{name.strip().lower()}={value.strip().lower()}")
        parts.append("+".join(sorted(avas)))
    return ",".join(parts)


def split_unescaped(text: str, sep: str) -> list[str]:
    """``text`` split on ``sep`` where it is not backslash-escaped (DN RDNs, multi-valued RDNs);
    escapes stay in the parts, which are not stripped."""
    out: list[str] = []
    cur: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            cur.append(ch)
            escaped = True
        elif ch == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def _split_unescaped(text: str, sep: str) -> list[str]:
    return [p for p in (s.strip() for s in split_unescaped(text, sep)) if p]


@dataclass(frozen=True, slots=True)
class LdapEntry:
    """One directory entry as read.

    ``attributes`` keys are lower-cased attribute names without options (``member;range=0-1499``
    is already merged into ``member``); values keep the server's order.
    ``anchor`` is the immutable id (entryUUID, or objectGUID rendered as a UUID string).
    """

    dn: str
    anchor: str
    attributes: Mapping[str, tuple[AttrValue, ...]]

    def get(self, name: str) -> tuple[AttrValue, ...]:
        return self.attributes.get(name.lower(), ())


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one entry in one run; recorded, never fatal to the run."""

    dn: str
    reason: str


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user mapped from LDAP: the SCIM resource body (core + enterprise extension).

    ``resource`` holds neither ``id`` nor ``meta``: the store owns those. ``manager_dn`` is
    resolved to the manager's SCIM id by the store after all users are known.
    """

    anchor: str
    dn: str
    user_name: str
    resource: Mapping[str, Any]
    manager_dn: str | None = None
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A group mapped from LDAP; ``member_dns`` are resolved to SCIM ids by the store."""

    anchor: str
    dn: str
    display_name: str
    resource: Mapping[str, Any]
    member_dns: tuple[str, ...] = ()
    # posixGroup lists members by uid (memberUid), not by DN; resolved against userName.
    member_user_names: tuple[str, ...] = ()
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """One page of a change read: entries to upsert and anchors the server says are gone."""

    entries: tuple[LdapEntry, ...] = ()
    deleted_anchors: tuple[str, ...] = ()
    present_anchors: tuple[str, ...] = field(default=())
