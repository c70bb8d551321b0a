"""SQLite: a sync's WAL checkpoints run beside it, between its pages (syncsvc.store.walcheckpoints).

Against a real slapd and a SQLite file store. What a user would notice: the write-ahead log stays
as small as a page's transaction instead of holding the whole load until SQLite's own threshold
(64 MiB), the data is in the database file, no page is written while a checkpoint copies, and a
checkpoint that fails costs nothing but its log line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from syncsvc.domain import RunStatus
from syncsvc.settings import Settings
from syncsvc.store.schema import MEMBERS, USERS
from syncsvc.store.walcheckpoints import PageCheckpoints
from syncsvc.sync import SyncOptions, run_sync
from tests.integration.syncenv import pipeline, settings_for
from tests.support.slapd import Slapd

_CHECKPOINT = "PRAGMA wal_checkpoint(PASSIVE)"


BIG_USERS = 1000
_PAGES = BIG_USERS // 50  # of users; groups are read beside them


@pytest.fixture(scope="module")
def big_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with Slapd.generated(tmp_path_factory.mktemp("big"), users=BIG_USERS, groups=20) as server:
        yield server


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


def _paged(slapd: Slapd, database: Path) -> Settings:
    """Settings for ``slapd`` into the SQLite file ``database``, reading pages of 50."""
    settings = settings_for(slapd, f"sqlite+aiosqlite:///{database}")
    return dataclasses.replace(settings, ldap=dataclasses.replace(settings.ldap, page_size=50))


def _sizes(database: Path) -> dict[str, int]:
    return {"database": os.path.getsize(database), "log": os.path.getsize(f"{database}-wal")}


@contextmanager
def _checkpoint_results(engine: AsyncEngine) -> Iterator[list[tuple[int, int, int]]]:
    """What each checkpoint ``engine`` runs answers: (busy, frames in the log, frames copied)."""
    results: list[tuple[int, int, int]] = []

    def after(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement == _CHECKPOINT:
            results.append(tuple(cursor.fetchone()))

    event.listen(engine.sync_engine, "after_cursor_execute", after)
    try:
        yield results
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", after)


@contextmanager
def _writes(engine: AsyncEngine, seen: list[str]) -> Iterator[None]:
    """Append "write" to ``seen`` for each INSERT, UPDATE or DELETE ``engine`` sends."""
    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.split(None, 1)[0] in ("INSERT", "UPDATE", "DELETE"):
            seen.append("write")

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


async def _counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        return (await conn.scalar(select(func.count()).select_from(USERS)) or 0,
                await conn.scalar(select(func.count()).select_from(MEMBERS)) or 0)


class TestCheckpointsBesideTheLoad:
    async def test_the_log_stays_the_size_of_a_page(self, big_slapd: Slapd,
                                                    sqlite_file: Path) -> None:
        """A first load of 1000 users in pages of 50: every checkpoint copied the whole log,
        and the log ends smaller than the database file, its size that of the largest
        transaction (left to SQLite, it held the whole load, 5.8 MB beside a database file
        of one page)."""
        settings = _paged(big_slapd, sqlite_file)

        async with pipeline(settings) as service:
            with _checkpoint_results(service.engine) as results, capture_logs() as logs:
                report = await run_sync(service.sync, SyncOptions())
            counts = await _counts(service.engine)
            # While the store is open: closing its last connection checkpoints and deletes the log.
            sizes = _sizes(sqlite_file)

        assert RunStatus.SUCCESS == report.status
        assert (BIG_USERS, True) == (counts[0], counts[1] > 0)
        assert sizes["log"] < sizes["database"]
        assert len(results) >= _PAGES // 2  # a commit while another page is written starts none
        assert all(busy == 0 and log == copied for busy, log, copied in results)
        [totals] = [e for e in logs if e["event"] == "store.checkpoints"]
        assert len(results) == totals["checkpoints"]

    async def test_nothing_is_written_while_a_checkpoint_runs(
        self, big_slapd: Slapd, sqlite_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Pages are followed by a checkpoint, and the next page's writes (or what comes after
        the last page) wait for it to finish: a write beside it would keep the log from
        starting over. Each checkpoint is made to take 20 ms more (injected: a slow disk),
        longer than a page of 50 takes to map here."""
        settings = _paged(big_slapd, sqlite_file)
        seen: list[str] = []
        checkpoint = PageCheckpoints._checkpoint

        async def slow(self: PageCheckpoints, engine: AsyncEngine) -> None:
            seen.append("checkpoint")
            await asyncio.sleep(0.02)
            await checkpoint(self, engine)
            seen.append("checkpoint done")

        monkeypatch.setattr(PageCheckpoints, "_checkpoint", slow)
        async with pipeline(settings) as service:
            with _writes(service.engine, seen):
                report = await run_sync(service.sync, SyncOptions())

        assert RunStatus.SUCCESS == report.status
        assert seen.count("checkpoint") == seen.count("checkpoint done") >= _PAGES // 2
        during = [event for start in
                  (i for i, event in enumerate(seen) if event == "checkpoint")
                  for event in seen[start + 1 : seen.index("checkpoint done", start)]]
        assert "write" not in during

    async def test_a_failing_checkpoint_costs_only_its_log_line(self, big_slapd: Slapd,
                                                                sqlite_file: Path) -> None:
        """Every checkpoint fails (injected: the real disk cannot be made to fail on cue): the
        run succeeds with every row, each failure logged once; SQLite's own checkpoint remains."""
        settings = _paged(big_slapd, sqlite_file)

        def refuse(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if statement == _CHECKPOINT:
                raise OSError(28, "No space left on device")

        async with pipeline(settings) as service:
            event.listen(service.engine.sync_engine, "before_cursor_execute", refuse)
            with capture_logs() as logs:
                report = await run_sync(service.sync, SyncOptions())
            counts = await _counts(service.engine)
            sizes = _sizes(sqlite_file)

        failed = [e for e in logs if e["event"] == "store.checkpoint_failed"]
        assert RunStatus.SUCCESS == report.status
        assert (BIG_USERS, True) == (counts[0], counts[1] > 0)
        assert len(failed) >= _PAGES // 2
        assert all("No space left on device" in e["error"] for e in failed)
        assert sizes["log"] > sizes["database"] / 2  # all of it in the log: no checkpoint ran
