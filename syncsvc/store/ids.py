"""Resource ids: time-ordered UUIDs (version 7, RFC 9562 §5.7).

A random (version 4) id lands anywhere in the primary key and in every index that holds ids
(e-mails, memberships, managers): on a large first load each insert touches a page of its own,
and once those B-trees outgrow SQLite's page cache every insert reads pages back from disk.
Version 7 ids begin with the time, so a load appends at the right edge of those B-trees. They
are still 36-character lower-case UUIDs, unguessable in their 62 random bits; only their order
changes (cursor paging sorts by id, which stays stable whatever the order).
"""

from __future__ import annotations

import os
import time
import uuid

__all__ = ["new_id", "uuid7"]

_VERSION = 0x7
_VARIANT = 0b10  # RFC 9562 variant


def uuid7(now_ns: int | None = None) -> uuid.UUID:
    """A version 7 UUID for ``now_ns`` (nanoseconds since the epoch; now when None).

    48 bits of Unix milliseconds, then 12 bits of sub-millisecond time (RFC 9562 §6.2,
    method 3: ids made one after the other in a process sort in the order they were made, to
    the clock's precision), then 62 random bits.
    """
    ns = time.time_ns() if now_ns is None else now_ns
    millis, rest = divmod(ns, 1_000_000)
    fraction = rest * 4096 // 1_000_000  # 12 bits of the millisecond
    rand_b = int.from_bytes(os.urandom(8)) & ((1 << 62) - 1)
    value = ((millis & ((1 << 48) - 1)) << 80) | (_VERSION << 76) | (fraction << 64) \
        | (_VARIANT << 62) | rand_b
    return uuid.UUID(int=value)


def new_id() -> str:
    """A new resource id, as stored: the lower-case hyphenated form of :func:`uuid7`."""
    return str(uuid7())
