"""The push worker of one target: drains the outbox into the target, at least once, idempotently.

A drain:

1. **Initial push** while the target's ``initial_done`` is false: every user in scope, then
   every group (members need the users' remote ids). The outbox head is read *before* it starts,
   so a change made meanwhile is pushed again from the outbox: pushing twice is harmless.
2. **Outbox** after ``last_seq``, a page at a time. Rows are coalesced per resource (the page
   names each resource once), and each resource is pushed in its **current** state read from
   the store, so the order of a resource's changes cannot be lost and a replayed row changes
   nothing. A body whose hash equals the link's ``pushed_hash`` is skipped (no request). The
   cursor moves only after the page is done.
3. **Revisit** resources that referenced something not yet on the target (a member or a
   manager): they go again once it exists.

On first contact (no link) a resource is matched before it is created: by ``match_by``
(``externalId``, then ``userName``; ``displayName`` for groups), and a 409 on create is resolved
by matching again: a match, never a duplicate. A resource removed here or out of scope gets
``on_remove`` (deactivate: ``active false``; or delete) if we had pushed it; more removals than
``deletion_guard`` in one drain are held (the cursor stays before them, nothing is removed,
other changes still go out) until a drain with ``allow_removals``. Groups are always deleted.

Updates are PUT (the whole body) by default. With ``update_method = "patch"`` (and a target
that announces PATCH) a resource gets one ``replace`` of the attributes we send and, for a
group, member ``add``/``remove`` operations of ``member_batch`` members each; an attribute
that disappeared on our side is then left on the target (a PUT or a reconcile clears it).

A permanent error (4xx) is recorded on that resource's link and the drain goes on; a retryable
one (``TargetUnavailable``) stops the drain, keeps the cursor and counts a failure;
``quarantine_after`` of them in a row quarantine the target.

The parts, one job each: :mod:`~syncsvc.push._drain` (the drain loop: initial push, outbox
pages, deletion guard), :mod:`~syncsvc.push._delivery` (one resource: update, match or create,
remove, revisit), :mod:`~syncsvc.push._bodies` (bodies read from the store),
:mod:`~syncsvc.push._bulk` (creates through /Bulk), :mod:`~syncsvc.push._links` (the link
cache), :mod:`~syncsvc.push._report` (the report and the target's health) and
:mod:`~syncsvc.push._replica_lock` (one drain per target across replicas). This module puts
them together behind :class:`PushWorker`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.errors import TargetQuarantined, TargetUnavailable
from syncsvc.push import state
from syncsvc.push._delivery import ENDPOINT, Delivery
from syncsvc.push._drain import OutboxDrain
from syncsvc.push._links import LinkCache
from syncsvc.push._replica_lock import replica_lock
from syncsvc.push._report import DrainReport, Tally, finish_drain, tally_report
from syncsvc.push.client import ScimClient
from syncsvc.push.payload import Payload
from syncsvc.push.scope import Scope
from syncsvc.push.state import RemoteLink
from syncsvc.settings import TargetSettings

__all__ = ["ENDPOINT", "DrainReport", "PushWorker"]

_log = structlog.get_logger(__name__)


class PushWorker:
    """Pushes our store to one target. One drain at a time per worker."""

    def __init__(
        self,
        engine: AsyncEngine,
        target: TargetSettings,
        *,
        log: Any = None,
        client: ScimClient | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stopping: asyncio.Event | None = None,
    ) -> None:
        self._engine = engine
        self._target = target
        self._client = client or ScimClient(target)
        self._clock = clock
        self._log = (log or _log).bind(target=target.name)
        self._lock = asyncio.Lock()
        self._links = LinkCache(engine, target.name, clock)
        self._delivery = Delivery(engine, target, self._client, self._links, self._log)
        self._outbox = OutboxDrain(engine, target, self._delivery,
                                   stopping or asyncio.Event(), self._log)

    @property
    def target(self) -> TargetSettings:
        return self._target

    @property
    def client(self) -> ScimClient:
        return self._client

    @property
    def lock(self) -> asyncio.Lock:
        """Held during a drain (see :meth:`exclusive`)."""
        return self._lock

    async def aclose(self) -> None:
        await self._client.aclose()

    async def drain(self, *, allow_removals: bool = False) -> DrainReport:
        """Push what is pending (see the module docstring); never raises on a target failure.

        On PostgreSQL one replica drains a target at a time (an advisory lock per target);
        another replica's drain in progress makes this one return at once with ``busy``.

        Raises:
            TargetQuarantined: the target is quarantined; nothing was sent.
        """
        async with self.exclusive() as mine:
            if not mine:
                return DrainReport(target=self._target.name, pushed=0, removed=0, failed=0,
                                   skipped=0, held=False, seconds=0.0, busy=True)
            return await self._drain_locked(allow_removals)

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[bool]:
        """This worker's lock and, on PostgreSQL, the target's advisory lock across replicas;
        yields False (holding nothing) when another replica has the target."""
        async with self._lock, self._engine.connect() as conn, \
                replica_lock(conn, self._target.name) as mine:
            yield mine

    async def _drain_locked(self, allow_removals: bool) -> DrainReport:
        started = time.monotonic()
        name = self._target.name
        async with self._engine.begin() as conn:
            await state.ensure_targets(conn, [name])
            current = await state.get_target(conn, name)
        if current.quarantined:
            raise TargetQuarantined(
                f"{name} is quarantined ({current.quarantine_reason or current.last_error}); "
                "resume it to push again")
        tally = Tally()
        error: TargetUnavailable | None = None
        worked = True
        try:
            worked = await self._outbox.run(current, tally, allow_removals)
        except TargetUnavailable as exc:
            error = exc
        finally:
            await self._links.flush()
        return await finish_drain(self._engine, self._target, current, tally, error,
                                  worked=worked, now=self._clock(), started=started,
                                  log=self._log)

    async def prepare(self) -> Scope:
        """Read the target's features, our links to it and the scope (start of a drain)."""
        return await self._delivery.prepare()

    @property
    def links(self) -> Mapping[tuple[str, str], RemoteLink]:
        """(kind, our id) -> link, as of :meth:`prepare` and what was pushed since."""
        return self._links.by_key

    async def payloads(self, kind: str, ids: Sequence[str], scope: Scope) -> dict[str, Payload]:
        """The bodies ``ids`` would get on the target now (see :mod:`syncsvc.push.payload`)."""
        return await self._delivery.payloads(kind, ids, scope)

    async def repair(
        self, scope: Scope, *, push: Sequence[tuple[str, str]],
        link: Mapping[tuple[str, str], str], remove: Sequence[tuple[str, str]],
    ) -> DrainReport:
        """Apply a reconcile: adopt ``link`` (our key -> remote id), push ``push`` again
        whatever was pushed before, and remove ``remove``. The caller holds :attr:`lock`."""
        started = time.monotonic()
        tally = Tally()
        name = self._target.name
        for key, remote_id in link.items():
            self._links.keep(RemoteLink(target=name, kind=key[0], resource_id=key[1],
                                        remote_id=remote_id, pushed_hash=None, status="ok",
                                        last_error=None, attempts=0))
        for key in push:
            self._links.resend(key)
        error: TargetUnavailable | None = None
        try:
            for kind in ("User", "Group"):
                await self._delivery.upsert(kind, [rid for k, rid in push if k == kind], scope,
                                            tally)
            for kind in ("Group", "User"):
                await self._delivery.remove(kind, [rid for k, rid in remove if k == kind],
                                            tally)
            await self._delivery.revisit(scope, tally)
        except TargetUnavailable as exc:
            error = exc
        finally:
            await self._links.flush()
        return tally_report(name, tally, started, error, held=False)
