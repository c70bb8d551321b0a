"""New versions for resources whose representation shows another resource's name or membership.

A User shows its direct groups (id and displayName) and its manager's displayName; a Group shows
each member's display name. None of these is in the resource's own row, so a write that changes
one (a group renamed, a member added or removed, a manager renamed or deleted) moves the version
and lastModified of every resource that shows it. Otherwise their ETag would stay the same while
their representation changed, and a client's ``If-None-Match`` would get 304 for a stale copy
(RFC 7644 §3.14: the version changes whenever the resource does).

A row that the same write, or the same sync run, has already moved (its lastModified is ``now``)
keeps its one new version, as :func:`syncsvc.store.writes.resolve_managers` does: a first load
would otherwise write every user a second time. Nothing here is captured for push: a downstream
copy holds member and manager ids, not their names, and no membership of its own.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from syncsvc.store.keysets import chunks
from syncsvc.store.schema import GROUPS, MEMBERS, USERS

__all__ = ["group_gone", "memberships_changed", "moved", "renamed"]


def _chunks(ids: Collection[str]) -> Iterable[Sequence[str]]:
    """Each id once, in sorted order."""
    return chunks(sorted(set(ids)))


def moved(table: Table, now: datetime) -> dict[str, Any]:
    """The values of an UPDATE that changes what a row shows: a new version and lastModified,
    unless this write already gave it one."""
    return {
        "version": case((table.c.last_modified == now, table.c.version), else_=table.c.version + 1),
        "last_modified": now,
    }


async def _move(conn: AsyncConnection, table: Table, which: ColumnElement[bool], now: datetime) -> None:
    await conn.execute(
        update(table).where(which, table.c.last_modified != now)
        .values(version=table.c.version + 1, last_modified=now)
    )


def _containing(member_ids: Sequence[str]) -> Any:
    return select(MEMBERS.c.group_id).where(MEMBERS.c.member_id.in_(member_ids))


def _user_members(group_ids: Sequence[str]) -> Any:
    return select(MEMBERS.c.member_id).where(
        MEMBERS.c.group_id.in_(group_ids), MEMBERS.c.member_type == "User")


async def memberships_changed(conn: AsyncConnection, user_ids: Collection[str], now: datetime) -> None:
    """Users who joined or left a group: their ``groups`` changed. Ids of groups are ignored
    (a Group does not show the groups it belongs to)."""
    for part in _chunks(user_ids):
        await _move(conn, USERS, USERS.c.id.in_(part), now)


async def renamed(conn: AsyncConnection, table: Table, ids: Collection[str], now: datetime) -> None:
    """``ids`` of ``table`` show a new name: the groups that list them as members, and their
    reports (users) or their user members (groups), show it too."""
    for part in _chunks(ids):
        await _move(conn, GROUPS, GROUPS.c.id.in_(_containing(part)), now)
        if table is USERS:
            await _move(conn, USERS, USERS.c.manager_id.in_(part), now)
        else:
            await _move(conn, USERS, USERS.c.id.in_(_user_members(part)), now)


async def group_gone(conn: AsyncConnection, group_ids: Collection[str], now: datetime) -> None:
    """Groups about to be deleted: their user members lose them from ``groups``. Call before
    the member rows go (they go with the group)."""
    for part in _chunks(group_ids):
        await _move(conn, USERS, USERS.c.id.in_(_user_members(part)), now)
