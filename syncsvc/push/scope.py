"""Which of our users and groups go to a target. Evaluated in the database, never in Python.

- A user is in scope when it matches the target's ``users_filter`` (a SCIM filter over our
  store, translated to SQL by :mod:`syncsvc.scim.filters`) and, when ``groups`` names groups,
  is a member of one of them or of a group nested in one of them.
- Groups go only with ``push_groups``: all of them, or, when ``groups`` names groups, those
  groups and the groups nested in them (the others would go out empty or partial).
- Nothing else decides: an inactive user in scope is pushed as inactive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from syncsvc.scim.filters import where
from syncsvc.settings import TargetSettings
from syncsvc.store.keysets import chunks
from syncsvc.store.schema import GROUPS, MEMBERS, USERS

__all__ = ["Scope", "load_scope"]


class Scope:
    """The scope of one target, resolved once per drain (the named groups' ids and nesting)."""

    def __init__(self, target: TargetSettings, dialect: str, group_ids: frozenset[str] | None):
        self.target = target
        self._dialect = dialect
        # None: no group limit. Otherwise the named groups and every group nested in them.
        self.group_ids = group_ids
        self._filter = where("User", target.users_filter, dialect) if target.users_filter else None

    def user_clause(self) -> ColumnElement[bool]:
        """WHERE over ``scim_user`` for the users in scope."""
        clauses: list[ColumnElement[bool]] = []
        if self._filter is not None:
            clauses.append(self._filter)
        if self.group_ids is not None:
            clauses.append(exists().where(
                MEMBERS.c.member_id == USERS.c.id, MEMBERS.c.group_id.in_(sorted(self.group_ids))))
        return and_(true(), *clauses)

    def group_clause(self) -> ColumnElement[bool]:
        """WHERE over ``scim_group`` for the groups in scope (false when groups are not pushed)."""
        if not self.target.push_groups:
            return false()
        if self.group_ids is None:
            return true()
        return GROUPS.c.id.in_(sorted(self.group_ids))

    def users(self) -> Select[tuple[str]]:
        """Ids of the users in scope, in id order (for keyset paging)."""
        return select(USERS.c.id).where(self.user_clause()).order_by(USERS.c.id)

    def groups(self) -> Select[tuple[str]]:
        return select(GROUPS.c.id).where(self.group_clause()).order_by(GROUPS.c.id)

    async def users_in(self, conn: AsyncConnection, ids: Sequence[str]) -> set[str]:
        """Those of ``ids`` that are users in scope (an id that is no user is not)."""
        return await _in_scope(conn, USERS.c.id, self.user_clause(), ids)

    async def groups_in(self, conn: AsyncConnection, ids: Sequence[str]) -> set[str]:
        return await _in_scope(conn, GROUPS.c.id, self.group_clause(), ids)

    async def count_users(self, conn: AsyncConnection) -> int:
        return int(await conn.scalar(
            select(func.count()).select_from(USERS).where(self.user_clause())) or 0)


async def load_scope(conn: AsyncConnection, target: TargetSettings) -> Scope:
    """Resolve ``target.groups`` (displayNames, case-insensitive) with their nested groups."""
    group_ids: frozenset[str] | None = None
    if target.groups:
        names = [g.lower() for g in target.groups]
        found = set(await conn.scalars(
            select(GROUPS.c.id).where(GROUPS.c.display_name_lower.in_(names))))
        frontier = set(found)
        while frontier:  # walk nested groups down; `found` guards against membership cycles
            nested = set(await conn.scalars(select(MEMBERS.c.member_id).where(
                MEMBERS.c.group_id.in_(frontier), MEMBERS.c.member_type == "Group")))
            frontier = nested - found
            found |= frontier
        group_ids = frozenset(found)
    return Scope(target, conn.dialect.name, group_ids)


async def _in_scope(
    conn: AsyncConnection, id_column: Any, clause: ColumnElement[bool], ids: Sequence[str]
) -> set[str]:
    """Those of ``ids`` whose rows meet ``clause``, asked in chunks (bound-parameter limits)."""
    out: set[str] = set()
    for part in chunks(ids):
        out.update(await conn.scalars(select(id_column).where(id_column.in_(part), clause)))
    return out
