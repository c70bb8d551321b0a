"""Reads and writes of SCIM resources for the API: rows in, rows out, no SCIM JSON shapes here.

Writes take the caller's transaction. Optimistic concurrency: an update names the version it
read; a row changed meanwhile (by a sync or another client) makes it fail instead of losing
either write. With ``capture=True`` (push targets are configured) each write also records its
change in the push outbox, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from syncsvc.errors import ConcurrentUpdate, InvalidValue, Uniqueness
from syncsvc.store import dependents, ids
from syncsvc.store.capture import capture as capture_change
from syncsvc.store.keysets import chunks
from syncsvc.store.rows import emails_of, user_columns
from syncsvc.store.schema import EMAILS, GROUPS, MEMBERS, USERS, served_columns

__all__ = [
    "GROUPS",
    "USERS",
    "bump_version",
    "change_members",
    "count",
    "delete_resource",
    "fetch",
    "get",
    "groups_of_users",
    "insert_group",
    "insert_user",
    "members_of_groups",
    "names_of_users",
    "replace_members",
    "update_group",
    "update_user",
]



async def get(
    conn: AsyncConnection, table: Table, resource_id: str, *, for_update: bool = False,
    columns: Sequence[Any] = (),
) -> Row[Any] | None:
    """One row by id; ``for_update`` locks it until the transaction ends (PostgreSQL; SQLite
    serialises writers anyway and renders no FOR UPDATE). ``columns`` are selected beside the
    table's own (see :mod:`syncsvc.store.reads`)."""
    query = select(*served_columns(table), *columns).where(table.c.id == resource_id)
    if for_update:
        query = query.with_for_update()
    return (await conn.execute(query)).first()


async def count(conn: AsyncConnection, table: Table, where: ColumnElement[bool] | None) -> int:
    query = select(func.count()).select_from(table)
    if where is not None:
        query = query.where(where)
    return int(await conn.scalar(query) or 0)


async def fetch(
    conn: AsyncConnection,
    table: Table,
    *,
    where: ColumnElement[bool] | None,
    order_by: Sequence[ColumnElement[Any]],
    offset: int,
    limit: int,
    columns: Sequence[Any] | None = None,
) -> list[Row[Any]]:
    """One page of rows; ``columns`` says what is loaded (the table's own by default).

    The page is chosen by ids alone and the rows joined to it afterwards (a deferred join): a
    deep ``OFFSET`` then walks an index instead of whole rows, and per-row subqueries among
    ``columns`` run for the rows returned, not for every row skipped.
    """
    page = select(table.c.id)
    if where is not None:
        page = page.where(where)
    chosen = page.order_by(*order_by).offset(offset).limit(limit).subquery("page")
    query = (
        select(*(columns or served_columns(table)))
        .select_from(table.join(chosen, chosen.c.id == table.c.id))
        .order_by(*order_by)
    )
    return list(await conn.execute(query))


async def groups_of_users(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, list[Row[Any]]]:
    """Direct group memberships of each user: (member_id, group id, displayName)."""
    out: dict[str, list[Row[Any]]] = {uid: [] for uid in user_ids}
    if not user_ids:
        return out
    rows = await conn.execute(
        select(MEMBERS.c.member_id, GROUPS.c.id, GROUPS.c.display_name)
        .join(GROUPS, GROUPS.c.id == MEMBERS.c.group_id)
        .where(MEMBERS.c.member_id.in_(user_ids))
        .order_by(GROUPS.c.display_name_lower)
    )
    for row in rows:
        out[row.member_id].append(row)
    return out


async def names_of_users(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, str]:
    """displayName (else userName) of users, e.g. managers."""
    if not ids:
        return {}
    rows = await conn.execute(
        select(USERS.c.id, func.coalesce(USERS.c.display_name, USERS.c.user_name)).where(
            USERS.c.id.in_(ids)
        )
    )
    return {id_: name for id_, name in rows}


