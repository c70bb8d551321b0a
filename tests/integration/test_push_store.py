"""The push outbox and per-target state in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.errors import NotFound
from syncsvc.push import outbox, state
from syncsvc.push.outbox import OutboxItem
from syncsvc.push.state import RemoteLink
from syncsvc.settings import StoreSettings
from syncsvc.store import create_engine, current_revision, head_revision, upgrade
from syncsvc.store.engine import _alembic_config
from syncsvc.store.schema import Base
from tests.support import postgres

T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
PUSH_TABLES = {"push_outbox", "push_target", "push_resource"}


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


class TestMigration:
    async def test_0004_matches_the_schema(self, engine: AsyncEngine) -> None:
        """The migrated database is exactly what schema.py describes."""
        assert head_revision() == await current_revision(engine)  # 0004 and what followed
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
        assert [] == diff

    async def test_downgrade_drops_only_the_push_tables(self, engine: AsyncEngine) -> None:
        before = await tables(engine)
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(_alembic_config(c), "0003"))

        assert before - PUSH_TABLES == await tables(engine)
        await upgrade(engine)
        assert before == await tables(engine)


class TestOutbox:
    async def test_rows_come_back_in_order_after_a_cursor(self, engine: AsyncEngine) -> None:
        """pending() pages through the outbox in seq order, from any cursor."""
        async with engine.begin() as conn:
            await outbox.record(conn, "User", ["u1", "u2"], "upsert", T0)
            await outbox.record(conn, "Group", ["g1"], "upsert", T0)
            await outbox.record(conn, "User", ["u1"], "delete", T0)

        async with engine.connect() as conn:
            everything = await outbox.pending(conn, 0, 100)
            head = await outbox.head_seq(conn)
            page = await outbox.pending(conn, everything[0].seq, 2)
            after_head = await outbox.pending(conn, head, 100)

        assert [("User", "u1", "upsert"), ("User", "u2", "upsert"), ("Group", "g1", "upsert"),
                ("User", "u1", "delete")] == [(i.kind, i.resource_id, i.op) for i in everything]
        assert everything[-1].seq == head
        assert everything[1:3] == page
        assert [] == after_head

    async def test_an_empty_outbox_has_head_zero(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            assert 0 == await outbox.head_seq(conn)
            assert [] == await outbox.pending(conn, 0, 10)

    async def test_a_rolled_back_change_leaves_no_row(self, engine: AsyncEngine) -> None:
        with pytest.raises(RuntimeError):
            async with engine.begin() as conn:
                await outbox.record(conn, "User", ["u1"], "upsert", T0)
                raise RuntimeError("the change failed")

        async with engine.connect() as conn:
            assert [] == await outbox.pending(conn, 0, 10)

    async def test_prune_keeps_what_any_target_still_needs(self, engine: AsyncEngine) -> None:
        """Rows go only once every configured target has passed them; seqs never repeat."""
        async with engine.begin() as conn:
            await outbox.record(conn, "User", [f"u{i}" for i in range(5)], "upsert", T0)
            await state.ensure_targets(conn, ["a", "b"])
            seqs = [i.seq for i in await outbox.pending(conn, 0, 10)]
            await state.advance(conn, "a", seqs[3])
            await state.advance(conn, "b", seqs[1])

            assert 0 == await outbox.prune(conn, ["a", "b", "not-started"])
            assert 2 == await outbox.prune(conn, ["a", "b"])
            assert 3 == len(await outbox.pending(conn, 0, 10))
            await state.advance(conn, "a", seqs[4])
            await state.advance(conn, "b", seqs[4])
            assert 3 == await outbox.prune(conn, ["a", "b"])
            await outbox.record(conn, "User", ["u9"], "upsert", T0)
            (fresh,) = await outbox.pending(conn, 0, 10)

        assert fresh.seq > seqs[-1]  # a pruned top row's seq is not handed out again

    async def test_unknown_kinds_and_ops_are_refused(self, engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            with pytest.raises(ValueError):
                await outbox.record(conn, "Robot", ["x"], "upsert", T0)
            with pytest.raises(ValueError):
                await outbox.record(conn, "User", ["x"], "patch", T0)


class TestTargetState:
    async def test_ensure_targets_creates_once_and_keeps_progress(
        self, engine: AsyncEngine
    ) -> None:
        async with engine.begin() as conn:
            await state.ensure_targets(conn, ["okta", "slack"])
            await state.mark_initial_done(conn, "okta", 7)
            await state.ensure_targets(conn, ["okta", "slack", "peer"])
            targets = await state.list_targets(conn)

        assert ["okta", "peer", "slack"] == [t.name for t in targets]
        okta = targets[0]
        assert (7, True, 0, False) == (okta.last_seq, okta.initial_done,
                                       okta.consecutive_failures, okta.quarantined)
        assert (0, False) == (targets[1].last_seq, targets[1].initial_done)

    async def test_unknown_target_is_not_found(self, engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            with pytest.raises(NotFound):
                await state.get_target(conn, "nope")
            with pytest.raises(NotFound):
                await state.resume(conn, "nope")

    async def test_the_cursor_only_moves_forward_and_sets_the_queue_depth(
        self, engine: AsyncEngine
    ) -> None:
        async with engine.begin() as conn:
            await state.ensure_targets(conn, ["t"])
            await outbox.record(conn, "User", ["a", "b", "c"], "upsert", T0)
            seqs = [i.seq for i in await outbox.pending(conn, 0, 10)]
            depth_before = (await state.get_target(conn, "t")).queue_depth
            await state.advance(conn, "t", seqs[1])
            await state.advance(conn, "t", seqs[0])  # a late, older advance changes nothing
            after = await state.get_target(conn, "t")

        assert 3 == depth_before
        assert (seqs[1], 1) == (after.last_seq, after.queue_depth)

    async def test_failures_quarantine_at_the_threshold_until_resumed(
        self, engine: AsyncEngine
    ) -> None:
        """Consecutive failures count up; at the threshold the target is quarantined with the
        reason; resume lifts it; a success resets the count and also ends a quarantine."""
        async with engine.begin() as conn:
            await state.ensure_targets(conn, ["t"])
            first = await state.record_failure(conn, "t", "503 Service Unavailable", T0, 3)
            await state.record_failure(conn, "t", "timeout", T0, 3)
            third = await state.record_failure(conn, "t", "connection refused", T0, 3)
            fourth = await state.record_failure(conn, "t", "still down", T0, 3)
            await state.resume(conn, "t")
            resumed = await state.get_target(conn, "t")
            for _ in range(3):
                await state.record_failure(conn, "t", "down again", T0, 3)
            later = T0 + timedelta(minutes=5)
            await state.record_success(conn, "t", later)
            recovered = await state.get_target(conn, "t")

        assert (1, False, "503 Service Unavailable") == (
            first.consecutive_failures, first.quarantined, first.last_error)
        assert (3, True) == (third.consecutive_failures, third.quarantined)
        assert "3 consecutive failures; last: connection refused" == third.quarantine_reason
        assert third.quarantine_reason == fourth.quarantine_reason  # the first reason stays
        assert (0, False, None) == (resumed.consecutive_failures, resumed.quarantined,
                                    resumed.quarantine_reason)
        assert (0, False, None, later, later) == (
            recovered.consecutive_failures, recovered.quarantined, recovered.last_error,
            recovered.last_success, recovered.last_attempt)


class TestLinks:
    async def test_links_are_saved_replaced_listed_and_dropped(self, engine: AsyncEngine) -> None:
        link = RemoteLink(target="t", kind="User", resource_id="u1", remote_id="R-1",
                          pushed_hash="h1", status="ok", last_error=None, attempts=1)
        async with engine.begin() as conn:
            await state.ensure_targets(conn, ["t"])
            await state.save_link(conn, link, T0)
            await state.save_link(conn, RemoteLink(
                target="t", kind="User", resource_id="u2", remote_id=None, pushed_hash=None,
                status="failed", last_error="400 invalidValue: bad email", attempts=2), T0)
            await state.save_link(conn, RemoteLink(
                target="t", kind="Group", resource_id="g1", remote_id="G-1", pushed_hash="x",
                status="ok", last_error=None, attempts=1), T0)
            await state.save_link(conn, RemoteLink(
                target="t", kind="User", resource_id="u1", remote_id="R-1", pushed_hash="h2",
                status="ok", last_error=None, attempts=1), T0 + timedelta(seconds=1))
            one = await state.get_link(conn, "t", "User", "u1")
            users = await state.links(conn, "t", "User")
            failed = await state.failures(conn, "t")
            target = await state.get_target(conn, "t")
            await state.drop_link(conn, "t", "User", "u1")
            gone = await state.get_link(conn, "t", "User", "u1")

        assert one is not None
        assert ("R-1", "h2", T0 + timedelta(seconds=1)) == (one.remote_id, one.pushed_hash,
                                                            one.updated)
        assert ["u1", "u2"] == [link.resource_id for link in users]
        assert [("u2", "400 invalidValue: bad email")] == [
            (f.resource_id, f.last_error) for f in failed]
        assert 1 == target.failed_resources
        assert gone is None


async def test_a_later_commit_never_overtakes_an_earlier_seq_on_postgresql(
    pg_admin_url: str,
) -> None:
    """Two transactions capture concurrently; the one with the higher seq commits first. The
    reader does not see past the open one, so moving its cursor cannot skip the lower seq."""
    with postgres.fresh_database(pg_admin_url) as url:
        engine = create_engine(StoreSettings(url=url))
        try:
            await upgrade(engine)
            async with engine.connect() as slow:
                await slow.begin()
                await outbox.record(slow, "User", ["slow"], "upsert", T0)  # the lower seq
                async with engine.begin() as fast:
                    await outbox.record(fast, "User", ["fast"], "upsert", T0)
                async with engine.connect() as reader:
                    while_open = await outbox.pending(reader, 0, 10)
                    await reader.rollback()
                await slow.commit()
            async with engine.connect() as reader:
                after = await outbox.pending(reader, 0, 10)
        finally:
            await engine.dispose()

    assert [] == while_open
    assert ["slow", "fast"] == [i.resource_id for i in after]
    assert all(isinstance(i, OutboxItem) for i in after)
