"""Read-side columns that fold a User's related data into the row itself.

A User in SCIM carries its groups and its manager's name, which live in other tables. Fetching
them with separate queries costs a database round trip each (on SQLite through aiosqlite, several
thread hops each), which dominated a GET by id. Correlated subqueries put both into the one
``SELECT`` that loads the user (or a page of users): the groups as one JSON array per row, the
manager's name as a scalar.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    Text,
    bindparam,
    cast,
    func,
    select,
    type_coerce,
)

from syncsvc.store.schema import GROUPS, MEMBERS, USERS

__all__ = [
    "AFTER_PARAM",
    "GROUPS_COLUMN",
    "LIMIT_PARAM",
    "MANAGER_COLUMN",
    "OFFSET_PARAM",
    "TOTAL_COLUMN",
    "GroupRef",
    "groups_from_row",
    "page_statement",
    "total_column",
    "user_extra_columns",
    "user_key_columns",
    "user_key_extra_columns",
    "USER_KEY_NAMES",
]

GROUPS_COLUMN = "groups_json"
MANAGER_COLUMN = "manager_name"
TOTAL_COLUMN = "total_matches"
# The parameters of :func:`page_statement`, and the id a keyset page starts after.
OFFSET_PARAM = "page_offset"
LIMIT_PARAM = "page_limit"
AFTER_PARAM = "page_after"


class GroupRef(NamedTuple):
    """A direct group of a user, as the User's ``groups`` attribute shows it."""

    id: str
    display_name: str


def _groups_subquery(dialect: str) -> ColumnElement[Any]:
    pair: ColumnElement[Any]
    if dialect == "postgresql":
        pair = func.json_agg(func.json_build_array(GROUPS.c.id, GROUPS.c.display_name))
    else:
        pair = func.json_group_array(func.json_array(GROUPS.c.id, GROUPS.c.display_name))
    return (
        select(pair)
        .select_from(MEMBERS.join(GROUPS, GROUPS.c.id == MEMBERS.c.group_id))
        .where(MEMBERS.c.member_id == USERS.c.id)
        .scalar_subquery()
    )


def _groups_json(dialect: str) -> ColumnElement[Any]:
    return type_coerce(_groups_subquery(dialect), JSON).label(GROUPS_COLUMN)


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


def _groups_text(dialect: str) -> ColumnElement[Any]:
    """The groups as the database's JSON text: compared, never decoded (asyncpg would decode
    a ``json`` value)."""
    groups = _groups_subquery(dialect)
    return (cast(groups, Text) if dialect == "postgresql" else groups).label("groups_key")


@cache
def user_key_extra_columns(dialect: str) -> tuple[ColumnElement[Any], ...]:
    """What a full User read selects beside the table and its extra columns (groups, manager)
    to hold every value of :data:`USER_KEY_NAMES`."""
    return (type_coerce(USERS.c.last_modified, String).label("modified_key"),
            _groups_text(dialect))


@cache
def user_key_columns(dialect: str) -> tuple[ColumnElement[Any], ...]:
    """Every value a User's default rendering can change with, beside what its version covers
    (:func:`syncsvc.scim.rendered.user_key`): no JSON body, no profile, nothing decoded (the
    timestamp and the groups as the database holds them)."""
    modified, groups = user_key_extra_columns(dialect)
    return (USERS.c.id, USERS.c.version, modified, USERS.c.content_hash, USERS.c.manager_id,
            USERS.c.photo_hash, groups, _manager_name())


def total_column(table: Table, where: ColumnElement[bool] | None) -> ColumnElement[Any]:
    """How many rows match ``where``, as a column of a page's own query: the page and its
    totalResults in one statement (on SQLite a statement saved is several thread hand-offs).
    Computed once per statement: nothing in it refers to the page's rows."""
    query = select(func.count()).select_from(table)
    if where is not None:
        query = query.where(where)
    return query.correlate(None).scalar_subquery().label(TOTAL_COLUMN)


def page_statement(
    table: Table, where: ColumnElement[bool] | None, order_by: Sequence[ColumnElement[Any]],
    columns: Sequence[Any],
) -> Select[Any]:
    """A page of ``columns`` as :func:`syncsvc.store.resources.fetch` reads it (ids chosen
    first, rows joined to them), with its offset and limit as parameters (:data:`OFFSET_PARAM`,
    :data:`LIMIT_PARAM`): one statement serves every page of a query, built and compiled once."""
    page = select(table.c.id)
    if where is not None:
        page = page.where(where)
    chosen = (page.order_by(*order_by)
              .offset(bindparam(OFFSET_PARAM, type_=Integer))
              .limit(bindparam(LIMIT_PARAM, type_=Integer))
              .subquery("page"))
    return (select(*columns)
            .select_from(table.join(chosen, chosen.c.id == table.c.id))
            .order_by(*order_by))


def groups_from_row(row: Any) -> list[GroupRef]:
    """The user's groups from a row selected with the groups column, by display name."""
    pairs = getattr(row, GROUPS_COLUMN) or []  # PostgreSQL's json_agg of no rows is NULL
    refs = [GroupRef(gid, name) for gid, name in pairs]
    refs.sort(key=lambda g: ((g.display_name or "").lower(), g.id))
    return refs


# The names of :func:`user_key_columns`, in order: a full row read with the table, its extra
# columns and :func:`user_key_extra_columns` holds every one of them.
USER_KEY_NAMES: tuple[str, ...] = tuple(c.name for c in user_key_columns("sqlite"))
