"""What a request may carry into the store: checks shared by the routes, filters and cursors.

The store's two engines refuse some text that JSON and URLs can carry: PostgreSQL stores no
NUL character (in ``text`` or ``jsonb``), and neither engine can encode an unpaired UTF-16
surrogate (``"\\ud800"`` is valid JSON; UTF-8 has no form for it). Left to the driver, either
is a 500. These checks turn them into the client's 400 before anything is queried, and bound
how deeply a JSON body may nest (every walker of a resource recurses).
"""

from __future__ import annotations

import re
from typing import Any, Final

from syncsvc.errors import InvalidSyntax, InvalidValue

__all__ = ["MAX_DEPTH", "MAX_ID_LENGTH", "MAX_OFFSET", "check_document", "plausible_id",
           "unstorable"]

MAX_DEPTH: Final = 32
"""Deepest nesting of a request body: a User is 4 levels deep, a PATCH or Bulk request 6."""

MAX_ID_LENGTH: Final = 255
"""Longer than any id syncsvc mints (UUIDs, 36); longer ones cannot name a resource."""

MAX_OFFSET: Final = 2**31 - 1
"""Largest startIndex or cursor offset taken as given (a larger one is lowered to it): past
any real result list, and within a 64-bit SQL OFFSET on both engines."""

_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> bool:
    """Whether ``text`` holds a NUL or an unpaired surrogate (no store can keep it)."""
    return _UNSTORABLE.search(text) is not None


def plausible_id(value: str) -> bool:
    """Whether ``value`` could be a resource id at all (else it is simply not found)."""
    return 0 < len(value) <= MAX_ID_LENGTH and not unstorable(value)


def check_document(value: Any) -> None:
    """Refuse a parsed JSON body nested deeper than :data:`MAX_DEPTH` (invalidSyntax) or with
    a key or string no store can keep (invalidValue). Iterative: depth is what is checked."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if unstorable(item):
                raise InvalidValue("a string holds a NUL character or an unpaired surrogate")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise InvalidSyntax(f"the body nests deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        else:
            stack.extend((child, depth + 1) for child in item)
