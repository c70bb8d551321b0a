"""A first load builds the users' and memberships' secondary indexes after the rows.

Loading users into an empty store inserted every row into B-trees keyed by directory values
(DNs, names, e-mail addresses) in no order, each insert landing on a page of its own: at 185k
users five of the indexes below held 37 MB on SQLite (its page cache is 16 MiB; all indexes,
about 470 MB at 1M users), and the 1M load cost 1.4 times the 100k one per entry. On
PostgreSQL scim_user has 13 indexes to maintain on every upserted row. One ``CREATE INDEX``
after the rows sorts once and writes each page once.

So a run that starts on an empty ``scim_user`` table drops :data:`DEFERRABLE` (non-unique
indexes the load never queries; unique ones and those it looks rows up by stay, so uniqueness
and the load's own lookups are unaffected) and builds them again as soon as it may: the users'
once the users are read, before members and managers are resolved (which use them); the
memberships' (member_id, group_id) once members are resolved, which only insert into it. That
one mattered most at 1M users: 2.3M member rows, each landing on a random page of a 180 MB
index, took 51.6 s of a 752 s load; a synthetic load of 1.7M rows took 60.8 s with the index
in place, 11.4 s without it and 4.1 s to build it after. SCIM reads keep working meanwhile,
without these indexes.

The indexes are always put back: after the users are read (and the members resolved), when
the run fails or is stopped, and, should the process be killed in between, by
:func:`build_missing` at the next run's start and at the store's upgrade at service start.
The DDL is compiled from the schema's :class:`~sqlalchemy.schema.Index` objects, so a rebuilt
index is the migrated one.

On SQLite ``CREATE INDEX`` holds the write lock while it runs (a few seconds at 1M users):
other writers wait for it, readers do not. On PostgreSQL it holds a SHARE lock on the table:
writes to it wait, reads do not; it sorts within ``maintenance_work_mem``.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Final

import structlog
from sqlalchemy import Connection, Index, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import CreateIndex, DropIndex

from syncsvc.store.schema import EMAILS, MEMBERS, USERS

__all__ = ["AFTER_MEMBERS", "DEFERRABLE", "LoadIndexes", "build_missing", "missing"]

log = structlog.get_logger(__name__)

# Checked against the user load's own queries (syncsvc.store.writes: anchor for existing rows,
# user_name_lower for holders of a name, dn_norm for managers on the page; photos, e-mail rows,
# dependents and capture by id): none filters on these. manager_dn_norm and manager_id are
# first read when managers are resolved, after the rebuild; the rest by SCIM filters and lists.
# (A user renamed twice in one read, its entry on two pages, would have its reports found by a
# scan of manager_id: slower, not wrong.)
_AFTER_USERS: Final = frozenset({
    "ix_scim_user_external_id", "ix_scim_user_display_name", "ix_scim_user_primary_email",
    "ix_scim_user_active", "ix_scim_user_manager_dn_norm", "ix_scim_user_manager_id",
    "ix_scim_user_last_modified", "ix_scim_user_email_value_lower",
})
# Member resolution reads members by group (the primary key) and moves users by id; by member
# it is read first by what comes after it: the sweep's removals, renames (none on a first
# load: every row is new) and a user's groups in SCIM reads.
_AFTER_MEMBERS: Final = frozenset({"ix_scim_group_member_member_id_group_id"})
_TABLES: Final = (USERS, EMAILS, MEMBERS)


def _named(names: frozenset[str]) -> tuple[Index, ...]:
    found = tuple(sorted((index for table in _TABLES for index in table.indexes
                          if index.name in names and not index.unique),
                         key=lambda index: str(index.name)))
    assert len(found) == len(names), "an index name no longer matches the schema"
    return found


AFTER_MEMBERS: Final = _named(_AFTER_MEMBERS)
DEFERRABLE: Final = _named(_AFTER_USERS | _AFTER_MEMBERS)

# PostgreSQL: DROP INDEX takes an ACCESS EXCLUSIVE lock on the table; queued behind a long
# SCIM read it would stall every read after it. Waiting this long, the load keeps its indexes.
_DROP_LOCK_TIMEOUT: Final = text("SET LOCAL lock_timeout = '3s'")


def missing(sync_conn: Connection) -> list[Index]:
    """The :data:`DEFERRABLE` indexes the database lacks (a look at its catalogue)."""
    inspector = inspect(sync_conn)
    present = {info["name"] for table in _TABLES for info in inspector.get_indexes(table.name)}
    return [index for index in DEFERRABLE if index.name not in present]


async def build_missing(
    conn: AsyncConnection, *, reason: str, among: Collection[str] | None = None
) -> dict[str, float]:
    """Create the :data:`DEFERRABLE` indexes ``conn``'s database lacks (those named ``among``,
    if given), in its transaction; seconds per index built. Nothing is built (nor locked) when
    all are present. ``reason`` goes to the log: "users read" or "members resolved" after a
    deferral, else a repair (a process killed mid-load)."""
    absent = await conn.run_sync(missing)
    built: dict[str, float] = {}
    for index in absent:
        if among is not None and index.name not in among:
            continue
        started = time.monotonic()
        await conn.execute(CreateIndex(index, if_not_exists=True))
        built[str(index.name)] = round(time.monotonic() - started, 3)
    if built:
        log.info("store.indexes_built", reason=reason, seconds=round(sum(built.values()), 3),
                 indexes=built)
    return built


class LoadIndexes:
    """One run's deferral: :meth:`defer` on a first load, :meth:`restore` as soon as it may."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._deferred: set[str] = set()  # names dropped and not built yet

    async def repair(self) -> None:
        """Build any :data:`DEFERRABLE` index missing at a run's start: a process killed while
        it loaded left them dropped. A look at the catalogue when all are there."""
        async with self._engine.begin() as conn:
            await build_missing(conn, reason="missing at run start")

    async def defer(self) -> bool:
        """Drop :data:`DEFERRABLE` if no user is stored yet; whether they were dropped.

        The caller holds the sync lock (no other run loads meanwhile) and calls
        :meth:`restore` on every way out of the run."""
        try:
            async with self._engine.begin() as conn:
                if await conn.scalar(select(USERS.c.id).limit(1)) is not None:
                    return False
                if conn.dialect.name == "postgresql":
                    await conn.execute(_DROP_LOCK_TIMEOUT)
                # Before the first drop: restore() covers a partial one.
                self._deferred = {str(index.name) for index in DEFERRABLE}
                for index in DEFERRABLE:
                    await conn.execute(DropIndex(index, if_exists=True))
        except DBAPIError as exc:  # a long reader held the table: load with the indexes
            log.warning("store.indexes_not_deferred", error=str(exc).splitlines()[0])
            return False
        log.info("store.indexes_deferred", indexes=[str(index.name) for index in DEFERRABLE])
        return True

    async def restore(self, reason: str, *, members_later: bool = False) -> None:
        """Build what :meth:`defer` dropped and is not built yet (nothing if it dropped
        nothing); with ``members_later``, all but :data:`AFTER_MEMBERS`, which member
        resolution only inserts into."""
        due = self._deferred - (_AFTER_MEMBERS if members_later else frozenset())
        if not due:
            return
        async with self._engine.begin() as conn:
            await build_missing(conn, reason=reason, among=due)
        self._deferred -= due
