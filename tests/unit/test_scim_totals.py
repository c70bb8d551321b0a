"""ListTotals' token rule and bounds, with the store's change token set by hand."""

from __future__ import annotations

from typing import Any

from syncsvc.scim.totals import ListTotals


class Token:
    """Stands in for StoreChanges: the token is whatever the test sets."""

    def __init__(self) -> None:
        self.value: Any = (0, 0)

    def token(self) -> Any:
        return self.value


def totals(max_bytes: int = 128 * 1024) -> tuple[ListTotals, Token]:
    changes = Token()
    return ListTotals(changes, max_bytes), changes


def test_a_total_is_served_until_the_store_changes() -> None:
    t, changes = totals()
    token = t.token()
    t.put(("User", None), token, 7)

    assert 7 == t.get(("User", None), t.token())
    changes.value = (0, 1)
    assert t.get(("User", None), t.token()) is None


def test_a_total_counted_across_a_change_is_not_kept() -> None:
    """The token is taken before the count: a commit during it makes the total suspect."""
    t, changes = totals()
    token = t.token()
    changes.value = (1, 0)

    t.put(("User", None), token, 7)

    assert t.get(("User", None), t.token()) is None
    assert not t.current(token)


def test_an_unknown_store_state_serves_and_keeps_nothing() -> None:
    t, changes = totals()
    changes.value = None

    t.put(("User", None), t.token(), 7)

    assert (None, 0) == (t.get(("User", None), t.token()), len(t))


def test_zero_totals_are_kept_too() -> None:
    t, _ = totals()
    t.put(("User", 'userName eq "nobody"'), t.token(), 0)

    assert 0 == t.get(("User", 'userName eq "nobody"'), t.token())


def test_memory_is_bounded_by_the_filters_text() -> None:
    """A few hundred short filters fit; a huge one (a .search body) is not kept at all."""
    t, _ = totals(64 * 1024)
    token = t.token()
    for n in range(1000):
        t.put(("User", f'userName eq "user{n}"'), token, n)
    t.put(("User", "x" * 10_000), token, 1)

    assert 100 < len(t) < 1000
    assert 999 == t.get(("User", 'userName eq "user999"'), token)
    assert t.get(("User", "userName eq \"user0\""), token) is None
    assert t.get(("User", "x" * 10_000), token) is None
