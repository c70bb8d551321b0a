"""PostgreSQL for integration tests: find a server, hand out one fresh database per test.

:func:`pg_admin_url` picks, in order: ``$SYNCSVC_TEST_PG_URL``; the server on 127.0.0.1:5432
when user ``postgres`` can log in there without a password (Debian's cluster with trust auth,
as on CI); else a private cluster made with ``initdb``/``pg_ctl`` from
``/usr/lib/postgresql/*/bin`` in a temporary directory on a free port, stopped at exit. As root,
the private cluster runs as the ``postgres`` system user (``initdb`` refuses to run as root).

URLs are libpq-style (``postgresql://user@host:port/db``); :func:`sqlalchemy_url` turns one
into the ``postgresql+asyncpg://`` form syncsvc's store takes.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

__all__ = [
    "DEFAULT_ADMIN_URL",
    "PG_URL_ENV",
    "PostgresUnavailable",
    "create_database",
    "drop_database",
    "fresh_database",
    "pg_admin_url",
    "private_cluster",
    "run_async",
    "sqlalchemy_url",
]

PG_URL_ENV = "SYNCSVC_TEST_PG_URL"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_T = TypeVar("_T")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL could be reached or started; the message says what was tried."""


def run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    # A private event loop in a worker thread: safe from sync fixtures whether or not the
    # caller's thread has a (running) loop, and it leaves that thread's loop untouched.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _libpq_url(url: str) -> str:
    """*url* without a SQLAlchemy ``+driver`` suffix, as asyncpg and psql take it."""
    parsed = make_url(url)
    return parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=False)


def sqlalchemy_url(admin_url: str, database: str) -> str:
    """The ``postgresql+asyncpg://`` URL of *database* on the server of *admin_url*."""
    parsed = make_url(admin_url).set(drivername="postgresql+asyncpg", database=database)
    return parsed.render_as_string(hide_password=False)


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(_libpq_url(url), timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    try:
        return bool(await conn.fetchval("SELECT 1") == 1)
    finally:
        await conn.close()


async def create_database(admin_url: str, template: str | None = None) -> str:
    """Create a uniquely named database on the server of *admin_url*; return its name.

    Empty, or a copy of database *template* (no connection may be open to it): copying a
    migrated database costs a fraction of running the migrations again.
    """
    name = f"syncsvc_test_{uuid.uuid4().hex[:16]}"
    source = f'"{template}"' if template else "template0 ENCODING 'UTF8'"
    conn = await asyncpg.connect(_libpq_url(admin_url), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE {source}')
    finally:
        await conn.close()
    return name


async def drop_database(admin_url: str, name: str) -> None:
    """Drop database *name*, closing any connection a failed test left open (PostgreSQL >= 13)."""
    conn = await asyncpg.connect(_libpq_url(admin_url), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextmanager
def fresh_database(admin_url: str, template: str | None = None) -> Iterator[str]:
    """Create a fresh database (a copy of *template*, else empty), yield its SQLAlchemy async
    URL, and drop it afterwards."""
    name = run_async(create_database(admin_url, template))
    try:
        yield sqlalchemy_url(admin_url, name)
    finally:
        run_async(drop_database(admin_url, name))


@functools.cache
def pg_admin_url() -> str:
    """A libpq URL of a PostgreSQL superuser connection to the ``postgres`` database.

    Cached per process. Raises :class:`PostgresUnavailable` when no server answers and no
    private cluster can be started.
    """
    override = os.environ.get(PG_URL_ENV)
    if override:
        url = _libpq_url(override)
        if not run_async(_answers(url)):
            raise PostgresUnavailable(f"${PG_URL_ENV} ({make_url(url)!r}) does not answer")
        return url
    if run_async(_answers(DEFAULT_ADMIN_URL)):
        return DEFAULT_ADMIN_URL
    return _PrivateCluster.start().url


@contextmanager
def private_cluster() -> Iterator[_PrivateCluster]:
    """A cluster of the caller's own, for tests that stop or restart the server (faults): never
    the shared one on 5432. Removed on exit."""
    cluster = _PrivateCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


class _PrivateCluster:
    """A throw-away cluster in a temporary directory, trust auth, loopback only."""

    def __init__(self, directory: Path, port: int, bindir: Path, run_as: list[str]) -> None:
        self.directory = directory
        self.port = port
        self.bindir = bindir
        self.run_as = run_as
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    @classmethod
    def start(cls) -> _PrivateCluster:
        """initdb and start a cluster; register its removal at interpreter exit."""
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
        if not candidates:
            raise PostgresUnavailable(
                f"no PostgreSQL on 127.0.0.1:5432 (user postgres, trust), no ${PG_URL_ENV}, and "
                "no /usr/lib/postgresql/*/bin/initdb: run scripts/test, or install postgresql"
            )
        directory = Path(tempfile.mkdtemp(prefix="syncsvc-test-pg-"))
        run_as: list[str] = []
        if os.geteuid() == 0:
            run_as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(directory, user="postgres", group="postgres")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        cluster = cls(directory, port, Path(candidates[0]).parent, run_as)
        atexit.register(cluster.stop)
        cluster._pg("initdb", "-D", "data", "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--no-sync")  # fmt: skip
        cluster.resume()
        return cluster

    def halt(self) -> None:
        """Stop the server (fast mode: sessions are terminated, committed data stays)."""
        self._pg("pg_ctl", "-D", "data", "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the server (again, after :meth:`halt`) on its port and data."""
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg("pg_ctl", "-D", "data", "-l", "postgres.log", "-o", options, "-w", "start")

    def stop(self) -> None:
        """Stop the cluster (immediate mode: its data is disposable) and delete its directory."""
        if (self.directory / "data" / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", "data", "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _pg(self, tool: str, *args: str, check: bool = True) -> None:
        proc = subprocess.run(
            [*self.run_as, str(self.bindir / tool), *args],
            cwd=self.directory,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and proc.returncode != 0:
            log = self.directory / "postgres.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise PostgresUnavailable(f"{tool} failed:\n{proc.stdout}{proc.stderr}{tail}")
