"""Read and write one value of a SCIM user resource by target path.

Rules name their targets with the mapping's path syntax (:mod:`syncsvc.mapping.targets`):
``displayName``, ``name.givenName``, ``emails[work]``, ``addresses[work].locality``,
``enterprise:department``. Records-only targets (``externalId``, the manager DN) and
``userName`` (the store's unique key; it comes from the mapping alone) are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from syncsvc.mapping.targets import ENTERPRISE_USER, Slot, Target, resolve_target, suggest_target
from syncsvc.mapping.transforms import Kind

__all__ = ["ListSetter", "PathSetter", "Setter", "resolve_path"]

_SETTABLE = frozenset({Slot.TOP, Slot.NAME, Slot.MULTI, Slot.ADDRESS, Slot.ENTERPRISE})


class Setter(Protocol):
    """One place in a resource: read it (None when absent) and write it."""

    @property
    def path(self) -> str: ...

    def get(self, resource: Mapping[str, Any]) -> Any: ...

    def set(self, resource: dict[str, Any], value: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class PathSetter:
    """A single-valued target path (a multi-valued one means its first value of that type)."""

    target: Target

    @property
    def path(self) -> str:
        return self.target.path

    @property
    def is_bool(self) -> bool:
        return self.target.kind is Kind.BOOL

    def get(self, resource: Mapping[str, Any]) -> Any:
        t = self.target
        if t.slot is Slot.TOP:
            return resource.get(t.key)
        if t.slot is Slot.NAME:
            return (resource.get("name") or {}).get(t.key)
        if t.slot is Slot.ENTERPRISE:
            return (resource.get(ENTERPRISE_USER) or {}).get(t.key)
        if t.slot is Slot.ADDRESS:
            item = _typed(resource.get("addresses"), t.type)
            return None if item is None else item.get(t.key)
        item = _typed(resource.get(t.key), t.type)  # Slot.MULTI
        return None if item is None else item.get("value")

    def set(self, resource: dict[str, Any], value: Any) -> None:
        t = self.target
        if t.slot is Slot.TOP:
            resource[t.key] = value
        elif t.slot is Slot.NAME:
            resource.setdefault("name", {})[t.key] = value
        elif t.slot is Slot.ENTERPRISE:
            resource.setdefault(ENTERPRISE_USER, {})[t.key] = value
            schemas = resource.setdefault("schemas", [])
            if ENTERPRISE_USER not in schemas:
                schemas.append(ENTERPRISE_USER)
        elif t.slot is Slot.ADDRESS:
            items = resource.setdefault("addresses", [])
            item = _typed(items, t.type)
            if item is None:
                item = {"type": t.type}
                items.append(item)
            item[t.key] = value
        else:  # Slot.MULTI
            items = resource.setdefault(t.key, [])
            item = _typed(items, t.type)
            if item is not None:
                item["value"] = value
            elif t.primary and not any(i.get("primary") for i in items):
                items.append({"value": value, "type": t.type, "primary": True})
            else:
                items.append({"value": value, "type": t.type})


@dataclass(frozen=True, slots=True)
class ListSetter:
    """A whole multi-valued attribute (``emails``, ``phoneNumbers``), for normalisation rules."""

    key: str

    @property
    def path(self) -> str:
        return self.key

    def get(self, resource: Mapping[str, Any]) -> Any:
        return resource.get(self.key)

    def set(self, resource: dict[str, Any], value: Any) -> None:
        resource[self.key] = value


def _typed(items: Any, type_: str) -> dict[str, Any] | None:
    for item in items or ():
        if isinstance(item, dict) and item.get("type") == type_:
            return item
    return None


def resolve_path(key: Any, problems: list[str], *, what: str = "target") -> PathSetter | None:
    """The setter for a rule's target path, or None with the reason appended to ``problems``."""
    if not isinstance(key, str) or not key.strip():
        problems.append(f"'{what}' must be a SCIM attribute path such as 'displayName'")
        return None
    target = resolve_target(key, "user")
    if target is None:
        problems.append(f"'{what}': unknown SCIM path {key!r}{suggest_target(key, 'user')}")
        return None
    if target.slot not in _SETTABLE or target.path == "userName":
        problems.append(f"'{what}': {target.path} cannot be set by enrichment "
                        "(it belongs to the mapping)")
        return None
    return PathSetter(target)
