"""A least-recently-used map bounded by what its entries cost in bytes: what both SCIM caches
(:mod:`syncsvc.scim.cache`, :mod:`syncsvc.scim.rendered`) keep their bytes in."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["ByteLru"]

V = TypeVar("V")


class ByteLru(Generic[V]):
    """Values by key; past ``max_bytes`` (as ``cost`` counts them) the least recently used go
    first. A value costing more than ``max_entry`` is not kept: a few huge ones may not push
    out everything else."""

    def __init__(self, max_bytes: int, max_entry: int, cost: Callable[[Hashable, V], int]) -> None:
        self.max_bytes = max_bytes
        self._max_entry = max_entry
        self._cost = cost
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found

    def put(self, key: Hashable, value: V) -> None:
        size = self._cost(key, value)
        if size > self._max_entry:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= self._cost(key, old)
        self._entries[key] = value
        self._bytes += size
        while self._bytes > self.max_bytes:
            gone, evicted = self._entries.popitem(last=False)
            self._bytes -= self._cost(gone, evicted)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