async def members_of_groups(conn: AsyncConnection, group_ids: Sequence[str]) -> dict[str, list[Row[Any]]]:
    """Members of each group with their type and display name, in a stable order."""
    out: dict[str, list[Row[Any]]] = {gid: [] for gid in group_ids}
    if not group_ids:
        return out
    nested = GROUPS.alias("nested")
    rows = await conn.execute(
        select(
            MEMBERS.c.group_id,
            MEMBERS.c.member_id,
            MEMBERS.c.member_type,
            func.coalesce(USERS.c.display_name, USERS.c.user_name, nested.c.display_name).label("display"),
        )
        .outerjoin(USERS, and_(USERS.c.id == MEMBERS.c.member_id, MEMBERS.c.member_type == "User"))
        .outerjoin(nested, and_(nested.c.id == MEMBERS.c.member_id, MEMBERS.c.member_type == "Group"))
        .where(MEMBERS.c.group_id.in_(group_ids))
        .order_by(MEMBERS.c.group_id, MEMBERS.c.member_id)
    )
    for row in rows:
        out[row.group_id].append(row)
    return out


async def _write_emails(
    conn: AsyncConnection, user_id: str, resource: dict[str, Any], *, new: bool = False,
) -> None:
    """The user's e-mail rows (what `emails` filters search); ``new``: the user was just
    inserted, so there are none to delete."""
    if not new:
        await conn.execute(delete(EMAILS).where(EMAILS.c.user_id == user_id))
    rows = [{"user_id": user_id, **email} for email in emails_of(resource)]
    if rows:
        await conn.execute(insert(EMAILS), rows)


async def _taken(conn: AsyncConnection, column: Any, value: str, table: Table, own_id: str | None) -> bool:
    query = select(table.c.id).where(column == value)
    if own_id is not None:
        query = query.where(table.c.id != own_id)
    return (await conn.execute(query.limit(1))).first() is not None


async def _check_user_name(conn: AsyncConnection, user_name: str, own_id: str | None) -> None:
    if await _taken(conn, USERS.c.user_name_lower, user_name.lower(), USERS, own_id):
        raise Uniqueness(f"userName {user_name!r} is already taken")


def _slug_of(profile: dict[str, Any] | None) -> str | None:
    """The profile's publicProfile.slug as its unique, indexed column holds it (lower case).

    A slug is reserved whether or not the page is enabled: turning a page on never collides.
    """
    public = (profile or {}).get("publicProfile")
    slug = public.get("slug") if isinstance(public, dict) else None
    if not isinstance(slug, str) or not slug.strip():
        return None
    return slug.strip().lower()


async def _check_slug(conn: AsyncConnection, slug: str | None, own_id: str | None) -> None:
    if slug is not None and await _taken(conn, USERS.c.public_slug, slug, USERS, own_id):
        raise Uniqueness(f"public profile slug {slug!r} is already taken")


async def _check_manager(conn: AsyncConnection, manager_id: str | None) -> None:
    if manager_id is not None and await get(conn, USERS, manager_id) is None:
        raise InvalidValue(f"manager {manager_id!r} is not a user of this service")


async def insert_user(
    conn: AsyncConnection,
    *,
    resource: dict[str, Any],
    external_id: str | None,
    manager_id: str | None,
    profile: dict[str, Any] | None,
    now: datetime,
    capture: bool = False,
) -> str:
    """A local user (created through SCIM): fully writable, untouched by syncs."""
    await _check_user_name(conn, resource["userName"], None)
    slug = _slug_of(profile)
    await _check_slug(conn, slug, None)
    await _check_manager(conn, manager_id)
    new_id = ids.new_id()
    try:
        await conn.execute(
            insert(USERS).values(
                id=new_id, origin="local", external_id=external_id, manager_id=manager_id,
                profile=profile, public_slug=slug, content_hash="", version=1, created=now,
                last_modified=now, **user_columns(resource),
            )
        )
    except IntegrityError as exc:  # a concurrent insert won the race for the userName or slug
        raise Uniqueness(f"userName {resource['userName']!r} or the public profile slug "
                         "is already taken") from exc
    await _write_emails(conn, new_id, resource, new=True)
    if capture:
        await capture_change(conn, "User", [new_id], "upsert", now)
    return new_id


def _kind(table: Table) -> str:
    return "User" if table is USERS else "Group"


