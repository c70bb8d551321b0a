"""Rendered SCIM read responses, kept until the store changes.

A GET of a resource or a list answers with bytes rendered earlier for the same URL, as long as
no commit reached the store since (syncsvc.store.changes): the answer is the one a fresh read
would give. SCIM clients read the same resources over and over (Okta and Entra ID look every
user up by ``userName eq`` before each write, dashboards poll lists), and a read that needs no
query, no rendering and no JSON encoding costs a tenth of one that does.

Bounded by bytes, least recently used first; ``max_bytes = 0`` turns it off. Only successful
reads are kept, and only after authentication and authorization passed: a cached answer never
skips a check. Keys hold the public base URL, so two names of one server never share bytes.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from syncsvc.scim.lru import ByteLru
from syncsvc.store.changes import StoreChanges

__all__ = ["CachedResponse", "ResponseCache"]


@dataclass(frozen=True, slots=True)
class CachedResponse:
    body: bytes
    etag: str | None = None


class ResponseCache:
    """Response bytes by key, valid while :meth:`StoreChanges.token` stays the same."""

    def __init__(self, changes: StoreChanges, max_bytes: int) -> None:
        self._changes = changes
        self._max_bytes = max_bytes
        # One answer may take at most an eighth, so a few huge lists cannot evict everything.
        self._lru: ByteLru[CachedResponse] = ByteLru(
            max_bytes, max_bytes // 8, lambda _key, response: len(response.body))
        self._token: object = None

    @property
    def enabled(self) -> bool:
        return self._max_bytes > 0

    def token(self) -> object:
        """The store's state now; pass it to :meth:`put` for an answer read after this call.
        None: the cache cannot tell whether the store changed, and serves nothing."""
        if not self._max_bytes:
            return None
        token = self._changes.token()
        if token != self._token:
            # The store changed: every answer is stale. Dropping them all at once is what keeps
            # a lookup to one comparison.
            self._lru.clear()
            self._token = token
        return token

    def get(self, key: Hashable) -> CachedResponse | None:
        if self.token() is None:
            return None
        return self._lru.get(key)

    def put(self, key: Hashable, token: object, response: CachedResponse) -> None:
        """Keep ``response``, read after ``token`` was taken, unless the store changed since:
        then it may already be stale."""
        if token is None or self.token() != token:
            return
        self._lru.put(key, response)

    @property
    def hits(self) -> int:
        return self._lru.hits

    @property
    def misses(self) -> int:
        return self._lru.misses

    @property
    def size_bytes(self) -> int:
        return self._lru.size_bytes

    def __len__(self) -> int:
        return len(self._lru)
