"""The push outbox: changes to resources, in commit order, for the push workers to drain.

Rows are written by the store's writes in the transaction of the change
(:func:`syncsvc.store.capture.capture`); this module is what the push side reads and prunes.
Every function takes the caller's connection; none commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from syncsvc.errors import StoreError
from syncsvc.store.capture import capture, safe_head
from syncsvc.store.schema import OUTBOX, PUSH_TARGETS

__all__ = ["OutboxItem", "head_seq", "pending", "prune", "record"]

KINDS = frozenset({"User", "Group"})
OPS = frozenset({"upsert", "delete"})


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One change: resource ``kind``/``resource_id`` was upserted or deleted at ``seq``."""

    seq: int
    kind: str  # User | Group
    resource_id: str
    op: str  # upsert | delete


async def record(
    conn: AsyncConnection, kind: str, ids: Sequence[str], op: str, now: datetime
) -> None:
    """Append one row per id in the caller's transaction (e.g. a reconcile's own repairs)."""
    if kind not in KINDS or op not in OPS:
        raise ValueError(f"outbox rows are User|Group and upsert|delete, not {kind}/{op}")
    await capture(conn, kind, ids, op, now)


async def pending(conn: AsyncConnection, after_seq: int, limit: int) -> list[OutboxItem]:
    """Up to ``limit`` committed rows after ``after_seq``, in seq order.

    Only rows below the safe head are returned (see :mod:`syncsvc.store.capture`): a row still
    being committed never lets a later one overtake it. An empty list may also mean that
    capturing transactions kept the outbox busy just now: ask again on the next poll.
    """
    head = await safe_head(conn)
    if head is None or head <= after_seq:
        return []
    rows = await conn.execute(
        select(OUTBOX.c.seq, OUTBOX.c.kind, OUTBOX.c.resource_id, OUTBOX.c.op)
        .where(OUTBOX.c.seq > after_seq, OUTBOX.c.seq <= head)
        .order_by(OUTBOX.c.seq)
        .limit(limit)
    )
    return [OutboxItem(int(r.seq), r.kind, r.resource_id, r.op) for r in rows]


async def head_seq(conn: AsyncConnection) -> int:
    """The highest seq up to which every row is committed (0 for an empty outbox).

    An initial push reads this *before* it reads the store: every change it might miss has a
    higher seq and is drained afterwards.

    Raises:
        StoreError: capturing transactions kept the outbox busy throughout (retry later).
    """
    head = await safe_head(conn)
    if head is None:
        raise StoreError("the push outbox stayed busy with writes; try again")
    return head


async def prune(conn: AsyncConnection, names: Sequence[str]) -> int:
    """Delete the rows every target in ``names`` has passed; returns how many went.

    A named target without a state row (not started yet) has passed nothing. With no names
    (no target configured) every row goes: nobody will read them.
    """
    if names:
        passed = await conn.execute(
            select(func.count(), func.min(PUSH_TARGETS.c.last_seq))
            .where(PUSH_TARGETS.c.name.in_(list(names)))
        )
        found, low = passed.one()
        if found < len(set(names)) or not low:
            return 0
        result = await conn.execute(delete(OUTBOX).where(OUTBOX.c.seq <= low))
    else:
        result = await conn.execute(delete(OUTBOX))
    return int(result.rowcount or 0)
