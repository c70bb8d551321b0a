"""``default``: a fixed value for a target the directory left empty."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncsvc.domain import LdapEntry
from syncsvc.enrich._base import NO_UPDATE, Update
from syncsvc.enrich._paths import PathSetter

__all__ = ["DefaultRule", "is_empty"]


def is_empty(value: Any) -> bool:
    """No value: absent, None or a blank string (a blank title is no title)."""
    return value is None or (isinstance(value, str) and not value.strip())


class DefaultRule:
    """Set ``target`` to ``value`` when it has no value; never overwrite one.

    Args:
        target: where to write.
        value: a non-empty string, or true/false for a boolean target such as ``active``.
    """

    __slots__ = ("_setter", "_value")

    def __init__(self, target: PathSetter, value: str | bool) -> None:
        self._setter = target
        self._value = value

    @property
    def label(self) -> str:
        return f"default {self._setter.path}"

    def __call__(self, resource: Mapping[str, Any], entry: LdapEntry) -> Update:
        if not is_empty(self._setter.get(resource)):
            return NO_UPDATE
        return Update(sets=((self._setter, self._value),))
