"""Change capture for the push outbox: the store half of ``syncsvc.push.outbox``.

The sync writes (:mod:`syncsvc.store.writes`) and the SCIM writes
(:mod:`syncsvc.store.resources`) call :func:`capture` in the transaction that changes a resource,
so a change and its outbox row commit or roll back together. They call it only when targets are
configured (``WriteContext.capture``, ``ScimService(capture=...)``): with none, nothing is written.

Ordering on PostgreSQL: a sequence hands out ``seq`` values in call order, but transactions
commit in any order, so a reader that moved past seq 11 could miss seq 10 committing later. Each
capturing transaction therefore holds :data:`OUTBOX_LOCK` in *shared* mode from its first outbox
row to its commit (writers never wait for each other), and a reader takes it *exclusively* for an
instant to learn the highest seq below which every row is committed (:func:`safe_head`). SQLite
has one writer at a time, so commit order is seq order there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from syncsvc.store.schema import OUTBOX

__all__ = ["OUTBOX_LOCK", "capture", "safe_head"]

# A fixed 64-bit advisory lock key: "sspush" in ASCII (the sync lock uses "syncsvc").
OUTBOX_LOCK: Final = 0x737370757368
_CHUNK: Final = 1000  # rows per executemany: far from any bind-parameter limit


async def capture(
    conn: AsyncConnection, kind: str, ids: Sequence[str], op: str, now: datetime
) -> None:
    """Write one outbox row per id (``kind`` User|Group, ``op`` upsert|delete), in order."""
    if not ids:
        return
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": OUTBOX_LOCK})
    rows = [{"kind": kind, "resource_id": rid, "op": op, "created": now} for rid in ids]
    for start in range(0, len(rows), _CHUNK):
        await conn.execute(insert(OUTBOX), rows[start : start + _CHUNK])


async def safe_head(conn: AsyncConnection, *, attempts: int = 50) -> int | None:
    """The highest seq such that every row up to it is committed (0: none); None when capturing
    transactions kept the outbox busy through every attempt (try again later).

    On PostgreSQL the exclusive lock is only *tried* (never queued behind writers, so it can
    take part in no deadlock) and released at once; the reader's own transaction holds nothing.
    """
    if conn.dialect.name != "postgresql":
        return int(await conn.scalar(select(func.coalesce(func.max(OUTBOX.c.seq), 0))) or 0)
    for attempt in range(attempts):
        if await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": OUTBOX_LOCK}):
            try:
                return int(await conn.scalar(select(func.coalesce(func.max(OUTBOX.c.seq), 0))) or 0)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": OUTBOX_LOCK})
        await asyncio.sleep(min(0.005 * (attempt + 1), 0.05))
    return None
