"""A first load builds the users' secondary indexes after the rows, not row by row.

Loading users into an empty store inserted every row into B-trees keyed by directory values
(DNs, names, e-mail addresses) in no order, each insert landing on a page of its own: at 185k
users five of the indexes below held 37 MB on SQLite (its page cache is 16 MiB; all indexes,
about 470 MB at 1M users), and the 1M load cost 1.4 times the 100k one per entry. On
PostgreSQL scim_user has 13 indexes to maintain on every upserted row. One ``CREATE INDEX``
after the rows sorts once and writes each page once.

So a run that starts on an empty ``scim_user`` table drops :data:`DEFERRABLE` (non-unique
indexes the user load never queries; unique ones and those it looks rows up by stay, so
uniqueness and the load's own lookups are unaffected) and builds them again as soon as the
users are read, before members and managers are resolved (which use them). SCIM reads keep
working meanwhile, without these indexes.

The indexes are always put back: after the users are read, when the run fails or is stopped,
and, should the process be killed in between, by :func:`build_missing` at the next run's start
and at the store's upgrade at service start. The DDL is compiled from the schema's
:class:`~sqlalchemy.schema.Index` objects, so a rebuilt index is the migrated one.

On SQLite ``CREATE INDEX`` holds the write lock while it runs (a few seconds at 1M users):
other writers wait for it, readers do not. On PostgreSQL it holds a SHARE lock on the table:
writes to it wait, reads do not; it sorts within ``maintenance_work_mem``.
"""

from __future__ import annotations

import time
from typing import Final

import structlog
from sqlalchemy import Connection, Index, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import CreateIndex, DropIndex

from syncsvc.store.schema import EMAILS, USERS

__all__ = ["DEFERRABLE", "LoadIndexes", "build_missing", "missing"]

log = structlog.get_logger(__name__)

# Checked against the user load's own queries (syncsvc.store.writes: anchor for existing rows,
# user_name_lower for holders of a name, dn_norm for managers on the page; photos, e-mail rows,
# dependents and capture by id): none filters on these. manager_dn_norm and manager_id are
# first read when managers are resolved, after the rebuild; the rest by SCIM filters and lists.
# (A user renamed twice in one read, its entry on two pages, would have its reports found by a
# scan of manager_id: slower, not wrong.)
_DEFERRED_NAMES: Final = frozenset({
    "ix_scim_user_external_id", "ix_scim_user_display_name", "ix_scim_user_primary_email",
    "ix_scim_user_active", "ix_scim_user_manager_dn_norm", "ix_scim_user_manager_id",
    "ix_scim_user_last_modified", "ix_scim_user_email_value_lower",
})

DEFERRABLE: Final[tuple[Index, ...]] = tuple(sorted(
    (index for table in (USERS, EMAILS) for index in table.indexes
     if index.name in _DEFERRED_NAMES and not index.unique),
    key=lambda index: str(index.name)))
assert len(DEFERRABLE) == len(_DEFERRED_NAMES), "an index name no longer matches the schema"

# PostgreSQL: DROP INDEX takes an ACCESS EXCLUSIVE lock on the table; queued behind a long
# SCIM read it would stall every read after it. Waiting this long, the load keeps its indexes.
_DROP_LOCK_TIMEOUT: Final = text("SET LOCAL lock_timeout = '3s'")


def missing(sync_conn: Connection) -> list[Index]:
    """The :data:`DEFERRABLE` indexes the database lacks (a look at its catalogue)."""
    inspector = inspect(sync_conn)
    present = {info["name"] for table in (USERS, EMAILS)
               for info in inspector.get_indexes(table.name)}
    return [index for index in DEFERRABLE if index.name not in present]


async def build_missing(conn: AsyncConnection, *, reason: str) -> dict[str, float]:
    """Create the :data:`DEFERRABLE` indexes ``conn``'s database lacks, in its transaction;
    seconds per index built. Nothing is built (nor locked) when all are present. ``reason``
    goes to the log: "users read" after a deferral, else a repair (a process killed mid-load)."""
    absent = await conn.run_sync(missing)
    built: dict[str, float] = {}
    for index in absent:
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
        self._deferred = False

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
                self._deferred = True  # before the first drop: restore() covers a partial one
                for index in DEFERRABLE:
                    await conn.execute(DropIndex(index, if_exists=True))
        except DBAPIError as exc:  # a long reader held the table: load with the indexes
            log.warning("store.indexes_not_deferred", error=str(exc).splitlines()[0])
            return False
        log.info("store.indexes_deferred", indexes=[str(index.name) for index in DEFERRABLE])
        return True

    async def restore(self, reason: str) -> None:
        """Build what :meth:`defer` dropped (nothing if it dropped nothing, or once built)."""
        if not self._deferred:
            return
        async with self._engine.begin() as conn:
            await build_missing(conn, reason=reason)
        self._deferred = False
