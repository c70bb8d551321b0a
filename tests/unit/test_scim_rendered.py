"""RenderedUsers' bound and eviction, and that a page row and a full row of one user in one
state have one key."""

from __future__ import annotations

from collections import namedtuple
from datetime import UTC, datetime

from syncsvc.scim.rendered import _OVERHEAD, RenderedUsers, page_key, user_key
from syncsvc.store import reads


def test_kept_bytes_are_served_by_key() -> None:
    kept = RenderedUsers(1_000_000)
    kept.put(("a", 1), b'{"id":"a"}')

    assert (b'{"id":"a"}', None) == (kept.get(("a", 1)), kept.get(("a", 2)))
    assert (1, 1) == (kept.hits, kept.misses)


def test_the_bound_holds_least_recently_used_first() -> None:
    entry = 1000
    limit = 64 * (entry + _OVERHEAD)  # room for 64 entries, each the largest one kept
    kept = RenderedUsers(limit)
    for n in range(64):
        kept.put(n, b"x" * entry)
    kept.get(0)  # now 1 is the oldest

    kept.put(64, b"x" * entry)

    assert (None, 64) == (kept.get(1), len(kept))
    assert all(kept.get(n) is not None for n in (0, *range(2, 65)))
    assert kept.size_bytes <= limit


def test_the_bound_counts_the_strings_of_a_key() -> None:
    """A user in many groups has a key holding kilobytes of the groups' text: it counts."""
    groups = "[" + ",".join(f'["g{n}","Group {n}"]' for n in range(100)) + "]"
    kept = RenderedUsers(1_000_000)
    kept.put(("https://x/scim/v2", "a", 1, groups), b"{}")

    assert kept.size_bytes == 2 + _OVERHEAD + len("https://x/scim/v2") + len("a") + len(groups)


def test_a_huge_rendering_is_not_kept() -> None:
    kept = RenderedUsers(64 * 1000)
    kept.put("a", b"x" * 1000)
    assert (None, 0) == (kept.get("a"), kept.size_bytes)


def test_zero_bytes_is_off() -> None:
    assert not RenderedUsers(0).enabled


def test_a_page_row_and_a_full_row_have_one_key() -> None:
    """The page reads only the key columns; a miss reads the whole row with them beside it."""
    values = {"id": "u1", "version": 3, "modified_key": "2026-01-01 00:00:00.000000",
              "content_hash": "h", "manager_id": "m1", "photo_hash": None,
              "groups_key": '[["g1","Ops"]]', "manager_name": "Boss"}
    page_row = namedtuple("Page", reads.USER_KEY_NAMES)(**values)  # type: ignore[misc]
    full = {**values, "resource": {"userName": "u"}, "profile": None,
            "last_modified": datetime(2026, 1, 1, tzinfo=UTC), "groups_json": [["g1", "Ops"]]}
    full_row = namedtuple("Full", list(full))(**full)  # type: ignore[misc]

    assert page_key(page_row, "https://x/scim/v2") == user_key(full_row, "https://x/scim/v2")
    assert page_key(page_row, "https://x/scim/v2") != user_key(full_row, "https://y/scim/v2")
