"""The push runner `serve` starts, driven in-process against scim2-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.errors import NotFound
from syncsvc.push.runner import PushRunner
from syncsvc.push.worker import PushWorker
from syncsvc.service import open_store
from syncsvc.settings import DEMO_LDIF
from syncsvc.store.schema import OUTBOX
from tests.integration.pushenv import demo_settings, target_for
from tests.integration.syncenv import sync_once
from tests.support import postgres
from tests.support.scim2server import Scim2Server, scim2_server

__all__ = ["scim2_server"]


async def outbox_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(OUTBOX)) or 0)


async def until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


class TestPushRunner:
    async def test_drains_at_start_and_when_woken_then_stops_cleanly(
        self, scim2_server: Scim2Server, tmp_path: Path
    ) -> None:
        """A first drain at start; a change is pushed after wake() (the poll is an hour away);
        push_now and a dry-run reconcile answer; the outbox is pruned; the stop event ends run()."""
        ldif = tmp_path / "directory.ldif"
        ldif.write_text(DEMO_LDIF.read_text())
        settings = demo_settings(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
                                 target_for(scim2_server), ldif=str(ldif))
        await sync_once(settings)
        async with open_store(settings) as engine:
            runner = PushRunner(engine, settings, poll_interval=3600, prune_interval=0.2)
            stop = asyncio.Event()
            task = asyncio.create_task(runner.run(stop))
            try:
                await until(lambda: len(scim2_server.all("Users")) == 200, "the initial push")
                ldif.write_text(ldif.read_text().replace("title: ", "title: Woken ", 1))
                await sync_once(settings)
                runner.wake()
                await until(lambda: any(str(u.get("title", "")).startswith("Woken ")
                                        for u in scim2_server.all("Users")), "the woken drain")
                report = await runner.push_now("ref")
                assert (0, None) == (report.pushed, report.error)
                diff = await runner.reconcile("ref", dry_run=True)
                assert ([], [], [], []) == (diff.create, diff.update, diff.remove, diff.link)
                with pytest.raises(NotFound):
                    runner.worker("nope")
                # Rows every target has passed are pruned in the background.
                deadline = time.monotonic() + 30
                while await outbox_rows(engine):
                    assert time.monotonic() < deadline, "the outbox was never pruned"
                    await asyncio.sleep(0.1)
            finally:
                stop.set()
                await asyncio.wait_for(task, timeout=30)
        assert task.done() and task.exception() is None

    async def test_scheduled_reconcile_repairs_a_deletion_on_the_target(
        self, scim2_server: Scim2Server, tmp_path: Path
    ) -> None:
        """With reconcile_cron every second (croniter's seconds field), a user deleted directly
        on the target comes back without any change on our side."""
        settings = demo_settings(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
                                 target_for(scim2_server, reconcile_cron="* * * * * *"))
        await sync_once(settings)
        async with open_store(settings) as engine:
            runner = PushRunner(engine, settings, poll_interval=0.2)
            stop = asyncio.Event()
            task = asyncio.create_task(runner.run(stop))
            try:
                await until(lambda: len(scim2_server.all("Users")) == 200, "the initial push")
                victim = sorted(scim2_server.users().items())[0]
                scim2_server.request("DELETE", f"/Users/{victim[1]['id']}")
                await until(lambda: victim[0] in scim2_server.users(), "the reconcile")
            finally:
                stop.set()
                await asyncio.wait_for(task, timeout=30)
        assert 200 == len(scim2_server.all("Users"))


class TestReplicas:
    async def test_one_replica_drains_a_target_at_a_time(
        self, scim2_server: Scim2Server, pg_admin_url: str
    ) -> None:
        """Two engines on one PostgreSQL (two replicas): while one holds the target, the
        other's drain returns at once as busy and sends nothing; then it drains."""
        with postgres.fresh_database(pg_admin_url) as url:
            settings = demo_settings(url, target_for(scim2_server))
            await sync_once(settings)
            async with open_store(settings) as one, open_store(settings) as two:
                first = PushWorker(one, settings.targets[0])
                second = PushWorker(two, settings.targets[0])
                try:
                    async with first.exclusive() as mine:
                        assert mine
                        busy = await second.drain()
                        assert (True, 0) == (busy.busy, len(scim2_server.all("Users")))
                    done = await second.drain()
                finally:
                    await first.aclose()
                    await second.aclose()
        assert (False, 220) == (done.busy, done.pushed)
