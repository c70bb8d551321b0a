"""Helpers for fault and load tests: what the store holds, paused processes, `syncsvc` children.

- :func:`snapshot`, :func:`lost_rows`: every row of users, e-mails, groups and members, to prove
  nothing was lost.
- :func:`writes_held`: a sync's page writes wait, so a fault lands mid-write for certain.
- :func:`stopped`: SIGSTOP a process (a server that hangs without closing its sockets), always
  resumed with SIGCONT on exit.
- :class:`ReadOnlySwitch`: makes an SQLite store refuse writes on demand (see its docstring for
  why this is injected rather than done with file modes).
- :func:`syncsvc_env`, :func:`free_port`, :func:`rss_kib`: running `syncsvc` as a subprocess.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg
from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.store.schema import GroupMemberRow, GroupRow, UserEmailRow, UserRow

__all__ = [
    "ReadOnlySwitch", "Snapshot", "free_port", "lost_rows", "rss_kib", "snapshot", "stopped",
    "syncsvc_env", "writes_held",
]

_TABLES = (UserRow, UserEmailRow, GroupRow, GroupMemberRow)


Snapshot = dict[str, list[dict[str, Any]]]


async def snapshot(engine: AsyncEngine) -> Snapshot:
    """Every row of the resource tables (profile data included) by table name, in key order."""
    out: Snapshot = {}
    async with engine.connect() as conn:
        for row_class in _TABLES:
            table = row_class.__table__
            rows = await conn.execute(select(table).order_by(*table.primary_key.columns))
            out[table.name] = [dict(row._mapping) for row in rows]
    return out


def lost_rows(before: Snapshot, after: Snapshot) -> dict[str, int]:
    """How many rows of *before* (by primary key) are missing from *after*, per table."""
    lost: dict[str, int] = {}
    for row_class in _TABLES:
        table = row_class.__table__
        keys = [c.name for c in table.primary_key.columns]
        present = {tuple(r[k] for k in keys) for r in after.get(table.name, [])}
        lost[table.name] = sum(1 for r in before.get(table.name, [])
                               if tuple(r[k] for k in keys) not in present)
    return lost


@asynccontextmanager
async def writes_held(store_url: str) -> AsyncIterator[None]:
    """Inside the block, a sync's next page write waits: a fault test can then act (kill a
    process, stop the database) while a run is certainly mid-write, on any machine speed.

    PostgreSQL: an EXCLUSIVE lock on the e-mail table, which every page of new users writes;
    reads and profile PATCHes go on. SQLite: an open write transaction; every writer waits
    (up to its busy_timeout). Released (rolled back) on exit, if the server is still there.
    """
    url = make_url(store_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(url.database or "", timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
        finally:
            conn.close()
        return
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    pg = await asyncpg.connect(libpq)
    try:
        await pg.execute("BEGIN")
        await pg.execute(f"LOCK TABLE {UserEmailRow.__tablename__} IN EXCLUSIVE MODE")
        yield
    finally:
        pg.terminate()  # the session may already be gone (the fault); terminate never waits


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    """The process *pid* frozen (SIGSTOP) inside the block: sockets open, nothing answers."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


class ReadOnlySwitch:
    """While :attr:`on`, every connection the engine hands out refuses writes (SQLite only).

    The real fault is a store whose file or disk became read-only. It cannot be produced
    faithfully here: the tests run as root, whom file modes do not stop, and for any user a
    chmod does not affect a database file the server already holds open (SQLite keeps it
    open for the life of the pool); a read-only remount needs privileges CI does not have. So
    the fault is injected one layer down, with ``PRAGMA query_only``: SQLite then fails every
    write with SQLITE_READONLY ("attempt to write a readonly database"), the same result code
    a read-only file gives, while reads go on. Set on checkout, so it applies at once to
    pooled connections too.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        if engine.dialect.name != "sqlite":
            raise ValueError("ReadOnlySwitch works on SQLite stores only")
        self.on = False
        event.listen(engine.sync_engine, "checkout", self._checkout)

    def _checkout(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA query_only = {1 if self.on else 0}")
        cursor.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def syncsvc_env(**settings: str) -> dict[str, str]:
    """This process's environment without any SYNCSVC_ variable, plus *settings* (JSON logs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCSVC_")}
    env["SYNCSVC_LOG__FORMAT"] = "json"
    env.update(settings)
    return env


def rss_kib(pid: int) -> int:
    """The resident set size of process *pid*, in KiB (VmRSS from /proc)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")
