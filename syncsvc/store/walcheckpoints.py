"""SQLite: a sync's WAL checkpoints run beside it, in the gap between one page and the next.

Every commit appends the pages it changed to the write-ahead log; a checkpoint copies them back
into the database file and syncs it. Left to SQLite, the commit that crosses
``wal_autocheckpoint`` runs that checkpoint itself, while the sync waits. On a first load of
1M users it was the part of the load that grew most with the directory's size: 1068 commits
took 136 s (4.5 s for the 117 of 100k users), as each page's users land on random pages of the
B-trees keyed by entryUUID, userName and DN, and nearly every page a checkpoint copies is a
distinct one.

So once a page has committed (and no other page is being written: users and groups are read
side by side) this module starts a PASSIVE checkpoint on a connection of its own, SQLite copying
outside Python's lock, on another core, while the run reads and maps the next page; the next
page's transaction waits until it is done. That wait keeps the log bounded: a checkpoint lets
the log start over only when no writer appended behind it (beside a writer that never waited,
the log of a 1M load grew to 14 GB). In a 1M first load 972 checkpoints took 65 s beside the
load, of which pages waited 14 s; at 100k, 97 took 4.5 s, 0.05 s waited for (bench/RESULTS.md,
stop 16). One every four pages copied less (250 took 37 s) but each outlasted the gap (21 s
waited): the 1M load took 221 us an entry against 208. SQLite's own autocheckpoint stays, for
every other writer.

A checkpoint that fails (the disk, a lock held too long) is logged and changes nothing: the
pages it would have copied stay in the log, for the next checkpoint or SQLite's own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.store.engine import sqlite_file

__all__ = ["PageCheckpoints"]

log = structlog.get_logger(__name__)


class PageCheckpoints:
    """One run's checkpoints: each page's transaction inside :meth:`page`, :meth:`drain` when
    the run ends. Does nothing on PostgreSQL (its checkpointer is a server process already)
    nor for a SQLite database that is not a plain file."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine if sqlite_file(engine) is not None else None
        self._running: asyncio.Future[None] | None = None
        self._writing = 0  # pages in a transaction now (users and groups are read side by side)
        self._count = 0
        self._seconds = 0.0  # checkpointing, beside the run
        self._waited = 0.0  # of which pages waited for

    @asynccontextmanager
    async def page(self) -> AsyncIterator[None]:
        """Around a page's transaction: it starts once no checkpoint runs; once it committed
        and no other page is being written, a checkpoint starts."""
        started = time.monotonic()
        while self._running is not None and not self._running.done():
            # Shielded: a write cancelled while it waits leaves the checkpoint to finish.
            await asyncio.shield(self._running)
        self._waited += time.monotonic() - started
        self._writing += 1
        try:
            yield
        finally:
            self._writing -= 1
        if self._engine is not None and self._writing == 0:
            self._running = asyncio.ensure_future(self._checkpoint(self._engine))

    async def drain(self) -> None:
        """Let a running checkpoint finish (before a large write, or the run's end)."""
        if self._running is not None:
            await asyncio.shield(self._running)

    def log_totals(self) -> None:
        """Log how many checkpoints ran, for how long, and how long pages waited for them."""
        if self._count:
            log.info("store.checkpoints", checkpoints=self._count,
                     seconds=round(self._seconds, 3), waited=round(self._waited, 3))

    async def _checkpoint(self, engine: AsyncEngine) -> None:
        started = time.monotonic()
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except (SQLAlchemyError, OSError) as exc:  # nothing is lost: SQLite's own one remains
            log.warning("store.checkpoint_failed", error=f"{type(exc).__name__}: {exc}")
        self._count += 1
        self._seconds += time.monotonic() - started
