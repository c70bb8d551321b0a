"""The anchors a run has read, kept compact: what the sweep after a complete read keeps.

A full read of 1M entries named 1M anchors; kept as strings in a set they took about 120 MiB
for the whole run. Past :data:`EXACT_MAX` anchors only a 64-bit digest of each is kept (8 bytes
an anchor, in a sorted array), so membership can wrongly answer "read" for an anchor that was
not (two anchors with the same digest): the sweep then keeps a row it should have removed,
and never removes one it should keep. At 1M anchors that happens with odds of about 1 in 10^7
per run, and the row goes at a later run's sweep.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Collection, Iterable

__all__ = ["EXACT_MAX", "AnchorSet", "Survivors", "digest"]

# Up to this many anchors the set is exact (an incremental run scopes manager resolution by
# the users it read, and needs their anchors); past it, digests only.
EXACT_MAX = 50_000


def digest(anchor: str) -> int:
    # str's own hash: 64 bits, keyed per process (only this process compares them), and cached
    # in the string, so the sweep's lookups cost no hashing of their own.
    return hash(anchor)


class AnchorSet:
    """The anchors read so far: exact while few, 64-bit digests past ``exact_max``."""

    __slots__ = ("_count", "_digests", "_exact", "_exact_max", "_sorted")

    def __init__(self, exact_max: int | None = None) -> None:
        self._exact_max = EXACT_MAX if exact_max is None else exact_max
        self._exact: set[str] | None = set()
        self._digests = array("q")
        self._sorted = True
        self._count = 0

    def add(self, anchor: str) -> None:
        self.update((anchor,))

    def update(self, anchors: Iterable[str]) -> None:
        if self._exact is not None:
            self._exact.update(anchors)
            if len(self._exact) > self._exact_max:
                self._digests.extend(map(digest, self._exact))
                self._count = len(self._exact)
                self._exact = None
                self._sorted = False
            return
        before = len(self._digests)
        self._digests.extend(map(digest, anchors))
        self._count += len(self._digests) - before
        self._sorted = False

    def __contains__(self, anchor: object) -> bool:
        if self._exact is not None:
            return anchor in self._exact
        if not isinstance(anchor, str):
            return False
        if not self._sorted:
            # Once, at the sweep: the list sorted() builds lives only for the call.
            self._digests = array("q", sorted(self._digests))
            self._sorted = True
        wanted = digest(anchor)
        digests = self._digests
        at = bisect_left(digests, wanted)
        return at < len(digests) and digests[at] == wanted

    def __len__(self) -> int:
        """Anchors added; past ``exact_max`` an anchor added twice counts twice."""
        return len(self._exact) if self._exact is not None else self._count

    def exact(self) -> set[str] | None:
        """The anchors themselves while the set is exact; None past ``exact_max``."""
        return self._exact


class Survivors:
    """What a content-sync refresh leaves alive: entries it sent (``seen``) and did not
    delete later in the same refresh, and every entry its present phase named."""

    __slots__ = ("_deleted", "_present", "_seen")

    def __init__(self, seen: AnchorSet, deleted: Collection[str], present: Collection[str]) -> None:
        self._seen = seen
        self._deleted = set(deleted)
        self._present = set(present)

    def __contains__(self, anchor: object) -> bool:
        return (anchor in self._seen and anchor not in self._deleted) or anchor in self._present

    def __len__(self) -> int:
        """How many survive: exact while ``seen`` is. Past that it is an estimate, which the
        deletion guard only compares with 0 (an empty read): a digest collision can only
        lower it, and an entry sent twice raise it."""
        exact = self._seen.exact()
        if exact is not None:
            return len((exact - self._deleted) | self._present)
        sent = len(self._seen) - sum(1 for a in self._deleted if a in self._seen)
        return max(sent, 0) + sum(
            1 for a in self._present if not (a in self._seen and a not in self._deleted)
        )
