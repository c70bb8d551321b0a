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
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from syncsvc.errors import TargetQuarantined, TargetRejected, TargetUnavailable
from syncsvc.push import outbox, state
from syncsvc.push._plan import RemoteIds, RemoteKeys, levels, together
from syncsvc.push._remote import RemoteOps
from syncsvc.push.client import ScimClient
from syncsvc.push.payload import Payload, group_payload, user_payload
from syncsvc.push.scope import Scope, load_scope
from syncsvc.push.state import RemoteLink
from syncsvc.settings import TargetSettings
from syncsvc.store.schema import GROUPS, MEMBERS, USERS

__all__ = ["DrainReport", "PushWorker"]

_PAGE = 500  # outbox rows (or initial-push ids) per step; the cursor moves after each
_CHUNK = 100  # resources in flight together (the client's concurrency bounds the requests)
_REVISIT_ROUNDS = 3
# An idle drain (empty outbox) records its success at most this often (seconds): a poll every
# few seconds should not write to the store each time.
_IDLE_RECORD = 60.0
ENDPOINT = {"User": "Users", "Group": "Groups"}

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DrainReport:
    """What one drain did. ``error`` is set when a retryable failure stopped it."""

    target: str
    pushed: int
    removed: int
    failed: int
    skipped: int
    held: bool
    seconds: float
    error: str | None = None
    retry_after: float | None = None
    busy: bool = False  # another replica was draining this target; nothing was done


