"""Stores at the head revision for tests, copied from one database migrated per session.

Running the migrations costs 0.1-0.2 s on SQLite and 0.3-0.4 s on PostgreSQL; copying a
migrated database costs a few milliseconds (a file copy) or one ``CREATE DATABASE ... TEMPLATE``.
Over the hundreds of tests that start from an empty store at head, that is minutes of the suite.
The migrations themselves stay tested: the template is made by them, and the migration tests
ask for an empty database (the ``empty_store`` marker).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine, upgrade
from tests.support import postgres

__all__ = ["copy_sqlite", "migrated_postgres", "migrated_sqlite"]


async def _migrate(url: str) -> None:
    engine = create_engine(StoreSettings(url=url))
    try:
        await upgrade(engine)
    finally:
        # Closing the last connection checkpoints SQLite's WAL into the file, and leaves no
        # session on a PostgreSQL template (CREATE DATABASE refuses to copy one in use).
        await engine.dispose()


def migrated_sqlite(directory: Path) -> Path:
    """A SQLite store file at the head revision, in *directory*."""
    path = directory / "template.db"
    postgres.run_async(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


def copy_sqlite(template: Path, to: Path) -> str:
    """Copy the template's file to *to*; return the store URL."""
    shutil.copyfile(template, to)
    return f"sqlite+aiosqlite:///{to}"


@contextmanager
def migrated_postgres(admin_url: str) -> Iterator[str]:
    """The name of a PostgreSQL database at the head revision, dropped afterwards."""
    name = postgres.run_async(postgres.create_database(admin_url))
    try:
        postgres.run_async(_migrate(postgres.sqlalchemy_url(admin_url, name)))
        yield name
    finally:
        postgres.run_async(postgres.drop_database(admin_url, name))