async def _versioned_update(
    conn: AsyncConnection, table: Table, row: Row[Any], values: dict[str, Any], now: datetime,
    capture: bool = False,
) -> None:
    result = await conn.execute(
        update(table)
        .where(table.c.id == row.id, table.c.version == row.version)
        .values(version=row.version + 1, last_modified=now, **values)
    )
    if result.rowcount != 1:
        raise ConcurrentUpdate(f"{row.id} was modified concurrently; read it again")
    if capture:
        await capture_change(conn, _kind(table), [row.id], "upsert", now)


async def update_user(
    conn: AsyncConnection,
    row: Row[Any],
    *,
    resource: dict[str, Any] | None,
    external_id: str | None,
    manager_id: str | None,
    profile: dict[str, Any] | None,
    now: datetime,
    capture: bool = False,
) -> None:
    """Write a user back; ``resource=None`` keeps the directory-owned body (profile-only write)."""
    slug = _slug_of(profile)
    await _check_slug(conn, slug, row.id)
    values: dict[str, Any] = {"profile": profile, "public_slug": slug}
    if resource is not None:
        await _check_user_name(conn, resource["userName"], row.id)
        await _check_manager(conn, manager_id)
        values.update(external_id=external_id, manager_id=manager_id, **user_columns(resource))
    try:
        await _versioned_update(conn, USERS, row, values, now, capture)
    except IntegrityError as exc:
        raise Uniqueness("userName or the public profile slug is already taken") from exc
    if resource is not None:
        await _write_emails(conn, row.id, resource)
        if (resource.get("displayName") or resource["userName"]) != (row.display_name or row.user_name):
            await dependents.renamed(conn, USERS, [row.id], now)


async def _check_display_name(conn: AsyncConnection, name: str, own_id: str | None) -> None:
    if await _taken(conn, GROUPS.c.display_name_lower, name.lower(), GROUPS, own_id):
        raise Uniqueness(f"group displayName {name!r} is already taken")


async def insert_group(
    conn: AsyncConnection, *, resource: dict[str, Any], external_id: str | None, now: datetime,
    capture: bool = False,
) -> str:
    name = str(resource["displayName"])
    await _check_display_name(conn, name, None)
    new_id = ids.new_id()
    try:
        await conn.execute(
            insert(GROUPS).values(
                id=new_id, origin="local", display_name=name, display_name_lower=name.lower(),
                external_id=external_id, resource=resource, content_hash="", version=1,
                created=now, last_modified=now,
            )
        )
    except IntegrityError as exc:
        raise Uniqueness(f"group displayName {name!r} is already taken") from exc
    if capture:  # its members, written next in this transaction, go with it
        await capture_change(conn, "Group", [new_id], "upsert", now)
    return new_id


async def update_group(
    conn: AsyncConnection,
    row: Row[Any],
    *,
    resource: dict[str, Any],
    external_id: str | None,
    now: datetime,
    capture: bool = False,
) -> None:
    name = str(resource["displayName"])
    await _check_display_name(conn, name, row.id)
    try:
        await _versioned_update(
            conn, GROUPS, row,
            {"display_name": name, "display_name_lower": name.lower(), "external_id": external_id,
             "resource": resource},
            now, capture,
        )
    except IntegrityError as exc:
        raise Uniqueness(f"group displayName {name!r} is already taken") from exc
    if name != row.display_name:
        await dependents.renamed(conn, GROUPS, [row.id], now)


async def _member_types(conn: AsyncConnection, group_id: str, ids: Sequence[str]) -> dict[str, str]:
    """The member type (User or Group) of each id; unknown ids and the group itself are
    InvalidValue."""
    types: dict[str, str] = {}
    for part in chunks(ids):
        for table, kind in ((USERS, "User"), (GROUPS, "Group")):
            found = await conn.scalars(select(table.c.id).where(table.c.id.in_(part)))
            types.update((i, kind) for i in found)
    unknown = [m for m in ids if m not in types]
    if unknown:
        raise InvalidValue(f"members not found: {', '.join(unknown[:5])}")
    if group_id in types:
        raise InvalidValue("a group cannot be a member of itself")
    return types


