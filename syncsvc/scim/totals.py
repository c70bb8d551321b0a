"""The totalResults of SCIM lists, kept until the store changes.

Every page of a list answers with how many resources match it in all. Counting them is the dear
part of a page on a large store: an index-only count of 100k users takes ~30 ms on PostgreSQL,
several times the page itself. A client paging through a list (or a dashboard polling one page)
asks the same count again and again, and the answer is the same as long as no commit reached the
store; the response cache (:mod:`syncsvc.scim.cache`) keeps whole answers under exactly that
rule, and this keeps the totals under it too, for pages it does not keep (a cache turned off,
every page of a walk a new URL).

The rule is the response cache's: a total is kept with the token
(:meth:`syncsvc.store.changes.StoreChanges.token`) taken before it was counted, only if the token
did not move while it was counted; any change of the token drops every total; no token (SQLite in
memory, the PostgreSQL listener not connected) keeps and serves nothing.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

from syncsvc.scim.lru import ByteLru

__all__ = ["ChangeTokens", "ListTotals"]

# The usual clients page a handful of lists: a few hundred short filters fit in this.
DEFAULT_BYTES = 128 * 1024
# What an entry holds beside its filter's text (the key tuple, the int, the dict slot), roughly.
_OVERHEAD = 256


def _size(key: Hashable, _total: int) -> int:
    """A key is (resource type, filter): its text is what can be large (a .search body)."""
    return _OVERHEAD + sum(len(v) for v in key if isinstance(v, str)) \
        if isinstance(key, tuple) else _OVERHEAD


class ChangeTokens(Protocol):
    """What :class:`syncsvc.store.changes.StoreChanges` offers a read cache."""

    def token(self) -> object:
        """Equal tokens: no commit reached the store in between. None: unknown."""
        ...


class ListTotals:
    """Totals by list key (resource type, filter), valid while the store's token stays;
    bounded by bytes (the filters' text), least recently used first."""

    def __init__(self, changes: ChangeTokens | None, max_bytes: int = DEFAULT_BYTES) -> None:
        self._changes = changes
        # A huge filter may not push out the totals of everything else.
        self._totals: ByteLru[int] = ByteLru(max_bytes, max_bytes // 16, _size)
        self._token: object = None

    def token(self) -> object:
        """The store's state now; pass it to :meth:`put` for a total counted after this call.
        None: whether the store changed cannot be told; nothing is kept or served."""
        if self._changes is None or not self._totals.max_bytes:
            return None
        token = self._changes.token()
        if token != self._token:
            # The store changed: every total may be wrong. Dropping them all keeps a lookup to
            # one comparison, as in the response cache.
            self._totals.clear()
            self._token = token
        return token

    def get(self, key: Hashable, token: object) -> int | None:
        """The total of ``key`` if it was counted in the state ``token`` (just taken with
        :meth:`token`) names."""
        if token is None or token != self._token:
            return None
        return self._totals.get(key)

    def put(self, key: Hashable, token: object, total: int) -> None:
        """Keep ``total``, counted after ``token`` was taken, unless the store changed since:
        then it may already be wrong."""
        if token is None or self.token() != token:
            return
        self._totals.put(key, total)

    def current(self, token: object) -> bool:
        """Whether the store is still in the state ``token`` was taken in (a total from
        :meth:`get` still goes with rows read since)."""
        return token is not None and self.token() == token

    @property
    def hits(self) -> int:
        return self._totals.hits

    @property
    def misses(self) -> int:
        return self._totals.misses

    def __len__(self) -> int:
        return len(self._totals)