@dataclass(slots=True)
class _Tally:
    pushed: int = 0
    removed: int = 0
    failed: int = 0
    skipped: int = 0
    held: bool = False
    revisit: set[tuple[str, str]] = field(default_factory=set)
    refused: set[tuple[str, str]] = field(default_factory=set)  # not retried in the same drain


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
        self._stopping = stopping or asyncio.Event()
        self._target = target
        self._client = client or ScimClient(target)
        self._clock = clock
        self._log = (log or _log).bind(target=target.name)
        self._lock = asyncio.Lock()
        self._links: dict[tuple[str, str], RemoteLink] = {}
        self._dirty: list[RemoteLink] = []
        self._dropped: list[tuple[str, str]] = []
        self._ops = RemoteOps(self._client, target, self._log)
        self._skip_match = False

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

    # -- the drain ----------------------------------------------------------------------------

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
        async with self._lock, self._engine.connect() as conn:
            if not await self._replica_lock(conn):
                yield False
                return
            try:
                yield True
            finally:
                await self._replica_unlock(conn)

    def _lock_key(self) -> int:
        digest = hashlib.sha256(f"syncsvc-push:{self._target.name}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    async def _replica_lock(self, conn: AsyncConnection) -> bool:
        if conn.dialect.name != "postgresql":
            return True  # SQLite serves one process
        got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"),
                                     {"k": self._lock_key()}))
        await conn.commit()
        return got

    async def _replica_unlock(self, conn: AsyncConnection) -> None:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._lock_key()})
            await conn.commit()

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
        tally = _Tally()
        error: TargetUnavailable | None = None
        worked = True
        try:
            worked = await self._drain(current, tally, allow_removals)
        except TargetUnavailable as exc:
            error = exc
        finally:
            await self._flush()
        now = self._clock()
        if not worked and not current.consecutive_failures and current.last_success \
                and (now - current.last_success).total_seconds() < _IDLE_RECORD:
            return DrainReport(target=name, pushed=0, removed=0, failed=0, skipped=0,
                               held=False, seconds=round(time.monotonic() - started, 3))
        async with self._engine.begin() as conn:
            if error is None:
                await state.record_success(conn, name, now)
            else:
                after = await state.record_failure(
                    conn, name, error.detail, now, self._target.quarantine_after)
                self._log.warning("push.drain_failed", error=error.detail,
                                  failures=after.consecutive_failures,
                                  quarantined=after.quarantined)
        report = DrainReport(
            target=name, pushed=tally.pushed, removed=tally.removed, failed=tally.failed,
            skipped=tally.skipped, held=tally.held,
            seconds=round(time.monotonic() - started, 3),
            error=error.detail if error else None,
            retry_after=error.retry_after if error else None)
        if report.pushed or report.removed or report.failed or report.held or error:
            self._log.info("push.drained", pushed=report.pushed, removed=report.removed,
                           failed=report.failed, skipped=report.skipped, held=report.held,
                           seconds=report.seconds)
        return report

    async def prepare(self) -> Scope:
        """Read the target's features, our links to it and the scope (start of a drain)."""
        self._skip_match = False
        self._ops.features = await self._client.features()
        async with self._engine.connect() as conn:
            scope = await load_scope(conn, self._target)
            self._links = {}
            for kind in ("User", "Group"):
                for link in await state.links(conn, self._target.name, kind):
                    self._links[(kind, link.resource_id)] = link
        return scope

    @property
    def links(self) -> Mapping[tuple[str, str], RemoteLink]:
        """(kind, our id) -> link, as of :meth:`prepare` and what was pushed since."""
        return self._links

    async def payloads(self, kind: str, ids: Sequence[str], scope: Scope) -> dict[str, Payload]:
        """The bodies ``ids`` would get on the target now (see :mod:`syncsvc.push.payload`)."""
        return await self._payloads(kind, ids, scope)

    async def repair(
        self, scope: Scope, *, push: Sequence[tuple[str, str]],
        link: Mapping[tuple[str, str], str], remove: Sequence[tuple[str, str]],
    ) -> DrainReport:
        """Apply a reconcile: adopt ``link`` (our key -> remote id), push ``push`` again
        whatever was pushed before, and remove ``remove``. The caller holds :attr:`lock`."""
        started = time.monotonic()
        tally = _Tally()
        name = self._target.name
        for key, remote_id in link.items():
            self._keep(RemoteLink(target=name, kind=key[0], resource_id=key[1],
                                  remote_id=remote_id, pushed_hash=None, status="ok",
                                  last_error=None, attempts=0))
        for key in push:
            old = self._links.get(key)
            if old is not None:  # forget the hash: the remote copy drifted, send it again
                self._links[key] = dataclasses.replace(old, pushed_hash=None, status="ok")
        error: TargetUnavailable | None = None
        try:
            for kind in ("User", "Group"):
                await self._upsert(kind, [rid for k, rid in push if k == kind], scope, tally)
            for kind in ("Group", "User"):
                await self._each([rid for k, rid in remove if k == kind],
                                 lambda rid, kind=kind: self._remove(kind, rid, tally))
            await self._revisit(scope, tally)
        except TargetUnavailable as exc:
            error = exc
        finally:
            await self._flush()
        return DrainReport(
            target=name, pushed=tally.pushed, removed=tally.removed, failed=tally.failed,
            skipped=tally.skipped, held=False, seconds=round(time.monotonic() - started, 3),
            error=error.detail if error else None,
            retry_after=error.retry_after if error else None)

    async def _drain(self, current: Any, tally: _Tally, allow_removals: bool) -> bool:
        """The drain proper; False when there was nothing to do (nothing was read or sent)."""
        name = self._target.name
        if current.initial_done:
            async with self._engine.connect() as conn:
                if not await outbox.pending(conn, current.last_seq, 1):
                    return False  # the common idle poll: no link or scope is loaded
        scope = await self.prepare()
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
            await self._flush()
            last = items[-1].seq
            # While removals are held the cursor stays before them; later pages still get
            # their upserts (an admin's confirmation should not hold every other change back).
            if not tally.held:
                async with self._engine.begin() as conn:
                    await state.advance(conn, name, last)
            if self._stopping.is_set():
                return True
        await self._revisit(scope, tally)
        return True

    async def _initial(self, scope: Scope, tally: _Tally) -> bool:
        """Every resource in scope, users first, managers before the people they manage (so
        each user goes out once, with its manager's remote id). False when stopped.

        Lookups before each create are skipped for a kind the target had none of when the
        push started (a 409 would still resolve to a match): an empty target costs one
        request per resource.
        """
        for kind in ("User", "Group"):
            self._skip_match = not self._links and await self._ops.remote_empty(ENDPOINT[kind])
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
                    await self._upsert(kind, level[start : start + _PAGE], scope, tally)
                    await self._flush()
                    if self._stopping.is_set():
                        self._skip_match = False
                        return False
        self._skip_match = False
        await self._revisit(scope, tally)
        self._log.info("push.initial_done", pushed=tally.pushed, skipped=tally.skipped,
                       failed=tally.failed)
        return True

    async def _apply(
        self, keys: Sequence[tuple[str, str]], scope: Scope, tally: _Tally,
        removals: int, allow_removals: bool,
    ) -> int:
        """Push one coalesced page: upserts of what is in scope, removals of what left it."""
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
                link = self._links.get((kind, rid))
                if link is not None and link.status != "removed" and link.remote_id:
                    gone.append((kind, rid))
                    continue
                tally.skipped += 1
                if link is not None and not link.remote_id:
                    # It never reached the target (refused) and is gone here: forget it.
                    self._links.pop((kind, rid))
                    self._dropped.append((kind, rid))
        held = bool(gone) and not allow_removals and (
            tally.held or removals + len(gone) > self._target.deletion_guard)
        await self._upsert("User", [r for r in by_kind["User"] if r in users_in], scope, tally)
        await self._upsert("Group", [r for r in by_kind["Group"] if r in groups_in], scope, tally)
        if held:
            if not tally.held:
                self._log.warning("push.held_by_guard", removals=removals + len(gone),
                                  guard=self._target.deletion_guard)
            tally.held = True
            return removals + len(gone)
        # Groups first: a user deleted remotely should not linger in a group we still push.
        for kind in ("Group", "User"):
            await self._each([rid for k, rid in gone if k == kind],
                             lambda rid, kind=kind: self._remove(kind, rid, tally))
        return removals + len(gone)

    async def _revisit(self, scope: Scope, tally: _Tally) -> None:
        for _ in range(_REVISIT_ROUNDS):
            if not tally.revisit:
                return
            todo, tally.revisit = tally.revisit, set()
            async with self._engine.connect() as conn:
                users = await scope.users_in(conn, [r for k, r in todo if k == "User"])
                groups = await scope.groups_in(conn, [r for k, r in todo if k == "Group"])
            await self._upsert("User", sorted(users), scope, tally, revisiting=True)
            await self._upsert("Group", sorted(groups), scope, tally, revisiting=True)
            await self._flush()

    # -- one resource -------------------------------------------------------------------------

    async def _each(self, ids: Sequence[str], push: Callable[[str], Awaitable[None]]) -> None:
        """Run ``push`` over ``ids`` a chunk at a time; a TargetUnavailable stops the lot."""
        for start in range(0, len(ids), _CHUNK):
            await together([push(rid) for rid in ids[start : start + _CHUNK]])

    async def _upsert(
        self, kind: str, ids: Sequence[str], scope: Scope, tally: _Tally,
        *, revisiting: bool = False,
    ) -> None:
        # A chunk at a time, each chunk's bodies read just before it goes: what the previous
        # chunks created (a manager, a nested group) is already referenced by its remote id.
        for start in range(0, len(ids), _CHUNK):
            payloads = await self._payloads(kind, ids[start : start + _CHUNK], scope)
            for rid, payload in payloads.items():
                if payload.deferred and not revisiting:
                    tally.revisit.add((kind, rid))

            todo = list(payloads)
            if self._skip_match and self._target.use_bulk and self._ops.features.bulk:
                todo = await self._bulk_create(kind, payloads, tally)

            async def push(rid: str, payloads: dict[str, Payload] = payloads) -> None:
                await self._push_one(kind, rid, payloads[rid], tally)

            await self._each(todo, push)

    async def _payloads(self, kind: str, ids: Sequence[str], scope: Scope) -> dict[str, Payload]:
        """The current bodies of ``ids`` (gone ones are left out), read in one go."""
        remote_users = RemoteIds(self._links, "User")
        out: dict[str, Payload] = {}
        async with self._engine.connect() as conn:
            for start in range(0, len(ids), 1000):
                part = list(ids[start : start + 1000])
                if kind == "User":
                    for row in await conn.execute(select(USERS).where(USERS.c.id.in_(part))):
                        out[row.id] = user_payload(row, self._target, remote_users)
                    continue
                rows = list(await conn.execute(select(GROUPS).where(GROUPS.c.id.in_(part))))
                members: dict[str, list[Any]] = {row.id: [] for row in rows}
                for m in await conn.execute(
                        select(MEMBERS.c.group_id, MEMBERS.c.member_id, MEMBERS.c.member_type)
                        .where(MEMBERS.c.group_id.in_(part))):
                    members[m.group_id].append(m)
                every = [m for ms in members.values() for m in ms]
                inside = await scope.users_in(
                    conn, [m.member_id for m in every if m.member_type == "User"])
                inside |= await scope.groups_in(
                    conn, [m.member_id for m in every if m.member_type == "Group"])
                remote = RemoteKeys(self._links)
                in_scope = {m.member_id: m.member_id in inside for m in every}
                for row in rows:
                    out[row.id] = group_payload(row, members[row.id], self._target, remote,
                                                in_scope)
        return out

    async def _push_one(self, kind: str, rid: str, payload: Payload, tally: _Tally) -> None:
        link = self._links.get((kind, rid))
        if (link is not None and link.status == "ok" and link.pushed_hash == payload.hash) \
                or (kind, rid) in tally.refused:
            tally.skipped += 1
            return
        endpoint = ENDPOINT[kind]
        try:
            remote_id = link.remote_id if link is not None else None
            if remote_id and not await self._ops.update(endpoint, remote_id, payload, kind):
                remote_id = None  # deleted on the target behind our back: match or create
            created = False
            if not remote_id:
                remote_id = await self._ops.match_or_create(endpoint, kind, payload,
                                                             skip_match=self._skip_match)
                created = True
        except TargetRejected as exc:
            tally.failed += 1
            tally.refused.add((kind, rid))
            self._keep(RemoteLink(
                target=self._target.name, kind=kind, resource_id=rid,
                remote_id=link.remote_id if link else None, pushed_hash=link.pushed_hash if link
                else None, status="failed", last_error=str(exc),
                attempts=(link.attempts if link else 0) + 1))
            self._log.warning("push.rejected", kind=kind, id=rid, status=exc.status,
                              scim_type=exc.scim_type, detail=exc.detail)
            return
        tally.pushed += 1
        self._keep(RemoteLink(target=self._target.name, kind=kind, resource_id=rid,
                              remote_id=remote_id, pushed_hash=payload.hash, status="ok",
                              last_error=None, attempts=0))
        if created and not self._skip_match:
            # (An initial push into an empty target orders references itself: no revisits.)
            await self._referrers(kind, rid, tally)

    async def _bulk_create(
        self, kind: str, payloads: Mapping[str, Payload], tally: _Tally
    ) -> list[str]:
        """Create the never-pushed ones of ``payloads`` through /Bulk (an initial push into an
        empty target that announces bulk, with ``use_bulk``): one request per batch instead of
        one per resource, ``concurrency`` batches at a time. Returns the ids left for the
        one-by-one path: the others, and operations answered 409 (matched there) or with a
        retryable status."""
        endpoint = ENDPOINT[kind]
        fresh = [rid for rid in payloads if (kind, rid) not in self._links]
        rest = [rid for rid in payloads if (kind, rid) in self._links]
        if not fresh:
            return rest
        limit = self._ops.features.bulk_max_operations or len(fresh)
        size = max(1, min(limit, -(-len(fresh) // max(1, self._target.concurrency))))
        budget = (self._ops.features.bulk_max_payload or 1 << 20) * 9 // 10
        batches: list[list[str]] = [[]]
        used = 0
        for rid in fresh:
            weight = len(json.dumps(payloads[rid].body)) + 100
            if batches[-1] and (len(batches[-1]) >= size or used + weight > budget):
                batches.append([])
                used = 0
            batches[-1].append(rid)
            used += weight

        async def send(batch: list[str]) -> None:
            answers = await self._client.bulk([
                {"method": "POST", "path": f"/{endpoint}", "bulkId": rid,
                 "data": payloads[rid].body} for rid in batch])
            done = set()
            for op in answers:
                rid = str(op.get("bulkId") or "")
                if rid not in payloads:
                    continue
                status = int(str(op.get("status") or "0").split()[0] or 0)
                location = str(op.get("location") or "").rstrip("/")
                if 200 <= status < 300 and location:
                    done.add(rid)
                    tally.pushed += 1
                    self._keep(RemoteLink(
                        target=self._target.name, kind=kind, resource_id=rid,
                        remote_id=location.rsplit("/", 1)[-1], pushed_hash=payloads[rid].hash,
                        status="ok", last_error=None, attempts=0))
                elif 400 <= status < 500 and status not in (408, 409, 425, 429):
                    done.add(rid)
                    error = op.get("response") if isinstance(op.get("response"), dict) else {}
                    exc = TargetRejected(str(error.get("detail") or f"HTTP {status}"),
                                         status=status, scim_type=error.get("scimType"))
                    tally.failed += 1
                    tally.refused.add((kind, rid))
                    self._keep(RemoteLink(
                        target=self._target.name, kind=kind, resource_id=rid, remote_id=None,
                        pushed_hash=None, status="failed", last_error=str(exc), attempts=1))
            rest.extend(rid for rid in batch if rid not in done)

        await together([send(batch) for batch in batches])
        return rest

    async def _referrers(self, kind: str, rid: str, tally: _Tally) -> None:
        """A resource new on the target: the groups containing it (and, for a user, the users
        it manages) can now reference it, so they are pushed again at the end of the drain."""
        async with self._engine.connect() as conn:
            for gid in await conn.scalars(
                    select(MEMBERS.c.group_id).where(MEMBERS.c.member_id == rid)):
                tally.revisit.add(("Group", gid))
            if kind == "User":
                for uid in await conn.scalars(
                        select(USERS.c.id).where(USERS.c.manager_id == rid)):
                    tally.revisit.add(("User", uid))

    async def _remove(self, kind: str, rid: str, tally: _Tally) -> None:
        """``on_remove`` for a resource pushed before and now gone here or out of scope."""
        link = self._links[(kind, rid)]
        endpoint = ENDPOINT[kind]
        assert link.remote_id is not None
        try:
            if kind == "User" and self._target.on_remove == "deactivate":
                await self._ops.deactivate(endpoint, link.remote_id)
                self._keep(RemoteLink(
                    target=link.target, kind=kind, resource_id=rid, remote_id=link.remote_id,
                    pushed_hash=None, status="removed", last_error=None, attempts=0))
            else:
                await self._client.delete(endpoint, link.remote_id)
                self._links.pop((kind, rid), None)
                self._dropped.append((kind, rid))
        except TargetRejected as exc:
            tally.failed += 1
            self._keep(RemoteLink(
                target=link.target, kind=kind, resource_id=rid, remote_id=link.remote_id,
                pushed_hash=link.pushed_hash, status="failed", last_error=str(exc),
                attempts=link.attempts + 1))
            return
        tally.removed += 1
        await self._referrers(kind, rid, tally)  # its groups lose it as a member

    # -- link bookkeeping ---------------------------------------------------------------------

    def _keep(self, link: RemoteLink) -> None:
        self._links[(link.kind, link.resource_id)] = link
        self._dirty.append(link)

    async def _flush(self) -> None:
        """Write the links changed since the last flush, in one transaction."""
        if not self._dirty and not self._dropped:
            return
        dirty, self._dirty = self._dirty, []
        dropped, self._dropped = self._dropped, []
        now = self._clock()
        async with self._engine.begin() as conn:
            for link in dirty:
                await state.save_link(conn, link, now)
            for kind, rid in dropped:
                await state.drop_link(conn, self._target.name, kind, rid)
