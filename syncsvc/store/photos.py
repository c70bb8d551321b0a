"""Stored thumbnails of users' directory photos (table ``user_photo``).

The sync writes them (the resizing is :mod:`syncsvc.enrich.photos`, done before the page's
transaction); the profile routes read them. ``scim_user.photo_hash`` is kept in step in the
same transaction: the SCIM body shows the thumbnail's URL from it and the photo route uses it
as its ETag.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from syncsvc.store.keysets import chunks, lookups
from syncsvc.store.schema import PHOTOS, USERS

__all__ = ["NewPhoto", "drop_photos", "load_photo", "put_photos", "source_hashes", "touch_users",
           "user_ids"]


@dataclass(frozen=True, slots=True)
class NewPhoto:
    """A thumbnail to store for a user (by id)."""

    user_id: str
    content_type: str
    data: bytes
    source_hash: str
    width: int
    height: int


async def source_hashes(
    conn: AsyncConnection, anchors: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """anchor -> (user id, source hash) of the directory users that have a stored thumbnail."""
    found: dict[str, tuple[str, str]] = {}
    for condition in lookups(conn, USERS.c.anchor, anchors):
        rows = await conn.execute(
            select(USERS.c.anchor, USERS.c.id, PHOTOS.c.source_hash)
            .join(PHOTOS, PHOTOS.c.user_id == USERS.c.id)
            .where(condition)
        )
        found.update({anchor: (user_id, digest) for anchor, user_id, digest in rows})
    return found


async def put_photos(
    conn: AsyncConnection, photos: Sequence[NewPhoto], now: datetime,
    new_users: Collection[str] = (),
) -> None:
    """Insert or replace thumbnails, and point each user's ``photo_hash`` at the new bytes.

    ``new_users``: ids created in this transaction, which have no thumbnail to replace. On a
    first load that is every user, and no DELETE is sent (at 1M users on PostgreSQL the
    page's DELETE took 8.2 s in all: user_photo fills during the load, after its statistics
    were taken)."""
    if not photos:
        return
    ids = [p.user_id for p in photos if p.user_id not in new_users]
    for part in chunks(ids):
        await conn.execute(delete(PHOTOS).where(PHOTOS.c.user_id.in_(part)))
    await conn.execute(insert(PHOTOS), [
        {"user_id": p.user_id, "content_type": p.content_type, "data": p.data,
         "source_hash": p.source_hash, "width": p.width, "height": p.height, "updated": now}
        for p in photos
    ])
    await conn.execute(
        update(USERS).where(USERS.c.id == bindparam("b_id")).values(photo_hash=bindparam("b_hash")),
        [{"b_id": p.user_id, "b_hash": hashlib.sha256(p.data).hexdigest()} for p in photos],
    )


async def drop_photos(conn: AsyncConnection, user_ids: Sequence[str]) -> None:
    """Remove the thumbnails of users whose directory entry no longer has a photo."""
    for part in chunks(list(user_ids)):
        await conn.execute(delete(PHOTOS).where(PHOTOS.c.user_id.in_(part)))
        await conn.execute(update(USERS).where(USERS.c.id.in_(part)).values(photo_hash=None))


async def load_photo(conn: AsyncConnection, user_id: str) -> Row[Any] | None:
    """A user's thumbnail: content_type, data, width, height, updated; None without one."""
    query = select(PHOTOS.c.content_type, PHOTOS.c.data, PHOTOS.c.width, PHOTOS.c.height,
                   PHOTOS.c.updated).where(PHOTOS.c.user_id == user_id)
    return (await conn.execute(query)).first()


async def user_ids(conn: AsyncConnection, anchors: Sequence[str]) -> dict[str, str]:
    """anchor -> id of the stored directory users among ``anchors``."""
    found: dict[str, str] = {}
    for condition in lookups(conn, USERS.c.anchor, anchors):
        rows = await conn.execute(select(USERS.c.anchor, USERS.c.id).where(condition))
        found.update({anchor: user_id for anchor, user_id in rows})
    return found


async def touch_users(conn: AsyncConnection, user_ids: Sequence[str], now: datetime) -> None:
    """A new version and lastModified for users whose only change is their photo."""
    for part in chunks(list(user_ids)):
        await conn.execute(update(USERS).where(USERS.c.id.in_(part))
                           .values(version=USERS.c.version + 1, last_modified=now))
