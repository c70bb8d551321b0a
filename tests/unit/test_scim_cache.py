"""ResponseCache's bounds and its token rule, with the store's change token set by hand."""

from __future__ import annotations

from typing import Any, cast

from syncsvc.scim.cache import CachedResponse, ResponseCache
from syncsvc.store.changes import StoreChanges


class Token:
    """Stands in for StoreChanges: the token is whatever the test sets."""

    def __init__(self) -> None:
        self.value: Any = (0, 0)

    def token(self) -> Any:
        return self.value


def cache(max_bytes: int) -> tuple[ResponseCache, Token]:
    changes = Token()
    return ResponseCache(cast(StoreChanges, changes), max_bytes), changes


def body(size: int, fill: bytes = b"x") -> CachedResponse:
    return CachedResponse(fill * size, 'W/"1"')


def test_an_answer_is_served_until_the_store_changes() -> None:
    c, changes = cache(1000)
    c.put("a", c.token(), body(10))

    assert body(10) == c.get("a")
    changes.value = (0, 1)
    assert c.get("a") is None


def test_an_answer_read_before_a_change_is_not_kept() -> None:
    """The token is taken before the read: a commit during the read makes the answer suspect."""
    c, changes = cache(1000)
    token = c.token()
    changes.value = (1, 0)

    c.put("a", token, body(10))

    assert c.get("a") is None


def test_an_unknown_store_state_serves_and_keeps_nothing() -> None:
    c, changes = cache(1000)
    c.put("a", c.token(), body(10))
    changes.value = None

    c.put("b", c.token(), body(10))

    assert (None, None, 0) == (c.get("a"), c.get("b"), len(c))


def test_the_least_recently_used_go_first_and_bytes_stay_bounded() -> None:
    c, _ = cache(800)  # at most 100 bytes an answer
    for key in "abcdefgh":
        c.put(key, c.token(), body(100))
    c.get("a")  # used: "b" is now the oldest

    c.put("i", c.token(), body(100))

    assert c.get("b") is None
    assert all(c.get(key) is not None for key in "acdefghi")
    assert 8 == len(c)


def test_an_answer_over_an_eighth_of_the_budget_is_not_kept() -> None:
    c, _ = cache(800)

    c.put("big", c.token(), body(101))

    assert c.get("big") is None


def test_zero_bytes_turns_it_off() -> None:
    c, _ = cache(0)

    c.put("a", c.token(), body(1))

    assert (False, None) == (c.enabled, c.get("a"))
