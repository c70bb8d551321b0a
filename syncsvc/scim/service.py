"""SCIM operations over the store, independent of HTTP: the handlers and /Bulk both call these.

Ownership (DESIGN.md): a directory-sourced resource may change only in the profile extension;
everything else is owned by LDAP and answers 400 ``mutability``. Resources created through SCIM
are local and fully writable.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Select, Table, and_, bindparam, func, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from syncsvc import jsoncodec
from syncsvc.errors import (
    ConcurrentUpdate,
    InvalidValue,
    Mutability,
    NotFound,
    PreconditionFailed,
    ScimError,
    TooMany,
)
from syncsvc.scim import filters
from syncsvc.scim.inputs import MAX_OFFSET, plausible_id
from syncsvc.scim.patch import (
    apply_patch,
    changed_paths,
    member_delta,
    parse_patch,
    touches_members,
)
from syncsvc.scim.projection import needs, project
from syncsvc.scim.rendered import RenderedUsers, embed, page_key, user_key
from syncsvc.scim.schema import PROFILE_USER
from syncsvc.scim.serialize import (
    LIST_RESPONSE,
    etag,
    etag_matches,
    group_parts,
    group_resource,
    user_parts,
    user_resource,
)
from syncsvc.scim.totals import ListTotals
from syncsvc.scim.validate import validate_resource
from syncsvc.settings import ScimSettings
from syncsvc.store import reads
from syncsvc.store import resources as store
from syncsvc.store.changes import StoreChanges
from syncsvc.store.loopreads import LoopReader
from syncsvc.store.pgreads import PgReader
from syncsvc.store.schema import served_columns

__all__ = ["KINDS", "Kind", "ListQuery", "Result", "ScimService"]

log = structlog.get_logger(__name__)

# What a User shows without attributes/excludedAttributes: what syncsvc.scim.rendered keeps.
_DEFAULT_USER_PARTS = frozenset({"groups", "manager"})

# A write that lost a race (a sync or another client changed the row between our read and our
# write) is redone this many times in all when the client sent no If-Match.
_RACE_ATTEMPTS = 5
# List statements kept by query shape: the usual clients page a handful of queries.
_KEPT_STATEMENTS = 64


def _redo_lost_races(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Redo a whole write transaction that raised ConcurrentUpdate, unless ``if_match`` was given:
    then the client asked to be told (412). Without it, a 412 would be an error the client never
    asked for (RFC 7644 §3.14 makes versions a client's choice)."""

    @functools.wraps(method)
    async def redo(self: Any, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, _RACE_ATTEMPTS + 1):
            try:
                return await method(self, *args, **kwargs)
            except ConcurrentUpdate:
                if kwargs.get("if_match") is not None or attempt == _RACE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    return redo


@dataclass(frozen=True, slots=True)
class Kind:
    name: str  # "User" | "Group"
    endpoint: str  # "Users" | "Groups"
    table: Table


