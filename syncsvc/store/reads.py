"""Read-side columns that fold a User's related data into the row itself.

A User in SCIM carries its groups and its manager's name, which live in other tables. Fetching
them with separate queries costs a database round trip each (on SQLite through aiosqlite, several
thread hops each), which dominated a GET by id. Correlated subqueries put both into the one
``SELECT`` that loads the user (or a page of users): the groups as one JSON array per row, the
manager's name as a scalar.
"""

from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import JSON, ColumnElement, func, select, type_coerce

from syncsvc.store.schema import GROUPS, MEMBERS, USERS

__all__ = ["GROUPS_COLUMN", "MANAGER_COLUMN", "GroupRef", "groups_from_row", "user_extra_columns"]

GROUPS_COLUMN = "groups_json"
MANAGER_COLUMN = "manager_name"


class GroupRef(NamedTuple):
    """A direct group of a user, as the User's ``groups`` attribute shows it."""

    id: str
    display_name: str


def _groups_json(dialect: str) -> ColumnElement[Any]:
    pair: ColumnElement[Any]
    if dialect == "postgresql":
        pair = func.json_agg(func.json_build_array(GROUPS.c.id, GROUPS.c.display_name))
    else:
        pair = func.json_group_array(func.json_array(GROUPS.c.id, GROUPS.c.display_name))
    inner = (
        select(pair)
        .select_from(MEMBERS.join(GROUPS, GROUPS.c.id == MEMBERS.c.group_id))
        .where(MEMBERS.c.member_id == USERS.c.id)
        .scalar_subquery()
    )
    return type_coerce(inner, JSON).label(GROUPS_COLUMN)


def _manager_name() -> ColumnElement[Any]:
    manager = USERS.alias("manager")
    return (
        select(func.coalesce(manager.c.display_name, manager.c.user_name))
        .where(manager.c.id == USERS.c.manager_id)
        .scalar_subquery()
        .label(MANAGER_COLUMN)
    )


@cache  # built once per shape: constructing the subqueries cost more than running them
def user_extra_columns(dialect: str, *, groups: bool, manager: bool) -> tuple[ColumnElement[Any], ...]:
    """Columns to select beside ``USERS``: what the requested attributes need, nothing more."""
    out: list[ColumnElement[Any]] = []
    if groups:
        out.append(_groups_json(dialect))
    if manager:
        out.append(_manager_name())
    return tuple(out)


def groups_from_row(row: Any) -> list[GroupRef]:
    """The user's groups from a row selected with the groups column, by display name."""
    pairs = getattr(row, GROUPS_COLUMN) or []  # PostgreSQL's json_agg of no rows is NULL
    refs = [GroupRef(gid, name) for gid, name in pairs]
    refs.sort(key=lambda g: ((g.display_name or "").lower(), g.id))
    return refs
