"""The scopes a token can hold, and which scope implies which.

``admin`` implies every scope; ``scim:write`` implies ``scim:read``. A token stores the scopes
it was given (sorted); implication is applied when a request is checked, so a later scope added
to ``admin``'s reach needs no data migration.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from syncsvc.auth.errors import UnknownScope

__all__ = [
    "ADMIN", "METRICS", "SCIM_READ", "SCIM_WRITE", "VALID_SCOPES", "expand", "grants", "parse_scopes",
]

SCIM_READ: Final = "scim:read"
SCIM_WRITE: Final = "scim:write"
ADMIN: Final = "admin"
METRICS: Final = "metrics"  # scraping /metrics: a Prometheus token that can read nothing else
VALID_SCOPES: Final = (SCIM_READ, SCIM_WRITE, METRICS, ADMIN)
"""Every scope, in the order error messages list them."""

_IMPLIES: Final[dict[str, frozenset[str]]] = {
    SCIM_READ: frozenset({SCIM_READ}),
    SCIM_WRITE: frozenset({SCIM_WRITE, SCIM_READ}),
    METRICS: frozenset({METRICS}),
    ADMIN: frozenset(VALID_SCOPES),
}


def _valid_list() -> str:
    return ", ".join(VALID_SCOPES)


def parse_scopes(value: str | Iterable[str]) -> tuple[str, ...]:
    """Validate scopes given as ``"a,b"`` or as an iterable; return them sorted, deduplicated.

    Raises:
        UnknownScope: a scope is not one of :data:`VALID_SCOPES`, or none is given.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    scopes = {item.strip() for item in items if item.strip()}
    if not scopes:
        raise UnknownScope(f"at least one scope is required; valid scopes: {_valid_list()}")
    unknown = sorted(scopes.difference(VALID_SCOPES))
    if unknown:
        names = ", ".join(repr(s) for s in unknown)
        raise UnknownScope(f"unknown scope {names}; valid scopes: {_valid_list()}")
    return tuple(sorted(scopes))


def expand(scopes: Iterable[str]) -> frozenset[str]:
    """Every scope that ``scopes`` grant, implications included (unknown ones grant nothing)."""
    granted: set[str] = set()
    for scope in scopes:
        granted |= _IMPLIES.get(scope, frozenset())
    return frozenset(granted)


def grants(held: Iterable[str], needed: str) -> bool:
    """Whether a token holding ``held`` may do what needs ``needed``."""
    return needed in expand(held)
