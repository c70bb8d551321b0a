"""One run at a time, in a process and across processes sharing the store."""

from __future__ import annotations

import asyncio

import pytest

from syncsvc.domain import EntryKind, RunStatus
from syncsvc.errors import SyncBusy
from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine, upgrade
from syncsvc.sync import RunLock, SyncOptions, run_sync
from tests.integration.syncenv import pipeline, settings_for


class TestRunLock:
    async def test_a_second_run_in_the_same_process_is_refused(self, slapd, store_url) -> None:
        """While one run reads, another gets SyncBusy; the first still succeeds."""
        started = asyncio.Event()
        release = asyncio.Event()

        class Pause:
            def phase(self, name: str) -> None:
                pass

            def advance(self, kind: EntryKind, entries: int) -> None:
                started.set()

        async with pipeline(settings_for(slapd, store_url)) as service:
            first = asyncio.create_task(run_sync(service.sync, SyncOptions(progress=Pause())))
            await started.wait()
            with pytest.raises(SyncBusy):
                await run_sync(service.sync, SyncOptions())
            release.set()
            assert RunStatus.SUCCESS == (await first).status

    async def test_another_replica_is_refused(self, store_url) -> None:
        """Two engines on one store (two replicas): while one holds the lock the other is refused."""
        one = create_engine(StoreSettings(url=store_url))
        two = create_engine(StoreSettings(url=store_url))
        try:
            await upgrade(one)
            async with RunLock(one).hold():
                with pytest.raises(SyncBusy):
                    async with RunLock(two).hold():
                        pass
            async with RunLock(two).hold():  # released: the other replica may run now
                pass
        finally:
            await one.dispose()
            await two.dispose()


class TestInterruptedRuns:
    async def test_a_run_cut_off_is_closed_by_the_next_one(self, slapd, store_url) -> None:
        """A run left 'running' by a killed process is recorded as failed when the next run starts."""
        from datetime import UTC, datetime

        from syncsvc.store import runs as run_records

        async with pipeline(settings_for(slapd, store_url)) as service:
            async with service.engine.begin() as conn:
                await run_records.start_run(conn, run_id="killed-run", mode="full", method="paged",
                                            trigger="cli", now=datetime.now(UTC))
            report = await run_sync(service.sync, SyncOptions())
            async with service.engine.connect() as conn:
                killed = await run_records.get_run(conn, "killed-run")
        assert RunStatus.SUCCESS == report.status
        assert killed is not None and "failed" == killed.status
        assert "interrupted" in (killed.detail or "")
