"""Each User's default SCIM rendering as JSON bytes, kept by every input it depends on.

A list page of 100 users decoded 100 stored JSON documents, rendered each one (completeness,
meta, manager, groups) and encoded the result: 130-170 us a user, 13-23 ms a page, and every
page of an unchanged store paid it again once any commit had emptied the response cache
(:mod:`syncsvc.scim.cache`). Here a page reads only the keys of its users (a narrow query) and
renders only those whose key it has not seen. A GET by id and a ``userName eq`` lookup do the
same for their one user: one key read and kept bytes in place of the row's JSON decoded,
rendered and encoded (about a third of such a request's CPU on SQLite).

The key is every value the rendering depends on that can change, so a kept rendering is the one
a fresh render would give (docs/reliability.md, "Freshness of SCIM reads"):

- ``version`` and ``last_modified``: every write of the body, the profile or a timestamp moves
  them; ``content_hash`` too, for a sync that wrote the directory's body;
- ``manager_id``, the manager's name, ``photo_hash`` and the user's groups: these change without
  the user's version moving (a manager renamed, resolved later in a sync or deleted; a photo
  stored; a group renamed or its members changed);
- the public base URL, which every ``$ref`` and ``meta.location`` holds.

Nothing is ever invalidated: a changed user has a new key, and its old rendering ages out.
Bounded by bytes, least recently used first; ``max_bytes = 0`` turns it off.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import orjson

from syncsvc.scim.lru import ByteLru
from syncsvc.store import reads

__all__ = ["RenderedUsers", "embed", "page_key", "user_key"]

# What an entry holds beside its bytes (the key tuple and its values, the dict slot), roughly:
# counted so that the bound holds for small renderings too.
_OVERHEAD = 512
_KEY_LENGTH = len(reads.USER_KEY_NAMES)


def _size(key: Hashable, body: bytes) -> int:
    """What an entry costs, roughly: its bytes, its key's strings (the groups' text of a user
    in many groups is kilobytes) and the fixed overhead."""
    held = sum(len(v) for v in key if isinstance(v, str)) if isinstance(key, tuple) else 0
    return len(body) + held + _OVERHEAD


def page_key(row: Any, base_url: str) -> Hashable:
    """The key of a row read with :func:`syncsvc.store.reads.user_key_columns` first (a page;
    what follows them, such as the page's total, is not part of it)."""
    return (base_url, *row[:_KEY_LENGTH])


def user_key(row: Any, base_url: str) -> Hashable:
    """The key of a full row read with the key columns beside it (SQLAlchemy's row or the raw
    readers' named tuple): equal to :func:`page_key` of the same user in the same state."""
    return (base_url, *(getattr(row, name) for name in reads.USER_KEY_NAMES))


def embed(body: bytes) -> Any:
    """Encoded JSON that :func:`syncsvc.jsoncodec.dumps` writes as it is, inside a larger
    document (a ListResponse of kept renderings costs a copy of the bytes, no encoding)."""
    return orjson.Fragment(body)


class RenderedUsers(ByteLru[bytes]):
    """Rendered User bytes by :func:`user_key`."""

    def __init__(self, max_bytes: int) -> None:
        # A user carrying a huge body may not push out everything else.
        super().__init__(max_bytes, max_bytes // 64, _size)

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0
