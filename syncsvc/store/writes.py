"""Writes of a sync run: bulk upserts per page, member and manager resolution, guarded removal.

Every public coroutine takes an open :class:`AsyncConnection` whose transaction the caller owns
(one transaction per page). With ``dry_run`` the same classification runs and nothing is written.
With ``capture`` (push targets are configured) every change also writes push outbox rows in the
same transaction: :func:`resolve_members`, :func:`resolve_managers` and :func:`remove` do it
themselves; a page's upserts are captured by :func:`capture_page` once the page is complete.
"""

from __future__ import annotations

import math
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Container,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from syncsvc.domain import EntryKind, GroupRecord, Problem, UserRecord
from syncsvc.store import dependents
from syncsvc.store.capture import capture
from syncsvc.store.ids import new_id
from syncsvc.store.keysets import IN_CHUNK, chunks, lookups
from syncsvc.store.rows import emails_of, group_values, user_values
from syncsvc.store.schema import EMAILS, GROUPS, MEMBERS, USERS

__all__ = [
    "Change",
    "PageOutcome",
    "Removal",
    "WriteContext",
    "capture_page",
    "live_count",
    "plan_removals",
    "remove",
    "resolve_managers",
    "resolve_members",
    "upsert_groups",
    "upsert_users",
]


@dataclass(frozen=True, slots=True)
class Change:
    """One planned or applied change, as a dry run prints it."""

    action: str  # create | update | deactivate | delete | members
    kind: EntryKind
    dn: str
    name: str


@dataclass(slots=True)
class PageOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    changed_ids: list[str] = field(default_factory=list)
    created_ids: list[str] = field(default_factory=list)  # of changed_ids, the new rows
    # Rows written with a new display name (as members and reports show it): see dependents.
    renamed_ids: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Removal:
    """A resource the directory no longer has."""

    kind: EntryKind
    id: str
    anchor: str
    dn: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteContext:
    """What every write of one run shares."""

    now: datetime
    dry_run: bool = False
    # Changes are kept (for printing) only on dry runs: a 100k-entry run would not need them.
    keep_changes: bool = False
    # Push targets are configured: write a push outbox row for every resource changed.
    capture: bool = False

    @property
    def capturing(self) -> bool:
        return self.capture and not self.dry_run


def _upsert(conn: AsyncConnection, table: Table, update_cols: Sequence[str]) -> Any:
    """INSERT ... ON CONFLICT (anchor) DO UPDATE of ``update_cols``.

    An update's version is the stored row's own plus one, counted at write time: the version
    the page read earlier may have moved since (a SCIM PATCH committed in between), and
    writing that old version plus one would give two different states one version (one ETag).
    """
    dialect = conn.dialect.name
    ins = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    set_: dict[str, Any] = {name: ins.excluded[name] for name in update_cols}
    if "version" in set_:
        set_["version"] = table.c.version + 1
    return ins.on_conflict_do_update(index_elements=[table.c.anchor], set_=set_)


# What a Problem calls the bounded columns a directory entry fills.
_ATTRIBUTE_OF = {"user_name": "userName", "user_name_lower": "userName",
                 "display_name": "displayName", "display_name_lower": "displayName",
                 "external_id": "externalId", "primary_email": "emails (primary)",
                 "anchor": "the anchor attribute", "value": "emails.value",
                 "value_lower": "emails.value", "type": "emails.type"}


def _too_long(table: Table, row: Mapping[str, Any]) -> str | None:
    """Why ``row`` does not fit ``table``'s bounded columns, naming the attribute; else None.
    A user's e-mail rows (written after the page) are checked with it."""
    for name, value in row.items():
        length = getattr(table.c[name].type, "length", None) if name in table.c else None
        if length and isinstance(value, str) and len(value) > length:
            what = _ATTRIBUTE_OF.get(name, name)
            return f"{what} has {len(value)} characters; the store keeps at most {length}"
    if table is USERS and isinstance(row.get("resource"), Mapping):
        for email in emails_of(row["resource"]):
            problem = _too_long(EMAILS, email)
            if problem:
                return problem
    return None


def _shown_name(table: Table) -> ColumnElement[Any]:
    """The name that groups and reports show for a row (a member's or manager's display)."""
    if table is USERS:
        return func.coalesce(USERS.c.display_name, USERS.c.user_name).label("shown")
    return table.c.display_name.label("shown")


