"""The bodies our resources would get on a target now, read from the store in one go.

References (a manager, a group's members) are written as the target's ids, from the link
cache: what is not on the target yet makes the body ``deferred`` (see
:mod:`syncsvc.push.payload`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.push._plan import RemoteIds, RemoteKeys
from syncsvc.push.payload import Payload, group_payload, user_payload
from syncsvc.push.scope import Scope
from syncsvc.push.state import RemoteLink
from syncsvc.settings import TargetSettings
from syncsvc.store.schema import GROUPS, MEMBERS, USERS, served_columns

__all__ = ["read_payloads"]

_IN_LIST = 1000  # ids per IN (...) query


async def read_payloads(
    engine: AsyncEngine, target: TargetSettings, links: Mapping[tuple[str, str], RemoteLink],
    kind: str, ids: Sequence[str], scope: Scope,
) -> dict[str, Payload]:
    """The current bodies of ``ids`` of ``kind`` (gone ones are left out)."""
    remote_users = RemoteIds(links, "User")
    out: dict[str, Payload] = {}
    async with engine.connect() as conn:
        for start in range(0, len(ids), _IN_LIST):
            part = list(ids[start : start + _IN_LIST])
            if kind == "User":
                for row in await conn.execute(select(USERS).where(USERS.c.id.in_(part))):
                    out[row.id] = user_payload(row, target, remote_users)
                continue
            rows = list(await conn.execute(
                select(*served_columns(GROUPS)).where(GROUPS.c.id.in_(part))))
            members: dict[str, list[Any]] = {row.id: [] for row in rows}
            for m in await conn.execute(
                    select(MEMBERS.c.group_id, MEMBERS.c.member_id, MEMBERS.c.member_type)
                    .where(MEMBERS.c.group_id.in_(part))):
                members[m.group_id].append(m)
            every = [m for ms in members.values() for m in ms]
            inside = await scope.users_in(
                conn, [m.member_id for m in every if m.member_type == "User"])
            inside |= await scope.groups_in(
                conn, [m.member_id for m in every if m.member_type == "Group"])
            remote = RemoteKeys(links)
            in_scope = {m.member_id: m.member_id in inside for m in every}
            for row in rows:
                out[row.id] = group_payload(row, members[row.id], target, remote, in_scope)
    return out
