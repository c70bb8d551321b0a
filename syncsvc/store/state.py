"""Durable key/value state of the sync: high-water marks and content-sync cookies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from syncsvc.store.schema import SyncStateRow

__all__ = ["get_state", "set_state"]

STATE = SyncStateRow.__table__


async def get_state(conn: AsyncConnection, key: str) -> str | None:
    return await conn.scalar(select(STATE.c.value).where(STATE.c.key == key))


async def set_state(conn: AsyncConnection, key: str, value: str | None, now: datetime) -> None:
    """Store ``value`` under ``key`` (None removes it) in the caller's transaction."""
    await conn.execute(STATE.delete().where(STATE.c.key == key))
    if value is not None:
        await conn.execute(STATE.insert().values(key=key, value=value, updated=now))
