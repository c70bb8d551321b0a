"""The drain loop of one target: the initial push, then the outbox a page at a time.

The outbox head is read *before* an initial push starts, so a change made meanwhile is pushed
again from the outbox (harmless). Outbox rows are coalesced per resource, so a page names each
resource once and the order of a resource's changes cannot be lost. The cursor moves only after
a page is done. More removals than ``deletion_guard`` in one drain are held: the cursor stays
before them and nothing is removed until a drain with ``allow_removals``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.push import outbox, state
from syncsvc.push._delivery import ENDPOINT, Delivery
from syncsvc.push._plan import levels
from syncsvc.push._report import Tally
from syncsvc.push.scope import Scope
from syncsvc.push.state import TargetState
from syncsvc.settings import TargetSettings
from syncsvc.store.schema import MEMBERS, USERS

__all__ = ["OutboxDrain"]

_PAGE = 500  # outbox rows (or initial-push ids) per step; the cursor moves after each


class OutboxDrain:
    """Runs the drains of one target through ``delivery``; stops between pages on
    ``stopping`` (the next drain goes on where this one stopped)."""

    def __init__(
        self, engine: AsyncEngine, target: TargetSettings, delivery: Delivery,
        stopping: asyncio.Event, log: Any,
    ) -> None:
        self._engine = engine
        self._target = target
        self._delivery = delivery
        self._stopping = stopping
        self._log = log

    async def run(self, current: TargetState, tally: Tally, allow_removals: bool) -> bool:
        """The drain proper; False when there was nothing to do (nothing was read or sent)."""
        name = self._target.name
        if current.initial_done:
            async with self._engine.connect() as conn:
                if not await outbox.pending(conn, current.last_seq, 1):
                    return False  # the common idle poll: no link or scope is loaded
        scope = await self._delivery.prepare()
        last = current.last_seq
        if not current.initial_done:
            async with self._engine.connect() as conn:
                head = await outbox.head_seq(conn)
            if not await self._initial(scope, tally):
                return True  # stopping: the next drain goes on where this one stopped
            async with self._engine.begin() as conn:
                await state.mark_initial_done(conn, name, head)
            last = head
        removals = 0
        while True:
            async with self._engine.connect() as conn:
                items = await outbox.pending(conn, last, _PAGE)
            if not items:
                break
            latest: dict[tuple[str, str], str] = {}
            for item in items:  # seq order: the last row of a resource wins
                latest.pop((item.kind, item.resource_id), None)
                latest[(item.kind, item.resource_id)] = item.op
            removals = await self._apply(list(latest), scope, tally, removals, allow_removals)
            await self._delivery.links.flush()
            last = items[-1].seq
            # While removals are held the cursor stays before them; later pages still get
            # their upserts (an admin's confirmation should not hold every other change back).
            if not tally.held:
                async with self._engine.begin() as conn:
                    await state.advance(conn, name, last)
            if self._stopping.is_set():
                return True
        await self._delivery.revisit(scope, tally)
        return True

    async def _initial(self, scope: Scope, tally: Tally) -> bool:
        """Every resource in scope, users first, managers before the people they manage (so
        each user goes out once, with its manager's remote id). False when stopped.

        Lookups before each create are skipped for a kind the target had none of when the
        push started (a 409 would still resolve to a match): an empty target costs one
        request per resource.
        """
        delivery = self._delivery
        for kind in ("User", "Group"):
            delivery.skip_match = not delivery.links \
                and await delivery.ops.remote_empty(ENDPOINT[kind])
            needs: dict[str, set[str]] = {}
            async with self._engine.connect() as conn:
                if kind == "User":
                    ids = []
                    for rid, manager in await conn.execute(
                            scope.users().add_columns(USERS.c.manager_id)):
                        ids.append(rid)
                        if manager:
                            needs[rid] = {manager}
                else:
                    ids = list(await conn.scalars(scope.groups()))
                    for gid, member in await conn.execute(
                            select(MEMBERS.c.group_id, MEMBERS.c.member_id)
                            .where(MEMBERS.c.member_type == "Group")):
                        needs.setdefault(gid, set()).add(member)
            for level in levels(ids, needs):
                for start in range(0, len(level), _PAGE):
                    await delivery.upsert(kind, level[start : start + _PAGE], scope, tally)
                    await delivery.links.flush()
                    if self._stopping.is_set():
                        delivery.skip_match = False
                        return False
        delivery.skip_match = False
        await delivery.revisit(scope, tally)
        self._log.info("push.initial_done", pushed=tally.pushed, skipped=tally.skipped,
                       failed=tally.failed)
        return True

    async def _apply(
        self, keys: Sequence[tuple[str, str]], scope: Scope, tally: Tally,
        removals: int, allow_removals: bool,
    ) -> int:
        """Push one coalesced page: upserts of what is in scope, removals of what left it."""
        delivery = self._delivery
        by_kind: dict[str, list[str]] = {"User": [], "Group": []}
        for kind, rid in keys:
            by_kind.setdefault(kind, []).append(rid)
        async with self._engine.connect() as conn:
            users_in = await scope.users_in(conn, by_kind["User"])
            groups_in = await scope.groups_in(conn, by_kind["Group"])
        gone: list[tuple[str, str]] = []
        for kind, ids, inside in (("User", by_kind["User"], users_in),
                                  ("Group", by_kind["Group"], groups_in)):
            for rid in ids:
                if rid in inside:
                    continue
                link = delivery.links.get((kind, rid))
                if link is not None and link.status != "removed" and link.remote_id:
                    gone.append((kind, rid))
                    continue
                tally.skipped += 1
                if link is not None and not link.remote_id:
                    # It never reached the target (refused) and is gone here: forget it.
                    delivery.links.forget((kind, rid))
        held = bool(gone) and not allow_removals and (
            tally.held or removals + len(gone) > self._target.deletion_guard)
        await delivery.upsert("User", [r for r in by_kind["User"] if r in users_in], scope,
                              tally)
        await delivery.upsert("Group", [r for r in by_kind["Group"] if r in groups_in], scope,
                              tally)
        if held:
            if not tally.held:
                self._log.warning("push.held_by_guard", removals=removals + len(gone),
                                  guard=self._target.deletion_guard)
            tally.held = True
            return removals + len(gone)
        # Groups first: a user deleted remotely should not linger in a group we still push.
        for kind in ("Group", "User"):
            await delivery.remove(kind, [rid for k, rid in gone if k == kind], tally)
        return removals + len(gone)
