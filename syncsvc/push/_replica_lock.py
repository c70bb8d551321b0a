"""One drain per target across replicas: a PostgreSQL advisory lock named after the target.

SQLite serves one process, so there the worker's own lock is enough and this always succeeds.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["replica_lock"]


def _lock_key(target: str) -> int:
    digest = hashlib.sha256(f"syncsvc-push:{target}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@asynccontextmanager
async def replica_lock(conn: AsyncConnection, target: str) -> AsyncIterator[bool]:
    """Hold ``target``'s lock on ``conn`` for the block; yields False (holding nothing) when
    another replica has it. The lock is session-level: ``conn`` must stay open meanwhile."""
    if conn.dialect.name != "postgresql":
        yield True
        return
    key = _lock_key(target)
    got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
    await conn.commit()
    if not got:
        yield False
        return
    try:
        yield True
    finally:
        await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        await conn.commit()