KINDS = {
    "Users": Kind("User", "Users", store.USERS),
    "Groups": Kind("Group", "Groups", store.GROUPS),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ListQuery:
    """The parameters of a list or .search (RFC 7644 §3.4.2, RFC 9865)."""

    filter: str | None = None
    sort_by: str | None = None
    sort_order: str = "ascending"
    start_index: int = 1
    count: int | None = None
    cursor: str | None = None  # "" asks for the first page of cursor paging
    attributes: Sequence[str] | None = None
    excluded: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """A single resource as the client sees it, with its ETag and where it lives."""

    body: dict[str, Any]
    etag: str
    location: str


class InvalidCursor(ScimError):
    """RFC 9865 §2.3: the cursor is not one this server issued for this query."""

    scim_type = "invalidCursor"


class ScimService:
    """The SCIM resource operations, each in its own transaction."""

    def __init__(
        self, engine: AsyncEngine, settings: ScimSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC), *, capture: bool = False,
        loop_reader: LoopReader | None = None, pg_reader: PgReader | None = None,
        changes: StoreChanges | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock
        self._dialect = engine.dialect.name
        # Push targets are configured: every write also records a push outbox row.
        self._capture = capture
        # SQLite: a User by id is read on the loop's thread (syncsvc.store.loopreads).
        self._loop_reader = loop_reader
        # PostgreSQL: the same reads on asyncpg directly (syncsvc.store.pgreads).
        self._pg_reader = pg_reader
        self._user_by: dict[tuple[str, frozenset[str]], Select[Any]] = {}
        # SQLite has one writer at a time. Left to SQLite, concurrent write transactions wait
        # in its busy handler, which polls with sleeps of up to 100 ms: at 32 connections a
        # PATCH waited up to 1.8 s (p99) and fewer were served than one after the other. Here
        # this process's SCIM writes queue for their turn instead, first come first served;
        # other writers (a sync, another process) still meet them in SQLite's busy handler.
        self._write_turns = asyncio.Lock() if self._dialect == "sqlite" else None
        self._rendered = RenderedUsers(settings.rendered_cache_bytes)
        # totalResults by list while the store stays as it was (none without ``changes``).
        self.totals = ListTotals(changes)
        # List statements by query shape (_kept_statement), least recently used first.
        self._kept_statements: dict[tuple[Any, ...], Select[Any]] = {}
        self._not_raw: weakref.WeakSet[Select[Any]] = weakref.WeakSet()
        table = store.USERS
        kept_columns = (table, *self._read_columns(KINDS["Users"], _DEFAULT_USER_PARTS),
                        *reads.user_key_extra_columns(self._dialect))
        self._users_by_ids = select(*kept_columns).where(
            table.c.id.in_(bindparam("ids", expanding=True)))
        # A User's key (no body) and its full row with the key, by id or userName: GET and the
        # `userName eq` lookup, read on the loop's thread or asyncpg like any point read.
        self._user_key_by = {
            column: select(*reads.user_key_columns(self._dialect)).where(
                table.c[column] == bindparam("value"))
            for column in (table.c.id.key, table.c.user_name_lower.key)}
        self._kept_user_by_id = select(*kept_columns).where(
            table.c.id == bindparam("value"))

    # -- reading ------------------------------------------------------------------------------

    async def _render(
        self, conn: AsyncConnection, kind: Kind, rows: Sequence[Row[Any]], parts: frozenset[str],
        base_url: str, *, folded: bool = False,
    ) -> list[dict[str, Any]]:
        """SCIM bodies of ``rows``; ``folded``: they were read with :meth:`_read_columns`."""
        ids = [r.id for r in rows]
        if kind.name == "User":
            if folded:
                return self._render_users(rows, parts, base_url)
            groups = await store.groups_of_users(conn, ids) if "groups" in parts else None
            managers = [r.manager_id for r in rows if r.manager_id]
            names = await store.names_of_users(conn, managers) if "manager" in parts else {}
            return [
                user_resource(r, base_url=base_url, groups=groups[r.id] if groups is not None else None,
                              manager_name=names.get(r.manager_id) if r.manager_id else None)
                for r in rows
            ]
        members = await store.members_of_groups(conn, ids) if "members" in parts else None
        return [
            group_resource(r, base_url=base_url, members=members[r.id] if members is not None else None)
            for r in rows
        ]

    async def _render_kept(
        self, conn: AsyncConnection | None, keys: Sequence[Row[Any]], base_url: str
    ) -> list[Any]:
        """The default renderings of a page of Users read with ``reads.user_key_columns``:
        kept bytes for every key seen before, one read and render for the others (on ``conn``,
        or on a connection of the engine's when none is given)."""
        out: list[bytes | None] = []
        missing: dict[str, int] = {}
        for row in keys:
            body = self._rendered.get(page_key(row, base_url))
            if body is None:
                missing[row.id] = len(out)
            out.append(body)
        if missing:
            params = {"ids": list(missing)}
            if conn is None:
                async with self._engine.connect() as own:
                    rows = list(await own.execute(self._users_by_ids, params))
            else:
                rows = list(await conn.execute(self._users_by_ids, params))
            for row in rows:
                out[missing[row.id]] = self._keep_rendering(row, base_url)
        # A user deleted between the two reads is not shown: a read now would not show it.
        return [embed(body) for body in out if body is not None]

    def _keep_rendering(self, row: Row[Any], base_url: str) -> bytes:
        """The default rendering of a full User row read with its key columns, kept by that key.
        Keyed by the row itself: if a commit came between the read of the key and this one,
        this is the newer state, and the key says so."""
        body = jsoncodec.dumps(self._render_users([row], _DEFAULT_USER_PARTS, base_url)[0])
        self._rendered.put(user_key(row, base_url), body)
        return body

    async def _kept_user(self, column: str, value: str, base_url: str) -> tuple[bytes, int] | None:
        """The kept default rendering of the User whose unique ``column`` is ``value``, and its
        version; rendered and kept when not seen in this state. None: no such User."""
        keys = await self._read_users(self._user_key_by[column], value)
        if not keys:
            return None
        body = self._rendered.get(page_key(keys[0], base_url))
        if body is not None:
            return body, keys[0].version
        rows = await self._read_users(self._kept_user_by_id, keys[0].id)
        if not rows:
            return None  # deleted between the two reads
        return self._keep_rendering(rows[0], base_url), rows[0].version

    @staticmethod
    def _render_users(
        rows: Sequence[Row[Any]], parts: frozenset[str], base_url: str
    ) -> list[dict[str, Any]]:
        """SCIM bodies of User rows read with :meth:`_read_columns` (no further query)."""
        return [user_resource(r, base_url=base_url,
                              groups=reads.groups_from_row(r) if "groups" in parts else None,
                              manager_name=getattr(r, reads.MANAGER_COLUMN, None))
                for r in rows]

    async def _load(
        self, conn: AsyncConnection, kind: Kind, resource_id: str, *, for_update: bool = False
    ) -> Row[Any]:
        row = await store.get(conn, kind.table, resource_id, for_update=for_update)
        if row is None:
            raise NotFound(f"{kind.name} {resource_id} not found")
        return row

    async def _load_for_reading(
        self, conn: AsyncConnection, kind: Kind, resource_id: str, parts: frozenset[str], *,
        for_update: bool = False,
    ) -> Row[Any]:
        """The row with what rendering ``parts`` needs folded in (render it ``folded``)."""
        row = await store.get(conn, kind.table, resource_id, for_update=for_update,
                              columns=self._read_columns(kind, parts))
        if row is None:
            raise NotFound(f"{kind.name} {resource_id} not found")
        return row

    def _read_columns(self, kind: Kind, parts: frozenset[str]) -> Sequence[Any]:
        """What a read selects beside the rows, so that rendering them needs no more queries."""
        if kind.name != "User":
            return ()
        return reads.user_extra_columns(self._dialect, groups="groups" in parts,
                                        manager="manager" in parts)

    async def get_encoded(
        self, kind: Kind, resource_id: str, *, base_url: str, attributes: Sequence[str] | None = None,
        excluded: Sequence[str] | None = None,
    ) -> tuple[bytes, str]:
        """:meth:`get` as JSON bytes and ETag: a User's default rendering comes from the kept
        renderings, which outlive the commits that empty the response cache."""
        if kind.name == "User" and self._rendered.enabled and not attributes and not excluded:
            found = await self._kept_user(store.USERS.c.id.key, resource_id, base_url)
            if found is None:
                raise NotFound(f"User {resource_id} not found")
            body, version = found
            return body, etag(version)
        result = await self.get(kind, resource_id, base_url=base_url, attributes=attributes,
                                excluded=excluded)
        return jsoncodec.dumps(result.body), result.etag

    async def get(
        self, kind: Kind, resource_id: str, *, base_url: str, attributes: Sequence[str] | None = None,
        excluded: Sequence[str] | None = None,
    ) -> Result:
        parts = needs(kind.name, attributes, excluded)
        if kind.name == "User":
            row = await self._read_user(resource_id, parts)
            body = self._render_users([row], parts, base_url)[0]
        else:
            async with self._engine.connect() as conn:
                row = await self._load_for_reading(conn, kind, resource_id, parts)
                body = (await self._render(conn, kind, [row], parts, base_url, folded=True))[0]
        location = body["meta"]["location"]
        return Result(_shape(body, kind, attributes, excluded), etag(row.version), location)

    async def _read_user(self, resource_id: str, parts: frozenset[str]) -> Row[Any]:
        rows = await self._read_users(self._user_select(store.USERS.c.id.key, parts), resource_id)
        if not rows:
            raise NotFound(f"User {resource_id} not found")
        return rows[0]

    def _user_select(self, column: str, parts: frozenset[str]) -> Select[Any]:
        """Users whose ``column`` equals the ``value`` parameter, with what rendering ``parts``
        needs; built once per (column, parts): SQLAlchemy's cache key of this select cost more
        than running it."""
        statement = self._user_by.get((column, parts))
        if statement is None:
            table = store.USERS
            statement = select(table, *self._read_columns(KINDS["Users"], parts)).where(
                table.c[column] == bindparam("value"))
            self._user_by[(column, parts)] = statement
        return statement

    async def _read_users(self, statement: Select[Any], value: str) -> list[Row[Any]]:
        """The rows of a statement bounded by a unique key: on SQLite read on the loop's thread
        unless SQLite is busy."""
        params = {"value": value}
        rows = self._read_inline(statement, params) if self._loop_reader is not None else None
        if rows is None and self._pg_reader is not None:
            rows = await self._pg_reader.all(statement, params)
        if rows is None:
            async with self._engine.connect() as conn:
                rows = list(await conn.execute(statement, params))
        return rows

    def _order(self, kind: Kind, query: ListQuery) -> tuple[list[ColumnElement[Any]], bool]:
        descending = query.sort_order.lower() == "descending"
        tie = kind.table.c.id
        if not query.sort_by:
            return [tie.desc() if descending else tie.asc()], descending
        key = filters.sort_key(kind.name, query.sort_by, self._dialect)
        # Missing values sort last when ascending, first when descending (RFC 7644 §3.4.2.3).
        if descending:
            return [key.desc().nulls_first(), tie.desc()], descending
        return [key.asc().nulls_last(), tie.asc()], descending

    async def list(self, kind: Kind, query: ListQuery, *, base_url: str) -> dict[str, Any]:
        """A ListResponse page: index paging (startIndex/count) or cursor paging (RFC 9865)."""
        settings = self._settings
        parsed = filters.parse_filter(query.filter) if query.filter else None
        count = settings.default_page_size if query.count is None else query.count
        count = max(0, min(count, settings.max_results))
        # A sortBy is checked before anything is read (an unknown one is a 400 on every path);
        # the default order is built only by the paths that use it.
        ordered = self._order(kind, query) if query.sort_by else None
        parts = needs(kind.name, query.attributes, query.excluded)
        # The usual page (no attributes/excludedAttributes): kept renderings by key.
        kept = kind.name == "User" and self._rendered.enabled and not query.attributes \
            and not query.excluded
        columns = list(reads.user_key_columns(self._dialect)) if kept \
            else [*served_columns(kind.table), *self._read_columns(kind, parts)]
        lookup = filters.unique_lookup(kind.name, parsed) \
            if parsed is not None and query.cursor is None and query.start_index <= 1 and count \
            else None
        if lookup is not None:
            column, value = lookup
            if kept:
                one = await self._kept_user(column, value, base_url)
                bodies = [] if one is None else [embed(one[0])]
                return self._list_response(kind, query, len(bodies), start_index=1, bodies=bodies)
            found = await self._read_users(self._user_select(column, parts), value)
            return self._list_response(kind, query, len(found), start_index=1,
                                       bodies=self._render_users(found, parts, base_url))
        if kept and (self._loop_reader is not None or self._pg_reader is not None):
            page = await self._list_kept(kind, query, parsed, count, base_url)
            if page is not None:
                return page
        # Built after the lookup, which needs no WHERE clause (building one cost more than it).
        where = filters.where(kind.name, parsed, self._dialect) if parsed is not None else None
        order, descending = ordered or self._order(kind, query)
        token, known = self._known_total(kind, query)
        async with self._engine.connect() as conn:
            page_where, offset, start_index = where, max(query.start_index, 1) - 1, max(query.start_index, 1)
            if query.cursor is not None:
                offset, start_index = 0, None
                if query.cursor:
                    state = self._decode_cursor(query.cursor, query)
                    if "id" in state:
                        tie = kind.table.c.id
                        after = tie < state["id"] if descending else tie > state["id"]
                        page_where = _and(where, after)
                    else:
                        offset = state["offset"]
            rows = []
            # A page that cannot be its own total (deep, or after a cursor), or whose total is
            # an index count (no filter), reads the total in its own statement, unless it is
            # known: then the page reads its rows only.
            embedded = count > 0 and known is None and \
                (where is None or offset > 0 or page_where is not where)
            if count:
                rows = await store.fetch(
                    conn, kind.table, where=page_where, order_by=order, offset=offset,
                    limit=count + 1,
                    columns=[*columns, reads.total_column(kind.table, where)] if embedded
                    else columns)
            more = len(rows) > count
            # A first page that holds every match is its own total: the usual answer to a
            # filter such as `userName eq "x"` costs one query, not two.
            whole = count > 0 and not more and offset == 0 and page_where is where
            total = self._total_at_hand(kind, query, rows, token, known, embedded=embedded,
                                        whole=whole)
            if total is None:
                total = await store.count(conn, kind.table, where)
                self._keep_total(kind, query, token, total)
            rows = rows[:count]
            bodies = await self._render_kept(conn, rows, base_url) if kept \
                else await self._render(conn, kind, rows, parts, base_url, folded=True)
        cursor = self._cursor(rows[-1], query, offset, len(rows)) \
            if start_index is None and more and rows else None
        return self._list_response(kind, query, total, start_index=start_index, bodies=bodies,
                                   next_cursor=cursor)

    async def _list_kept(
        self, kind: Kind, query: ListQuery, parsed: filters.Filter | None, count: int,
        base_url: str,
    ) -> dict[str, Any] | None:
        """A page of kept renderings whose keys (and total) are read in one statement on the
        driver's connection (:meth:`_raw_rows`), built and compiled once per query shape: the
        answer :meth:`list` gives, for a fraction of its cost. None: the statement cannot run
        that way (SQLite busy, a parameter the raw reader cannot bind); read the usual way."""
        offset, start_index, after = max(query.start_index, 1) - 1, max(query.start_index, 1), None
        if query.cursor is not None:
            offset, start_index = 0, None
            if query.cursor:
                state = self._decode_cursor(query.cursor, query)
                if "id" in state:
                    after = state["id"]
                else:
                    offset = state["offset"]
        token, known = self._known_total(kind, query)
        # As in list(): a page that cannot be its own total, or whose total is an index count,
        # reads it in the same statement, unless it is known.
        embedded = count > 0 and known is None and \
            (parsed is None or offset > 0 or after is not None)
        rows: list[Any] = []
        if count:
            statement = self._kept_statement(kind, query, parsed, "page", after=after is not None,
                                             embedded=embedded)
            found = await self._raw_rows(statement, {reads.OFFSET_PARAM: offset,
                                                     reads.LIMIT_PARAM: count + 1,
                                                     reads.AFTER_PARAM: after})
            if found is None:
                return None
            rows = found
        more = len(rows) > count
        whole = count > 0 and not more and offset == 0 and after is None
        total = self._total_at_hand(kind, query, rows, token, known, embedded=embedded,
                                    whole=whole)
        if total is None:
            counted = await self._raw_rows(
                self._kept_statement(kind, query, parsed, "count", after=False, embedded=False), {})
            if counted is None:
                return None
            total = int(counted[0][0] or 0)
            self._keep_total(kind, query, token, total)
        rows = rows[:count]
        bodies = await self._render_kept(None, rows, base_url)
        cursor = self._cursor(rows[-1], query, offset, len(rows)) \
            if start_index is None and more and rows else None
        return self._list_response(kind, query, total, start_index=start_index, bodies=bodies,
                                   next_cursor=cursor)

    def _kept_statement(
        self, kind: Kind, query: ListQuery, parsed: filters.Filter | None, part: str, *,
        after: bool, embedded: bool,
    ) -> Select[Any]:
        """The page (``part`` "page") or count ("count") statement of a kept list, by what
        shapes it: the filter's text (its values are the statement's bound values), the sort,
        keyset or offset, total or not. Kept: building the filter and the statement, and
        compiling it, cost more than running it."""
        shape = (kind.name, part, query.filter, query.sort_by, query.sort_order.lower(), after,
                 embedded)
        statement = self._kept_statements.pop(shape, None)
        if statement is None:
            table = kind.table
            where = filters.where(kind.name, parsed, self._dialect) if parsed is not None else None
            if part == "count":
                statement = select(func.count()).select_from(table)
                if where is not None:
                    statement = statement.where(where)
            else:
                order, descending = self._order(kind, query)
                page_where = where
                if after:
                    tie, last = table.c.id, bindparam(reads.AFTER_PARAM, type_=table.c.id.type)
                    page_where = _and(where, tie < last if descending else tie > last)
                columns = list(reads.user_key_columns(self._dialect))
                if embedded:
                    columns.append(reads.total_column(table, where))
                statement = reads.page_statement(table, page_where, order, columns)
            if len(self._kept_statements) >= _KEPT_STATEMENTS:
                self._kept_statements.pop(next(iter(self._kept_statements)))
        self._kept_statements[shape] = statement  # most recently used last
        return statement

    async def _raw_rows(self, statement: Select[Any], params: dict[str, Any]) -> list[Any] | None:
        """The rows of ``statement`` on the driver's own connection: SQLite on a worker thread
        of the loop reader, PostgreSQL on the point reader's connections. None: SQLite was busy,
        or the statement has a parameter the raw reader refuses (then never tried again)."""
        if statement in self._not_raw:
            return None
        try:
            if self._loop_reader is not None:
                return await self._loop_reader.all_in_thread(statement, params)
            assert self._pg_reader is not None
            return await self._pg_reader.all(statement, params)
        except ValueError as exc:
            log.debug("scim.raw_list_refused", error=str(exc))
            self._not_raw.add(statement)
            return None
        except DBAPIError as exc:
            if self._loop_reader is None:
                raise  # PostgreSQL: as the engine would have raised it
            log.debug("scim.raw_list_failed", error=str(exc.orig))
            return None

    def _known_total(self, kind: Kind, query: ListQuery) -> tuple[object, int | None]:
        """The store's state now (taken before the page's reads: a commit during them voids a
        total counted meanwhile) and the list's total kept in that state, if any."""
        token = self.totals.token()
        return token, self.totals.get((kind.name, query.filter), token)

    def _total_at_hand(
        self, kind: Kind, query: ListQuery, rows: Sequence[Any], token: object,
        known: int | None, *, embedded: bool, whole: bool,
    ) -> int | None:
        """A page's totalResults without another statement: read with its rows (``embedded``),
        the rows themselves (``whole``: every match on the first page), or kept and still in the
        state the rows were read in; kept for the next page. None: it must be counted (then
        :meth:`_keep_total` it). Raises TooMany past the configured limit."""
        if embedded and rows:
            total = int(getattr(rows[0], reads.TOTAL_COLUMN))
        elif whole:
            total = len(rows)
        elif known is not None and self.totals.current(token):
            return self._checked_total(query, known)
        else:
            return None
        self._keep_total(kind, query, token, total)
        return total

    def _keep_total(self, kind: Kind, query: ListQuery, token: object, total: int) -> None:
        """Keep a total counted after ``token`` was taken; raise TooMany past the limit."""
        self.totals.put((kind.name, query.filter), token, total)
        self._checked_total(query, total)

    def _checked_total(self, query: ListQuery, total: int) -> int:
        limit = self._settings.max_filter_results
        if query.filter and limit and total > limit:
            raise TooMany(f"the filter matches {total} resources; the limit is {limit}: narrow it")
        return total

    @staticmethod
    def _list_response(
        kind: Kind, query: ListQuery, total: int, *,
        start_index: int | None, bodies: list[Any], next_cursor: str | None = None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"schemas": [LIST_RESPONSE], "totalResults": total,
                               "itemsPerPage": len(bodies)}
        if start_index is not None:
            out["startIndex"] = start_index
        elif next_cursor is not None:
            out["nextCursor"] = next_cursor
        out["Resources"] = [_shape(b, kind, query.attributes, query.excluded)
                            for b in bodies]
        return out

    def _read_inline(
        self, statement: Select[Any], params: dict[str, Any] | None = None
    ) -> list[Row[Any]] | None:
        """The rows of ``statement`` read on the loop's thread; None: SQLite was busy (aiosqlite
        then waits for it, off the loop)."""
        assert self._loop_reader is not None
        try:
            return self._loop_reader.all(statement, params)
        except DBAPIError as exc:
            log.debug("scim.inline_read_failed", error=str(exc.orig))
            return None

    @staticmethod
    def _cursor(row: Row[Any], query: ListQuery, offset: int, returned: int) -> str:
        """Opaque to clients. Unsorted: the last id (keyset paging, stable under writes);
        sorted: the next offset, bound to the sort it was issued for."""
        state: dict[str, Any] = (
            {"id": row.id} if not query.sort_by
            else {"offset": offset + returned, "sort": [query.sort_by, query.sort_order.lower()]}
        )
        return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")

    @staticmethod
    def _decode_cursor(cursor: str, query: ListQuery) -> dict[str, Any]:
        try:
            state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        except (ValueError, binascii.Error, RecursionError) as exc:
            raise InvalidCursor("the cursor is not one this server issued") from exc
        if not isinstance(state, dict) or not ({"id"} <= state.keys() or {"offset", "sort"} <= state.keys()):
            raise InvalidCursor("the cursor is not one this server issued")
        # Opaque to clients, but anyone can forge one: check what goes into the query.
        if "id" in state and not (isinstance(state["id"], str) and plausible_id(state["id"])):
            raise InvalidCursor("the cursor is not one this server issued")
        offset = state.get("offset", 0)
        if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
            raise InvalidCursor("the cursor is not one this server issued")
        if "sort" in state and state["sort"] != [query.sort_by, query.sort_order.lower()]:
            raise InvalidCursor("the cursor was issued for another sortBy/sortOrder")
        if "id" in state and query.sort_by:
            raise InvalidCursor("the cursor was issued for an unsorted list")
        return state

    async def search_all(self, query: ListQuery, *, base_url: str) -> dict[str, Any]:
        """POST /.search at the root: Users then Groups, paged as one list (RFC 7644 §3.4.3)."""
        if query.cursor is not None:
            raise InvalidValue("cursor paging is offered per resource type, not at the root")
        results: list[dict[str, Any]] = []
        total = 0
        start = max(query.start_index, 1)
        count = self._settings.default_page_size if query.count is None else query.count
        count = max(0, min(count, self._settings.max_results))
        skip, room = start - 1, count
        for kind in KINDS.values():
            probe = await self.list(kind, _replace(query, start_index=1, count=0), base_url=base_url)
            kind_total = probe["totalResults"]
            total += kind_total
            if room and skip < kind_total:
                page = await self.list(kind, _replace(query, start_index=skip + 1, count=room),
                                       base_url=base_url)
                results.extend(page["Resources"])
                room -= len(page["Resources"])
            skip = max(0, skip - kind_total)
        return {"schemas": [LIST_RESPONSE], "totalResults": total, "itemsPerPage": len(results),
                "startIndex": start, "Resources": results}

    # -- writing ------------------------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, on SQLite in this process's turn (``_write_turns``)."""
        async with self._write_turns or nullcontext(), self._engine.begin() as conn:
            yield conn

    async def create(
        self, kind: Kind, body: Mapping[str, Any], *, base_url: str,
        attributes: Sequence[str] | None = None, excluded: Sequence[str] | None = None,
    ) -> Result:
        resource = validate_resource(body, kind.name, for_update=False)
        now = self._clock()
        async with self._transaction() as conn:
            if kind.name == "User":
                parts = user_parts(resource)
                new_id = await store.insert_user(conn, resource=parts.resource,
                                                 external_id=parts.external_id,
                                                 manager_id=parts.manager_id, profile=parts.profile,
                                                 now=now, capture=self._capture)
            else:
                gparts = group_parts(resource)
                new_id = await store.insert_group(conn, resource=gparts.resource,
                                                  external_id=gparts.external_id, now=now,
                                                  capture=self._capture)
                if gparts.members:
                    await store.replace_members(conn, new_id, gparts.members, now=now)
            return await self._result(conn, kind, new_id, base_url, attributes, excluded)

    async def _result(
        self, conn: AsyncConnection, kind: Kind, resource_id: str, base_url: str,
        attributes: Sequence[str] | None = None, excluded: Sequence[str] | None = None,
    ) -> Result:
        """The written resource as the response shows it: RFC 7644 §3.9 lets a POST, PUT or
        PATCH ask for ``attributes``/``excludedAttributes``; ``excludedAttributes=members``
        then loads no members (a PATCH of a large group answers without reading them)."""
        parts = needs(kind.name, attributes, excluded)
        row = await self._load_for_reading(conn, kind, resource_id, parts)
        body = (await self._render(conn, kind, [row], parts, base_url, folded=True))[0]
        location = body["meta"]["location"]
        projected = _shape(body, kind, attributes, excluded)
        return Result(projected, etag(row.version), location)

    def _check_version(self, row: Row[Any], if_match: str | None) -> None:
        if if_match is not None and not etag_matches(if_match, etag(row.version)):
            raise PreconditionFailed(f"version mismatch: the resource is at {etag(row.version)}")

    @_redo_lost_races
    async def replace(
        self, kind: Kind, resource_id: str, body: Mapping[str, Any], *, base_url: str,
        if_match: str | None = None, attributes: Sequence[str] | None = None,
        excluded: Sequence[str] | None = None,
    ) -> Result:
        resource = validate_resource(body, kind.name, for_update=True)
        async with self._transaction() as conn:
            row = await self._load(conn, kind, resource_id, for_update=True)
            self._check_version(row, if_match)
            await self._write(conn, kind, row, resource, base_url)
            return await self._result(conn, kind, resource_id, base_url, attributes, excluded)

    @_redo_lost_races
    async def patch(
        self, kind: Kind, resource_id: str, body: Mapping[str, Any], *, base_url: str,
        if_match: str | None = None, attributes: Sequence[str] | None = None,
        excluded: Sequence[str] | None = None,
    ) -> Result:
        ops = parse_patch(body)
        is_group = kind.name == "Group"
        delta = member_delta(ops) if is_group else None
        # Members are loaded only when an operation may change them (Okta renames a group
        # with a path-less replace: that must not read 50,000 members).
        with_members = not is_group or touches_members(ops)
        parts = frozenset({"manager", "members"} if with_members else {"manager"})
        async with self._transaction() as conn:
            # Locked until the commit (PostgreSQL; SQLite's writes take turns): concurrent writes
            # of one resource queue up instead of racing. Racing, a dozen concurrent PATCHes of
            # one user ran out of redos (a 412 no client asked for), and member deltas, applied
            # without reading the group, would race on the member table. A user's manager name
            # comes in the same statement.
            row = await self._load_for_reading(conn, kind, resource_id, parts, for_update=True)
            self._check_version(row, if_match)
            if delta is not None and row.origin == "local":
                now = self._clock()
                if await store.change_members(conn, row.id, add=delta.add, remove=delta.remove,
                                              now=now):
                    await store.bump_version(conn, kind.table, row, now, capture=self._capture)
                return await self._result(conn, kind, resource_id, base_url, attributes, excluded)
            current = (await self._render(conn, kind, [row], parts, base_url, folded=True))[0]
            current.pop("meta", None)
            patched = apply_patch(current, ops, kind.name)
            if changed_paths(current, patched):
                resource = validate_resource(patched, kind.name, for_update=True)
                await self._write(conn, kind, row, resource, base_url, before=current,
                                  keep_members=not with_members)
            return await self._result(conn, kind, resource_id, base_url, attributes, excluded)

    async def _write(
        self, conn: AsyncConnection, kind: Kind, row: Row[Any], resource: dict[str, Any],
        base_url: str, before: dict[str, Any] | None = None, keep_members: bool = False,
    ) -> None:
        """Store ``resource``; ``keep_members`` leaves a group's members as they are (the
        resource was read without them)."""
        now = self._clock()
        if row.origin == "ldap":
            if before is None:
                before = (await self._render(conn, kind, [row], frozenset({"manager", "members"}),
                                             base_url))[0]
            before = validate_resource(before, kind.name, for_update=True)
            owned = sorted(p for p in changed_paths(before, resource) if p.lower() != PROFILE_USER.lower())
            if owned:
                raise Mutability(f"{', '.join(owned)} of a directory {kind.name.lower()} are owned by "
                                 "LDAP; only the profile extension is writable")
            if kind.name == "User":
                await store.update_user(conn, row, resource=None, external_id=None, manager_id=None,
                                        profile=user_parts(resource).profile, now=now,
                                        capture=self._capture)
            return
        if kind.name == "User":
            parts = user_parts(resource)
            await store.update_user(conn, row, resource=parts.resource, external_id=parts.external_id,
                                    manager_id=parts.manager_id, profile=parts.profile, now=now,
                                    capture=self._capture)
            return
        gparts = group_parts(resource)
        await store.update_group(conn, row, resource=gparts.resource, external_id=gparts.external_id,
                                 now=now, capture=self._capture)
        if not keep_members:
            await store.replace_members(conn, row.id, gparts.members or [], now=now)

    @_redo_lost_races
    async def delete(self, kind: Kind, resource_id: str, *, if_match: str | None = None) -> None:
        async with self._transaction() as conn:
            row = await self._load(conn, kind, resource_id, for_update=True)
            self._check_version(row, if_match)
            if row.origin == "ldap":
                raise Mutability(f"this {kind.name.lower()} comes from the directory: remove it in LDAP")
            await store.delete_resource(conn, kind.table, row, self._clock(), capture=self._capture)


def _shape(
    body: dict[str, Any], kind: Kind, attributes: Sequence[str] | None, excluded: Sequence[str] | None
) -> dict[str, Any]:
    """The resource as asked for. Without attributes/excludedAttributes it already is: what is
    stored holds nothing returned "never" (no passwords) and the schemas have no "request"
    attributes, so the per-attribute walk is skipped on the hot path."""
    if not attributes and not excluded:
        return body
    return project(body, kind.name, attributes=attributes, excluded=excluded)


def _and(a: ColumnElement[bool] | None, b: ColumnElement[bool]) -> ColumnElement[bool]:
    return b if a is None else and_(a, b)


def _replace(query: ListQuery, **changes: Any) -> ListQuery:
    from dataclasses import replace

    return replace(query, **changes)
