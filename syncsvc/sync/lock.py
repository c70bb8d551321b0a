"""One run at a time: in this process, and among every process sharing the store.

PostgreSQL: a session-level advisory lock, so that of several replicas exactly one syncs.
SQLite: an exclusive ``flock`` on a file beside the database (the CLI and a running server on
one machine share it).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from syncsvc.errors import SyncAborted, SyncBusy
from syncsvc.store.engine import RUN_LOCK_KEY

__all__ = ["ADVISORY_KEY", "RunLock"]

log = structlog.get_logger(__name__)

ADVISORY_KEY = RUN_LOCK_KEY


class RunLock:
    """Refuses (never queues) a second concurrent run."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._local = asyncio.Lock()
        self._session: AsyncConnection | None = None  # PostgreSQL: the session holding the lock
        self._probe = asyncio.Lock()  # one statement at a time on that session

    async def ensure_held(self) -> None:
        """Raise SyncAborted if the lock was lost under the running sync.

        A PostgreSQL advisory lock lives as long as its session: after a restart or a cut
        connection another replica may hold it, and pooled connections reconnect silently, so
        the run must stop writing. Called before each page and before removals (one round
        trip). The SQLite file lock cannot be lost while the process lives.
        """
        session = self._session
        if session is None:
            return
        async with self._probe:
            try:
                await session.execute(text("SELECT 1"))
                await session.commit()  # never leave the session idle in a transaction
            except (SQLAlchemyError, ConnectionError, TimeoutError) as exc:
                raise SyncAborted(
                    "the run lost its lock: the database session holding it ended (PostgreSQL "
                    "restarted or the connection was cut); stopped before writing more, "
                    "nothing was removed") from exc

    @property
    def busy(self) -> bool:
        return self._local.locked()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        if self._local.locked():
            raise SyncBusy("a sync is already running in this process")
        async with self._local:
            if self._engine.dialect.name == "postgresql":
                async with self._advisory():
                    yield
            else:
                with self._file_lock():
                    yield

    @asynccontextmanager
    async def _advisory(self) -> AsyncIterator[None]:
        async with self._engine.connect() as conn:
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY})
            await conn.commit()
            if not got:
                raise SyncBusy("another replica is running a sync")
            self._session = conn
            try:
                yield
            finally:
                self._session = None
                try:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                    await conn.commit()
                except (SQLAlchemyError, ConnectionError, TimeoutError) as exc:
                    # The session is gone (PostgreSQL restarted, connection cut): the server
                    # dropped its advisory locks with it, so there is nothing left to release.
                    log.warning("sync.lock_session_lost", error_type=type(exc).__name__)

    def _lock_path(self) -> Path | None:
        database = make_url(str(self._engine.url)).database
        if not database or database == ":memory:":
            return None
        return Path(database + ".sync.lock")

    def _file_lock(self) -> _FileLock:
        return _FileLock(self._lock_path())


class _FileLock:
    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._fd: int | None = None

    def __enter__(self) -> None:
        if self._path is None:
            return
        self._fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise SyncBusy(f"another process is running a sync ({self._path} is locked)") from None

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