async def _insert_members(
    conn: AsyncConnection, group_id: str, new: Sequence[str], types: dict[str, str]
) -> None:
    if new:
        await conn.execute(
            insert(MEMBERS),
            [{"group_id": group_id, "member_id": m, "member_type": types[m]} for m in new],
        )


async def replace_members(
    conn: AsyncConnection, group_id: str, members: Sequence[str], *, now: datetime
) -> None:
    """Make the group's members exactly ``members`` (ids of users or groups), writing the diff;
    the users who joined or left get a new version (their ``groups`` changed)."""
    wanted = list(dict.fromkeys(members))
    types = await _member_types(conn, group_id, wanted)
    have = set(await conn.scalars(select(MEMBERS.c.member_id).where(MEMBERS.c.group_id == group_id)))
    gone = [m for m in have if m not in types]
    for part in chunks(gone):
        await conn.execute(
            delete(MEMBERS).where(MEMBERS.c.group_id == group_id, MEMBERS.c.member_id.in_(part))
        )
    new = [m for m in wanted if m not in have]
    await _insert_members(conn, group_id, new, types)
    await dependents.memberships_changed(conn, [*gone, *new], now)


async def change_members(
    conn: AsyncConnection, group_id: str, *, add: Sequence[str], remove: Sequence[str],
    now: datetime,
) -> bool:
    """Add and remove members by id, touching only those rows; True when anything changed.
    The users who joined or left get a new version (their ``groups`` changed).

    For PATCHes that add or remove a few members of a large group: the other members are
    never read. ``add`` ids must exist (else InvalidValue); removing a non-member is a no-op.
    """
    touched: list[str] = []  # members removed, then added
    for part in chunks(list(dict.fromkeys(remove))):
        touched.extend(await conn.scalars(
            delete(MEMBERS).where(MEMBERS.c.group_id == group_id, MEMBERS.c.member_id.in_(part))
            .returning(MEMBERS.c.member_id)
        ))
    changed = bool(touched)
    wanted = list(dict.fromkeys(add))
    if wanted:
        types = await _member_types(conn, group_id, wanted)
        have: set[str] = set()
        for part in chunks(wanted):
            have.update(await conn.scalars(select(MEMBERS.c.member_id).where(
                MEMBERS.c.group_id == group_id, MEMBERS.c.member_id.in_(part))))
        new = [m for m in wanted if m not in have]
        await _insert_members(conn, group_id, new, types)
        touched.extend(new)
        changed = changed or bool(new)
    await dependents.memberships_changed(conn, touched, now)
    return changed


async def bump_version(
    conn: AsyncConnection, table: Table, row: Row[Any], now: datetime, *, capture: bool = False
) -> None:
    """A new version (ETag) and lastModified for ``row``, e.g. after its members changed."""
    await _versioned_update(conn, table, row, {}, now, capture)


async def delete_resource(
    conn: AsyncConnection, table: Table, row: Row[Any], now: datetime, *, capture: bool = False
) -> None:
    """Remove a user or group with its memberships; groups that contained it get a new version."""
    if capture:  # before the row goes: the push side finds the remote copy by this id
        await capture_change(conn, _kind(table), [row.id], "delete", now)
    parents = list(await conn.scalars(select(MEMBERS.c.group_id).where(MEMBERS.c.member_id == row.id)))
    if table is GROUPS:
        await dependents.group_gone(conn, [row.id], now)
    await conn.execute(delete(MEMBERS).where(MEMBERS.c.member_id == row.id))
    if table is USERS:
        orphans = update(USERS).where(USERS.c.manager_id == row.id).values(
            manager_id=None, **dependents.moved(USERS, now))
        if capture:  # their manager goes away: a change to push
            lost = list(await conn.scalars(orphans.returning(USERS.c.id)))
            await capture_change(conn, "User", lost, "upsert", now)
        else:
            await conn.execute(orphans)
    await conn.execute(delete(table).where(table.c.id == row.id))
    if parents:
        await conn.execute(
            update(GROUPS).where(GROUPS.c.id.in_(parents))
            .values(version=GROUPS.c.version + 1, last_modified=now)
        )
        if capture:
            await capture_change(conn, "Group", sorted(set(parents)), "upsert", now)