def _new_shown_name(row: Mapping[str, Any]) -> Any:
    return row.get("display_name") or row.get("user_name")


async def _existing_by_anchor(
    conn: AsyncConnection, table: Table, anchors: Sequence[str]
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for condition in lookups(conn, table.c.anchor, anchors):
        rows = await conn.execute(
            select(table.c.id, table.c.anchor, table.c.content_hash, table.c.version,
                   table.c.created, table.c.origin, _shown_name(table)).where(condition)
        )
        found.update({row.anchor: row for row in rows})
    return found


async def _holders(
    conn: AsyncConnection, column: Any, table: Table, names: Sequence[str]
) -> dict[str, Any]:
    """Rows that already hold one of ``names`` in a unique, case-folded column."""
    held: dict[str, Any] = {}
    for condition in lookups(conn, column, names):
        rows = await conn.execute(
            select(table.c.id, table.c.anchor, table.c.dn, column.label("name")).where(condition)
        )
        held.update({row.name: row for row in rows})
    return held


async def _upsert_page(
    conn: AsyncConnection,
    ctx: WriteContext,
    kind: EntryKind,
    table: Table,
    unique_col: str,
    values: list[dict[str, Any]],
    before_write: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None,
) -> PageOutcome:
    """Classify a page against the store and write what is new or changed, in one statement.

    ``before_write`` may add columns to the rows to write (every row the same ones), once
    their ids are known and before they are written."""
    out = PageOutcome()
    by_anchor: dict[str, dict[str, Any]] = {}
    for row in values:
        by_anchor[row["anchor"]] = row  # the same entry twice in one read: the last one wins
    existing = await _existing_by_anchor(conn, table, list(by_anchor))
    holders = await _holders(conn, table.c[unique_col], table, [v[unique_col] for v in by_anchor.values()])

    to_write: list[dict[str, Any]] = []
    claimed: dict[str, str] = {}
    for anchor, row in by_anchor.items():
        old = existing.get(anchor)
        if old is not None and old.content_hash == row["content_hash"]:
            out.unchanged += 1
            continue
        too_long = _too_long(table, row)
        if too_long:  # PostgreSQL would refuse the whole page; SQLite would keep it silently
            out.problems.append(Problem(row["dn"], too_long))
            continue
        name = row[unique_col]
        holder = holders.get(name)
        if (holder is not None and holder.anchor != anchor) or claimed.get(name, anchor) != anchor:
            other = holder.dn if holder is not None and holder.dn else claimed.get(name, "another entry")
            label = "userName" if kind is EntryKind.USER else "displayName"
            out.problems.append(Problem(row["dn"], f"{label} {name!r} is already used by {other}"))
            continue
        claimed[name] = anchor
        if old is None:
            row.update(id=new_id(), version=1, created=ctx.now)
            out.created += 1
            out.created_ids.append(row["id"])
            action = "create"
        else:
            row.update(id=old.id, version=old.version + 1, created=old.created)
            out.updated += 1
            action = "update"
            if old.shown != _new_shown_name(row):
                out.renamed_ids.append(old.id)
        row.update(last_modified=ctx.now, missing_since=None)
        to_write.append(row)
        out.changed_ids.append(row["id"])
        if ctx.keep_changes:
            out.changes.append(Change(action, kind, row["dn"], name))

    if to_write and not ctx.dry_run:
        if before_write is not None:
            await before_write(to_write)
        # New rows by a plain INSERT, which PostgreSQL takes 1000 rows a statement (an upsert
        # goes row by row): only a sync writes anchors, one at a time (the run lock), and this
        # page found none of these. Changed rows by the upsert.
        new = [row for row in to_write if row["version"] == 1]
        changed = [row for row in to_write if row["version"] > 1]
        if new:
            await conn.execute(insert(table), new)
        if changed:
            cols = [c for c in to_write[0] if c not in ("id", "created", "anchor")]
            await conn.execute(_upsert(conn, table, cols), changed)
    return out


async def capture_page(
    conn: AsyncConnection, ctx: WriteContext, kind: EntryKind, outcome: PageOutcome
) -> None:
    """Push outbox rows for every resource a page wrote (``outcome.changed_ids``, photo-only
    changes included); called last in the page's transaction, after :func:`upsert_users` or
    :func:`upsert_groups` and anything else the page writes."""
    if ctx.capturing and outcome.changed_ids:
        await capture(conn, kind.value, list(dict.fromkeys(outcome.changed_ids)), "upsert", ctx.now)


async def upsert_users(
    conn: AsyncConnection, ctx: WriteContext, records: Sequence[UserRecord]
) -> PageOutcome:
    """Write one page of directory users; unchanged ones cost a read and no write.

    The caller captures the page's changes for push with :func:`capture_page`."""
    values = [user_values(r) for r in records]
    out = await _upsert_page(conn, ctx, EntryKind.USER, USERS, "user_name_lower", values,
                             before_write=lambda rows: _page_managers(conn, rows))
    if out.changed_ids and not ctx.dry_run:
        written = {v["id"]: v for v in values if "id" in v}
        # A user inserted by this page (version 1) has no e-mail rows to delete.
        rewritten = [uid for uid in out.changed_ids if written[uid]["version"] > 1]
        for part in chunks(rewritten):
            await conn.execute(delete(EMAILS).where(EMAILS.c.user_id.in_(part)))
        email_rows = [
            {"user_id": uid, **email}
            for uid in out.changed_ids
            for email in emails_of(written[uid]["resource"])
        ]
        if email_rows:
            await _insert_emails(conn, email_rows)
    if out.renamed_ids and not ctx.dry_run:
        await dependents.renamed(conn, USERS, out.renamed_ids, ctx.now)
    return out


_EMAIL_COLUMNS = tuple(column.name for column in EMAILS.columns)


async def _insert_emails(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert e-mail rows; on PostgreSQL with COPY, in the page's transaction. A first load
    writes one or more per user: at 100k users, 1000 a page, an executemany INSERT through
    SQLAlchemy cost about 54 ms a page (and the DELETE before it 14 ms), COPY about 35."""
    if conn.dialect.name != "postgresql":
        await conn.execute(insert(EMAILS), rows)
        return
    raw = await conn.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        EMAILS.name, columns=_EMAIL_COLUMNS,
        records=[tuple(row[name] for name in _EMAIL_COLUMNS) for row in rows],
    )


async def _page_managers(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Give each user a page writes its manager_id, so that the run's :func:`resolve_managers`
    rewrites only the users whose manager came later (on a first load of 100k users it had
    rewritten every user with a manager, each row touching all of the table's indexes).

    The manager is the user this page writes at that DN, else one the store holds at it (an
    earlier page's, or an unchanged one). A user already stored whose manager is not found yet
    keeps the manager it had until :func:`resolve_managers` settles it, as before."""
    on_page = {row["dn_norm"]: row["id"] for row in rows if row["dn_norm"]}
    wanted = sorted({m for row in rows if (m := row["manager_dn_norm"]) and m not in on_page})
    moving = {row["id"]: row["dn_norm"] for row in rows}  # a stored DN this page changes is gone
    held = {dn: id_ for dn, id_ in (await _holders_of(conn, wanted)).items()
            if moving.get(id_, dn) == dn}
    held.update(on_page)
    unresolved: list[str] = []
    for row in rows:
        manager = row["manager_dn_norm"]
        row["manager_id"] = held.get(manager) if manager else None
        if row["manager_id"] is None and manager and row["version"] > 1:
            unresolved.append(row["id"])
    if unresolved:
        kept: dict[str, str | None] = {}
        for part in chunks(unresolved):
            rows_now = await conn.execute(
                select(USERS.c.id, USERS.c.manager_id).where(USERS.c.id.in_(part)))
            kept.update({id_: manager_id for id_, manager_id in rows_now})
        for row in rows:
            if row["manager_id"] is None and row["id"] in kept:
                row["manager_id"] = kept[row["id"]]


async def _holders_of(conn: AsyncConnection, dns: Sequence[str]) -> dict[str, str]:
    """The id of a user stored at each of ``dns`` (normalised); the lowest id where several are
    (a deactivated user whose DN a new entry took), as :func:`resolve_managers` chooses."""
    found: dict[str, str] = {}
    for condition in lookups(conn, USERS.c.dn_norm, dns):
        rows = await conn.execute(
            select(USERS.c.dn_norm, func.min(USERS.c.id)).where(condition)
            .group_by(USERS.c.dn_norm)
        )
        found.update({dn: id_ for dn, id_ in rows})
    return found


async def upsert_groups(
    conn: AsyncConnection, ctx: WriteContext, records: Sequence[GroupRecord]
) -> PageOutcome:
    """Write one page of directory groups; members are resolved afterwards.

    The caller captures the page's changes for push with :func:`capture_page`."""
    values = [group_values(r) for r in records]
    out = await _upsert_page(conn, ctx, EntryKind.GROUP, GROUPS, "display_name_lower", values)
    if out.renamed_ids and not ctx.dry_run:
        await dependents.renamed(conn, GROUPS, out.renamed_ids, ctx.now)
    return out


async def _ids_by(
    conn: AsyncConnection, table: Table, column: Any, keys: Sequence[str]
) -> dict[str, str]:
    found: dict[str, str] = {}
    for condition in lookups(conn, column, keys):
        rows = await conn.execute(select(column, table.c.id).where(condition))
        found.update({key: id_ for key, id_ in rows})
    return found


async def _users_by(
    conn: AsyncConnection, column: Any, keys: Sequence[str], now: datetime, fresh: set[str]
) -> dict[str, str]:
    """User ids by ``column``; adds to ``fresh`` those this run has written (at ``now``)."""
    found: dict[str, str] = {}
    for condition in lookups(conn, column, keys):
        rows = await conn.execute(
            select(column, USERS.c.id, (USERS.c.last_modified == now).label("fresh"))
            .where(condition))
        for key, id_, is_fresh in rows:
            found[key] = id_
            if is_fresh:
                fresh.add(id_)
    return found


# Members are resolved a batch of groups at a time: at most this many groups, or the groups
# that name this many members (a single larger group is a batch of its own). The batches are
# planned from member counts the database makes (a page of ids at a time), and only a planned
# batch's groups are read with their members: the member DNs held at once are one batch's,
# whatever the groups' order. Ids are time-ordered, so the groups written first (a directory's
# department groups: at 1M users about a million DNs) sit together in id order; a page of groups
# read with their members would hold all of those at once.
MEMBER_BATCH_GROUPS = 200
MEMBER_BATCH_NAMES = 20_000
GROUP_PAGE = 1000  # ids (with their member counts) read at once


def _names_in(dialect: str) -> ColumnElement[int]:
    """How many names (member DNs and memberUids) a group's ``source_members`` holds, counted
    by the database: the counts plan the batches without the members leaving the store."""
    source = GROUPS.c.source_members
    if dialect == "postgresql":  # the column is JSONB there
        dns = func.jsonb_array_length(source["dns"])
        uids = func.jsonb_array_length(source["uids"])
    else:
        dns = func.json_array_length(source, "$.dns")
        uids = func.json_array_length(source, "$.uids")
    # A missing key counts none (NULL), as the decoded dict's ``get(key, ())`` does.
    return (func.coalesce(dns, 0) + func.coalesce(uids, 0)).label("names")


async def _group_sizes(
    conn: AsyncConnection, group_ids: Sequence[str] | None, page: int
) -> AsyncIterator[list[Any]]:
    """The directory groups' ids and member counts, in id order, ``page`` at a time: all of
    them by keyset on id (the primary key), or those of ``group_ids``."""
    query = select(GROUPS.c.id, _names_in(conn.dialect.name)).where(GROUPS.c.origin == "ldap")
    if group_ids is not None:
        for part in chunks(list(group_ids), page):
            yield list(await conn.execute(query.where(GROUPS.c.id.in_(part)).order_by(GROUPS.c.id)))
        return
    after: str | None = None
    while True:
        keyset = query if after is None else query.where(GROUPS.c.id > after)
        rows = list(await conn.execute(keyset.order_by(GROUPS.c.id).limit(page)))
        if rows:
            yield rows
        if len(rows) < page:
            return
        after = rows[-1].id


async def _groups_of(conn: AsyncConnection, ids: Sequence[str]) -> list[Any]:
    """The groups of ``ids`` with their source members, in id order."""
    query = select(GROUPS.c.id, GROUPS.c.dn, GROUPS.c.display_name, GROUPS.c.source_members)
    found: list[Any] = []
    for part in chunks(ids):
        found.extend(await conn.execute(query.where(GROUPS.c.id.in_(part)).order_by(GROUPS.c.id)))
    return found


async def _member_batches(
    conn: AsyncConnection,
    group_ids: Sequence[str] | None,
    *,
    groups: int,
    names: int,
    page: int,
) -> AsyncIterator[list[Any]]:
    """Batches of groups to resolve together, bounded by their count and their members; each
    read with its members only when it is due."""
    planned: list[str] = []
    named = 0
    async for rows in _group_sizes(conn, group_ids, page):
        for group_id, size in rows:
            if planned and (len(planned) >= groups or named + size > names):
                yield await _groups_of(conn, planned)
                planned, named = [], 0
            planned.append(group_id)
            named += size
    if planned:
        yield await _groups_of(conn, planned)


async def resolve_members(
    conn: AsyncConnection,
    ctx: WriteContext,
    *,
    group_ids: Sequence[str] | None = None,
    already_bumped: set[str] | None = None,
    created: Collection[str] = (),
) -> PageOutcome:
    """Turn member DNs (and memberUids) into member rows; report members not found.

    ``group_ids=None`` resolves every directory group (full runs). A group whose resolved
    members change gets a new version unless this run already gave it one. ``created``: groups
    this run created, which have no members yet to read.
    """
    out = PageOutcome()
    bumped = already_bumped if already_bumped is not None else set()
    batches = _member_batches(conn, group_ids, groups=MEMBER_BATCH_GROUPS,
                              names=MEMBER_BATCH_NAMES, page=GROUP_PAGE)
    async for batch in batches:
        dns = sorted({dn for g in batch for dn in (g.source_members or {}).get("dns", ())})
        uids = sorted({u for g in batch for u in (g.source_members or {}).get("uids", ())})
        fresh: set[str] = set()  # users this run wrote: their version has moved already
        user_by_dn = await _users_by(conn, USERS.c.dn_norm, dns, ctx.now, fresh)
        group_by_dn = await _ids_by(conn, GROUPS, GROUPS.c.dn_norm,
                                    [dn for dn in dns if dn not in user_by_dn])
        user_by_uid = await _users_by(conn, USERS.c.user_name_lower, uids, ctx.now, fresh)
        current: dict[str, dict[str, str]] = {g.id: {} for g in batch}
        # On a first load every group is new, and PostgreSQL, with no statistics for the
        # memberships table it was filling, read each batch's by scanning all written so far:
        # at 1M users 38.9-44.7 s (0.48 s at 100k).
        stored = [g.id for g in batch if g.id not in created]  # a batch is one IN list
        if stored:
            rows = await conn.execute(
                select(MEMBERS.c.group_id, MEMBERS.c.member_id, MEMBERS.c.member_type).where(
                    MEMBERS.c.group_id.in_(stored)
                )
            )
            for gid, mid, mtype in rows:
                current[gid][mid] = mtype

        adds: list[dict[str, str]] = []
        drops: list[dict[str, str]] = []
        joined_or_left: set[str] = set()  # users whose ``groups`` this batch changes
        for g in batch:
            wanted: dict[str, str] = {}
            source = g.source_members or {}
            for dn in source.get("dns", ()):
                if dn in user_by_dn:
                    wanted[user_by_dn[dn]] = "User"
                elif dn in group_by_dn and group_by_dn[dn] != g.id:
                    wanted[group_by_dn[dn]] = "Group"
                else:
                    out.problems.append(Problem(g.dn, f"member {dn} not found"))
            for uid in source.get("uids", ()):
                if uid in user_by_uid:
                    wanted[user_by_uid[uid]] = "User"
                else:
                    out.problems.append(Problem(g.dn, f"memberUid {uid} not found"))
            have = current[g.id]
            added = [m for m in wanted if m not in have]
            removed = [m for m in have if m not in wanted]
            adds.extend({"group_id": g.id, "member_id": m, "member_type": wanted[m]} for m in added)
            drops.extend({"g": g.id, "m": m} for m in removed)
            joined_or_left.update(m for m in added if wanted[m] == "User" and m not in fresh)
            joined_or_left.update(m for m in removed if have[m] == "User")
            if added or removed:
                out.updated += 1
                out.changed_ids.append(g.id)
                if ctx.keep_changes:
                    out.changes.append(
                        Change("members", EntryKind.GROUP, g.dn or "", f"+{len(added)} -{len(removed)}")
                    )
        if ctx.dry_run:
            continue
        if drops:
            await conn.execute(
                delete(MEMBERS).where(
                    and_(MEMBERS.c.group_id == bindparam("g"), MEMBERS.c.member_id == bindparam("m"))
                ),
                drops,
            )
        if adds:
            await conn.execute(insert(MEMBERS), adds)
        await dependents.memberships_changed(conn, joined_or_left, ctx.now)
    to_bump = [gid for gid in out.changed_ids if gid not in bumped]
    if to_bump and not ctx.dry_run:
        await _bump(conn, GROUPS, to_bump, ctx.now)
    bumped.update(to_bump)
    if ctx.capturing and out.changed_ids:
        await capture(conn, EntryKind.GROUP.value, out.changed_ids, "upsert", ctx.now)
    return out


async def _bump(conn: AsyncConnection, table: Table, ids: Sequence[str], now: datetime) -> None:
    """A change the row's own hash cannot see (its members): move version and lastModified."""
    for part in chunks(list(ids)):
        await conn.execute(
            update(table)
            .where(table.c.id.in_(part))
            .values(version=table.c.version + 1, last_modified=now)
        )


# Past this many users read, an incremental run resolves managers over the whole table: the
# scoped statement's IN list would approach SQLite's bound-parameter limit.
SCOPED_MANAGERS_MAX = 5000


def _manager_scope(anchors: Collection[str] | None) -> ColumnElement[bool] | None:
    """Users whose manager may have changed when only ``anchors`` were read: those users, and
    the users who name one of them as manager (a manager added or renamed in this run)."""
    if anchors is None or len(anchors) > SCOPED_MANAGERS_MAX:
        return None
    read, report = USERS.alias("read"), USERS.alias("report")
    read_dns = select(read.c.dn_norm).where(read.c.anchor.in_(list(anchors)))
    # Ids from a UNION of two index lookups (anchor; manager_dn_norm, migration 0006), not an
    # OR: PostgreSQL cannot serve "a IN (...) OR b IN (subquery)" from indexes, so it scanned
    # all 100k users and, the plan's cost being over jit_above_cost, JIT-compiled it first
    # (0.86 s, 0.69 s of it JIT). As a union the same update takes 5 ms.
    return USERS.c.id.in_(union(
        select(read.c.id).where(read.c.anchor.in_(list(anchors))),
        select(report.c.id).where(report.c.manager_dn_norm.in_(read_dns)),
    ))


async def resolve_managers(
    conn: AsyncConnection, ctx: WriteContext, anchors: Collection[str] | None = None
) -> PageOutcome:
    """Point each user's manager_id at the user whose DN its manager attribute names.

    ``anchors``: the users an incremental run read; only they and their reports can have a
    new manager, so the statement need not visit the whole table (at 100k users it took
    0.4-0.9 s, more than an incremental run of 100 changes may take). None: every user.

    The pages resolved most users already (:func:`_page_managers`): this finds the few whose
    manager is wrong, and writes only those.
    """
    out = PageOutcome()
    wrong = list(await conn.execute(_wrong_managers(_manager_scope(anchors))))
    # The right managers of the few wrong rows, looked up apart: as a subquery of the join its
    # estimated cost (once per row of the table) pushed PostgreSQL into JIT-compiling it first.
    held = await _holders_of(conn, sorted({r.manager_dn_norm for r in wrong if r.manager_dn_norm}))
    fixes: list[dict[str, Any]] = []
    for row in wrong:
        target = held.get(row.manager_dn_norm) if row.manager_dn_norm else None
        if target is None and row.manager_dn_norm is not None:
            out.problems.append(Problem(row.dn or "", f"manager {row.manager_dn_norm} not found"))
        if target != row.manager_id:
            fixes.append({"b_id": row.id, "b_manager": target})
    if fixes and not ctx.dry_run:
        stmt = update(USERS).where(USERS.c.id == bindparam("b_id")).values(
            manager_id=bindparam("b_manager"),
            # A row this run already wrote has its new version; do not count the change twice.
            version=case(
                (USERS.c.last_modified == ctx.now, USERS.c.version), else_=USERS.c.version + 1
            ),
            last_modified=ctx.now,
        )
        for part in chunks(fixes):
            await conn.execute(stmt, part)
        out.updated = len(fixes)
        if ctx.capturing:
            await capture(conn, EntryKind.USER.value, [f["b_id"] for f in fixes], "upsert", ctx.now)
    return out


def _wrong_managers(scope: ColumnElement[bool] | None) -> Any:
    """Directory users (within ``scope``) whose manager_id may not be a user at their manager
    DN: id, dn, manager DN and manager_id. The caller looks up who is at the DN.

    A manager_id is right when it names a user at the manager DN: any of them where several
    share it, so none is rewritten back and forth between runs. This is one join (a hash join
    over the whole table on PostgreSQL) and writes nothing; a correlated subquery per row had
    rewritten every user with a manager on a first load.
    """
    current = USERS.alias("current_manager")
    wrong = or_(
        # Points at no user, or at one that is not at the manager DN (or there is none).
        and_(USERS.c.manager_id.is_not(None),
             or_(current.c.dn_norm.is_(None), USERS.c.manager_dn_norm.is_(None),
                 current.c.dn_norm != USERS.c.manager_dn_norm)),
        # Names a manager and has none: found now, or dangling (reported).
        and_(USERS.c.manager_id.is_(None), USERS.c.manager_dn_norm.is_not(None)),
    )
    return (
        select(USERS.c.id, USERS.c.dn, USERS.c.manager_dn_norm, USERS.c.manager_id)
        .select_from(USERS.outerjoin(current, current.c.id == USERS.c.manager_id))
        .where(*(() if scope is None else (scope,)), USERS.c.origin == "ldap", wrong)
    )


async def live_count(conn: AsyncConnection, kind: EntryKind, *, below: float | None = None) -> int:
    """Directory resources of ``kind`` that a sweep could still remove.

    ``below``: the caller only needs to know whether fewer than this many are live (the
    deletion guard's share), so counting stops past it; the count is exact when under it.
    Counting all 100k users is a sequential scan (0.1-0.3 s on PostgreSQL) that one deleted
    user would otherwise cost an incremental run.
    """
    table = USERS if kind is EntryKind.USER else GROUPS
    live = select(table.c.id).where(table.c.origin == "ldap", table.c.missing_since.is_(None))
    if below is not None:
        live = live.limit(math.floor(max(below, 0)) + 1)
    return int(await conn.scalar(select(func.count()).select_from(live.subquery())) or 0)


# A sweep after a complete read reads the stored anchors this many at a time (keyset on the
# anchor's unique index): buffering all of them took about 300 MiB at 1M users.
ANCHOR_PAGE = 10_000


async def _live_pages(
    conn: AsyncConnection, query: Any, anchor: Any, page: int
) -> AsyncIterator[list[Any]]:
    """The rows of ``query`` (which selects ``anchor``), ``page`` at a time in anchor order."""
    after: str | None = None
    while True:
        keyset = query if after is None else query.where(anchor > after)
        rows = list(await conn.execute(keyset.order_by(anchor).limit(page)))
        if rows:
            yield rows
        if len(rows) < page:
            return
        after = rows[-1].anchor


async def plan_removals(
    conn: AsyncConnection,
    kind: EntryKind,
    *,
    keep: Container[str] | None = None,
    gone: Collection[str] | None = None,
    policy: str,
) -> list[Removal]:
    """What a sweep would remove: rows whose anchor is not in ``keep`` (a complete read), or
    whose anchor is in ``gone`` (deletions the server reported).

    ``keep`` need only answer ``in``: a compact one that may wrongly say "kept" (a digest
    collision) keeps a row it should have removed, never removes one it should keep.
    """
    table = USERS if kind is EntryKind.USER else GROUPS
    name_col = table.c.user_name if kind is EntryKind.USER else table.c.display_name
    live = [table.c.origin == "ldap"]
    page = ANCHOR_PAGE
    # Groups have no active flag: they are deleted. Users already deactivated are done, unless
    # the policy is to delete.
    if kind is EntryKind.USER and policy == "deactivate":
        live.append(table.c.missing_since.is_(None))
    if keep is None:
        # Only the deletions the server reported: found by anchor, the table is not read. This
        # runs on every change-feed run: syncprov reports each entry modified outside a search's
        # filter as deleted (100 changed users are 100 "deleted" anchors of the group search).
        doomed: list[str] = sorted(gone or ())
    else:
        # Against a complete read every row must be looked at, but only anchors cross the
        # wire, a page at a time; the few rows that go are read in full below.
        doomed = []
        anchors = select(table.c.anchor).where(*live)
        async for rows in _live_pages(conn, anchors, table.c.anchor, page):
            doomed.extend(a for (a,) in rows if a not in keep or (gone is not None and a in gone))
    query = select(table.c.id, table.c.anchor, table.c.dn, name_col.label("name")).where(*live)
    found: list[Any] = []
    if len(doomed) > IN_CHUNK:  # many go (most likely a guarded run): one pass, not many lookups
        wanted = set(doomed)
        async for rows in _live_pages(conn, query, table.c.anchor, page):
            found.extend(row for row in rows if row.anchor in wanted)
    else:
        for part in chunks(doomed):
            found.extend(await conn.execute(query.where(table.c.anchor.in_(part))))
    return [Removal(kind, row.id, row.anchor, row.dn or "", row.name) for row in found]


async def remove(
    conn: AsyncConnection, ctx: WriteContext, removals: Sequence[Removal], *, policy: str
) -> tuple[int, int]:
    """Deactivate or delete; returns (deactivated, deleted). Groups are always deleted."""
    users = [r.id for r in removals if r.kind is EntryKind.USER]
    groups = [r.id for r in removals if r.kind is EntryKind.GROUP]
    if ctx.dry_run:
        return (len(users), len(groups)) if policy == "deactivate" else (0, len(users) + len(groups))
    deactivated = deleted = 0
    if users and policy == "deactivate":
        for part in chunks(users):
            rows = await conn.execute(select(USERS.c.id, USERS.c.resource).where(USERS.c.id.in_(part)))
            await conn.execute(
                update(USERS).where(USERS.c.id == bindparam("b_id")).values(
                    active=False,
                    resource=bindparam("b_resource"),
                    # No directory content hashes to this: the user's return is a change.
                    content_hash="",
                    version=USERS.c.version + 1,
                    last_modified=ctx.now,
                    missing_since=ctx.now,
                ),
                [{"b_id": r.id, "b_resource": {**r.resource, "active": False}} for r in rows],
            )
        if ctx.capturing:
            await capture(conn, EntryKind.USER.value, users, "upsert", ctx.now)
        deactivated = len(users)
        users = []
    doomed = users + groups
    if doomed:
        if ctx.capturing:  # before the rows go: the push side resolves them by id
            await capture(conn, EntryKind.USER.value, users, "delete", ctx.now)
            await capture(conn, EntryKind.GROUP.value, groups, "delete", ctx.now)
        parents: set[str] = set()
        for part in chunks(doomed):
            parents.update(
                await conn.scalars(select(MEMBERS.c.group_id).where(MEMBERS.c.member_id.in_(part)))
            )
            await conn.execute(delete(MEMBERS).where(MEMBERS.c.member_id.in_(part)))
        lost_manager: list[str] = []
        for part in chunks(users):
            orphans = update(USERS).where(USERS.c.manager_id.in_(part)).values(
                manager_id=None, **dependents.moved(USERS, ctx.now))
            if ctx.capturing:  # their manager attribute goes away: a change to push
                lost_manager.extend(await conn.scalars(orphans.returning(USERS.c.id)))
            else:
                await conn.execute(orphans)
            await conn.execute(delete(USERS).where(USERS.c.id.in_(part)))
        if lost_manager:
            gone = set(users)
            await capture(conn, EntryKind.USER.value,
                          [u for u in lost_manager if u not in gone], "upsert", ctx.now)
        await dependents.group_gone(conn, groups, ctx.now)
        for part in chunks(groups):
            await conn.execute(delete(GROUPS).where(GROUPS.c.id.in_(part)))
        survivors = sorted(parents - set(groups))
        if survivors:
            await _bump(conn, GROUPS, survivors, ctx.now)
            if ctx.capturing:
                await capture(conn, EntryKind.GROUP.value, survivors, "upsert", ctx.now)
        deleted = len(doomed)
    return deactivated, deleted
