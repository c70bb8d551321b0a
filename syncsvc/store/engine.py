"""Engine construction and schema upgrades (Alembic), for SQLite and PostgreSQL.

Upgrades are serialised among processes: replicas starting together on an empty PostgreSQL
would otherwise race to create the same tables. A database that cannot be reached or refuses
the upgrade raises :class:`~syncsvc.errors.StoreError` with one readable line (no password).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from syncsvc import jsoncodec
from syncsvc.errors import StoreError
from syncsvc.settings import StoreSettings
from syncsvc.store.loadindexes import build_missing

__all__ = ["MIGRATION_LOCK_KEY", "RUN_LOCK_KEY", "create_engine", "current_revision", "head_revision",
           "is_postgres", "sqlite_file", "upgrade"]

MIGRATIONS = Path(__file__).parent / "migrations"

# "syncmig" in ASCII: a fixed advisory lock key for schema upgrades, distinct from the sync
# lock's so a long sync never delays a start-up.
MIGRATION_LOCK_KEY = 0x73796E636D6967
# "syncsvc" in ASCII: the advisory lock a sync holds for its whole run (syncsvc.sync.lock).
# Any other tool using this key would block our syncs.
RUN_LOCK_KEY = 0x73796E63737663


def create_engine(settings: StoreSettings) -> AsyncEngine:
    """Build the one engine of the process; dispose of it at shutdown."""
    url = make_url(settings.url)
    # orjson for the JSON columns: a list page decodes 100 stored resources per request.
    kwargs: dict[str, Any] = {"echo": settings.echo, "json_serializer": jsoncodec.dumps_text,
                              "json_deserializer": jsoncodec.loads}
    postgres = url.get_backend_name() == "postgresql"
    if postgres:
        kwargs.update(pool_size=10, max_overflow=5, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if postgres:
        # An INSERT of many rows (a page of new users, a first load's 232k memberships at 100k
        # users) as multi-row VALUES of up to 1000 rows, as SQLAlchemy does for psycopg2; the
        # asyncpg dialect sent one execution per row, 5.4 s of PostgreSQL's CPU for 100k users
        # against 3.6 s. SQLAlchemy still sends an upsert (ON CONFLICT) row by row.
        engine.sync_engine.dialect.use_insertmanyvalues_wo_returning = True
    elif url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the SCIM server read while a sync writes; foreign keys are off by default in SQLite.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    # A list page reads users, their memberships and groups: in the default 2 MiB page cache
    # they evict each other, and the page cost twice as much. KiB; taken only as pages are read.
    cur.execute("PRAGMA cache_size=-16384")
    # A sync commits pages of 1000 users, each insert landing at a page of its own in the
    # B-trees keyed by directory values (entryUUID, DNs, names): a commit dirties thousands of
    # index pages. Checkpointing every 1000 pages (4 MiB, the default) copied nearly the same
    # pages back to the database after each commit; every 16384 pages (64 MiB) a checkpoint
    # copies each once for many commits: 0.89 of SQLite's CPU time writing 300k users' pages,
    # 0.97 of a whole first sync's CPU at 100k. The WAL file grows to 64 MiB; memory does not.
    # A sync's pages are checkpointed beside it instead (syncsvc.store.walcheckpoints): this
    # threshold is for the other writers (SCIM, member resolution) and should those fall behind.
    cur.execute("PRAGMA wal_autocheckpoint=16384")
    cur.close()


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def sqlite_file(engine: AsyncEngine) -> str | None:
    """The path of ``engine``'s SQLite database file; None for PostgreSQL, an in-memory
    database or a ``file:`` URI (whose options another connection could not repeat)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        return None
    return database


def _alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; an empty database gets the whole schema.

    One process at a time: a transaction-scoped advisory lock on PostgreSQL (released at
    commit, so a replica that waited finds the schema done and does nothing), an exclusive
    ``flock`` on ``<database>.migrate.lock`` for SQLite.

    Raises:
        StoreError: the database cannot be reached, or refuses (login, permissions, a
            read-only or missing folder for SQLite).
    """
    url = engine.url
    async with _sqlite_migrate_lock(url), _connected(engine) as conn:
        with _refusals(f"the {_where(url)} refused the schema upgrade"):
            async with conn.begin():
                if is_postgres(engine):
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                                       {"k": MIGRATION_LOCK_KEY})
                await conn.run_sync(
                    lambda sync_conn: command.upgrade(_alembic_config(sync_conn), revision))
                if (revision == "head" or revision == head_revision()) \
                        and await _no_run_elsewhere(conn):
                    # A process killed during a first load left the users' secondary indexes
                    # dropped (syncsvc.store.loadindexes): back before anything reads.
                    await build_missing(conn, reason="missing at upgrade")


async def _no_run_elsewhere(conn: AsyncConnection) -> bool:
    """Whether no sync runs now (PostgreSQL), kept so until the upgrade commits. A first load
    of another replica drops the indexes on purpose and builds them itself: building them here
    as well, two CREATE INDEX of one name met in PostgreSQL's catalogue, and the replica that
    lost failed to start. What a killed run left, the next run's start builds. On SQLite the
    one writer at a time and IF NOT EXISTS keep the two builds apart."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                  {"k": RUN_LOCK_KEY}))


def head_revision() -> str:
    """The newest revision the migrations know: what ``upgrade`` brings a database to."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None  # the package ships its migrations
    return head


def _where(url: URL) -> str:
    """The database named for a person: no password, no driver."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite database {url.database or ':memory:'}"
    plain = URL.create(url.get_backend_name(), username=url.username, host=url.host,
                       port=url.port, database=url.database)
    return f"database {plain.render_as_string()}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError):
        exc = exc.orig or exc
    if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno > 0:
        return os.strerror(exc.errno)  # asyncpg's own text names the address once more
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, TimeoutError):
        return "timed out"
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@contextmanager
def _refusals(what: str) -> Iterator[None]:
    # OSError and TimeoutError come raw from asyncpg's connect; DBAPIError wraps the rest.
    try:
        yield
    except (DBAPIError, OSError, TimeoutError) as exc:
        raise StoreError(f"{what}: {_reason(exc)}") from exc


@asynccontextmanager
async def _connected(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    conn = engine.connect()
    with _refusals(f"cannot connect to the {_where(engine.url)}"):
        await conn.start()
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def _sqlite_migrate_lock(url: URL) -> AsyncIterator[None]:
    """Hold ``<database>.migrate.lock`` (SQLite files only); says which folder is wrong."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        yield
        return
    path = Path(f"{url.database}.migrate.lock")
    folder = path.parent.absolute()
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    except FileNotFoundError as exc:
        raise StoreError(f"the {_where(url)} cannot be opened: the folder {folder} does not "
                         "exist") from exc
    except NotADirectoryError as exc:
        raise StoreError(f"the {_where(url)} cannot be opened: {folder} is not a folder") from exc
    except OSError as exc:
        hint = " (read-only)" if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else ""
        raise StoreError(f"the {_where(url)} cannot be written: the folder {folder}{hint}: "
                         f"{exc.strerror}") from exc
    # Waited for in a thread: the holder may be this very process (another engine). Closing
    # the descriptor releases the lock.
    acquire = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
    try:
        await asyncio.shield(acquire)
        yield
    finally:
        if acquire.done():
            os.close(fd)
        else:  # cancelled while waiting: the thread still blocks on fd
            acquire.add_done_callback(lambda _: os.close(fd))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The schema revision the database is at, None when it has no schema yet."""
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )
