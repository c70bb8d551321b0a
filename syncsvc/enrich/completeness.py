"""A profile's completeness, 0-100: the share of the fields a complete profile has.

The same ten fields, with the same tests, as the directory-quality report
(:data:`syncsvc.profiles.quality.FIELDS`, which runs them in SQL over the whole store); here
they run on one user, for the profile extension's readOnly ``completeness`` attribute. A test
checks that both give every user the same score.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["FIELD_NAMES", "completeness"]

ENTERPRISE_USER: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _filled(value: Any) -> bool:
    if value is None:
        return False
    return bool(value.strip()) if isinstance(value, str) else True


def _count(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


def _get(doc: Mapping[str, Any] | None, *keys: str) -> Any:
    node: Any = doc
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


# (resource body as stored, profile, manager id, primary e-mail, stored thumbnail hash) -> bool
_Test = Callable[[Mapping[str, Any], Mapping[str, Any] | None, Any, Any, Any], bool]

_TESTS: Final[Mapping[str, _Test]] = {
    "title": lambda r, p, m, e, t: _filled(r.get("title")),
    "email": lambda r, p, m, e, t: bool(e),  # as the SQL: any non-empty primary e-mail
    "phone": lambda r, p, m, e, t: _count(r.get("phoneNumbers")) > 0,
    "manager": lambda r, p, m, e, t: m is not None,
    "department": lambda r, p, m, e, t: _filled(_get(r, ENTERPRISE_USER, "department")),
    "location": lambda r, p, m, e, t: _filled(_get(p, "location")) or _count(r.get("addresses")) > 0,
    "photo": lambda r, p, m, e, t: (_filled(_get(p, "photo", "url")) or t is not None
                                    or _count(r.get("photos")) > 0),
    "headline": lambda r, p, m, e, t: _filled(_get(p, "headline")),
    "bio": lambda r, p, m, e, t: _filled(_get(p, "bio")),
    "skills": lambda r, p, m, e, t: _count(_get(p, "skills")) > 0,
}

FIELD_NAMES: Final = tuple(_TESTS)


def completeness(
    resource: Mapping[str, Any],
    profile: Mapping[str, Any] | None,
    *,
    manager_id: str | None,
    primary_email: str | None,
    photo_hash: str | None,
) -> int:
    """The user's completeness, a whole number from 0 to 100."""
    hits = sum(1 for test in _TESTS.values()
               if test(resource, profile, manager_id, primary_email, photo_hash))
    return round(100 * hits / len(_TESTS))
