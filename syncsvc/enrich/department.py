"""``department_from_dn``: the department from the entry's ``ou=`` when the directory gives none.

``uid=ada,ou=Engineering,ou=People,dc=example,dc=com`` -> ``Engineering``: the OU nearest to
the entry (``level = "nearest"``) or nearest to the root (``"top"``), after leaving out
container OUs such as ``people`` or ``users`` (``skip``, case-insensitive).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

from syncsvc.domain import LdapEntry, split_unescaped
from syncsvc.enrich._base import NO_UPDATE, Update
from syncsvc.enrich._paths import PathSetter
from syncsvc.enrich.defaults import is_empty

__all__ = ["DEFAULT_SKIP", "DepartmentFromDnRule", "ou_values"]

DEFAULT_SKIP: Final = ("people", "users", "accounts", "staff", "employees", "persons")
_HEX: Final = re.compile(r"\\([0-9A-Fa-f]{2})|\\(.)")


def _unescape(value: str) -> str:
    """An RFC 4514 attribute value without its escapes (``R\\2C D`` -> ``R, D``)."""
    raw = bytearray()
    pos = 0
    for match in _HEX.finditer(value):
        raw += value[pos:match.start()].encode()
        raw += bytes.fromhex(match.group(1)) if match.group(1) else match.group(2).encode()
        pos = match.end()
    raw += value[pos:].encode()
    return raw.decode("utf-8", "replace").strip()


def ou_values(dn: str) -> list[str]:
    """The ``ou`` values of ``dn``'s parents, nearest first (the entry's own RDN is left out)."""
    found = []
    for rdn in split_unescaped(dn, ",")[1:]:
        for ava in split_unescaped(rdn, "+"):
            name, sep, value = ava.partition("=")
            if sep and name.strip().lower() in ("ou", "2.5.4.11"):
                text = _unescape(value.strip())
                if text:
                    found.append(text)
    return found


class DepartmentFromDnRule:
    """Fill ``target`` (default ``enterprise:department``) from the DN when it is empty."""

    __slots__ = ("_level", "_setter", "_skip")

    def __init__(self, target: PathSetter, *, skip: Iterable[str] = DEFAULT_SKIP,
                 level: Literal["nearest", "top"] = "nearest") -> None:
        self._setter = target
        self._skip = frozenset(word.casefold() for word in skip)
        self._level = level

    @property
    def label(self) -> str:
        return f"department_from_dn {self._setter.path}"

    def __call__(self, resource: Mapping[str, Any], entry: LdapEntry) -> Update:
        if not is_empty(self._setter.get(resource)):
            return NO_UPDATE
        ous = [ou for ou in ou_values(entry.dn) if ou.casefold() not in self._skip]
        if not ous:
            return NO_UPDATE
        return Update(sets=((self._setter, ous[0] if self._level == "nearest" else ous[-1]),))
