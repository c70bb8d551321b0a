"""Bring resources on one target in line with ours: update, match or create, remove.

Each resource is pushed in its current state read from the store, a chunk at a time. A body
whose hash equals the link's ``pushed_hash`` is skipped (no request). A permanent error (4xx)
is recorded on that resource's link and the others go on; a retryable one
(``TargetUnavailable``) stops the lot. A resource new on the target makes the resources that
reference it due for a revisit (see :meth:`Delivery.revisit`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.errors import TargetRejected
from syncsvc.push._bodies import read_payloads
from syncsvc.push._bulk import bulk_create
from syncsvc.push._links import LinkCache
from syncsvc.push._plan import together
from syncsvc.push._remote import RemoteOps
from syncsvc.push._report import Tally
from syncsvc.push.client import ScimClient
from syncsvc.push.payload import Payload
from syncsvc.push.scope import Scope, load_scope
from syncsvc.push.state import RemoteLink
from syncsvc.settings import TargetSettings
from syncsvc.store.schema import MEMBERS, USERS

__all__ = ["ENDPOINT", "Delivery", "each"]

ENDPOINT = {"User": "Users", "Group": "Groups"}
_CHUNK = 100  # resources in flight together (the client's concurrency bounds the requests)
_REVISIT_ROUNDS = 3


async def each(ids: Sequence[str], push: Callable[[str], Awaitable[None]]) -> None:
    """Run ``push`` over ``ids`` a chunk at a time; a TargetUnavailable stops the lot."""
    for start in range(0, len(ids), _CHUNK):
        await together([push(rid) for rid in ids[start : start + _CHUNK]])


class Delivery:
    """Pushes resources of ours to one target and keeps their links in ``links``.

    ``skip_match`` is set by an initial push into an empty target: creates go out without a
    lookup first (a 409 still resolves to a match), and through /Bulk when allowed.
    """

    def __init__(
        self, engine: AsyncEngine, target: TargetSettings, client: ScimClient,
        links: LinkCache, log: Any,
    ) -> None:
        self._engine = engine
        self._target = target
        self._client = client
        self._log = log
        self.links = links
        self.ops = RemoteOps(client, target, log)
        self.skip_match = False

    async def prepare(self) -> Scope:
        """Read the target's features, our links to it and the scope (start of a drain)."""
        self.skip_match = False
        self.ops.features = await self._client.features()
        async with self._engine.connect() as conn:
            scope = await load_scope(conn, self._target)
            await self.links.load(conn)
        return scope

    async def payloads(self, kind: str, ids: Sequence[str], scope: Scope) -> dict[str, Payload]:
        """The current bodies of ``ids`` (gone ones are left out), read in one go."""
        return await read_payloads(self._engine, self._target, self.links.by_key, kind, ids,
                                   scope)

    async def upsert(
        self, kind: str, ids: Sequence[str], scope: Scope, tally: Tally,
        *, revisiting: bool = False,
    ) -> None:
        """Push ``ids`` (in scope) as they are now: update, or match or create."""
        # A chunk at a time, each chunk's bodies read just before it goes: what the previous
        # chunks created (a manager, a nested group) is already referenced by its remote id.
        for start in range(0, len(ids), _CHUNK):
            payloads = await self.payloads(kind, ids[start : start + _CHUNK], scope)
            for rid, payload in payloads.items():
                if payload.deferred and not revisiting:
                    tally.revisit.add((kind, rid))

            todo = list(payloads)
            if self.skip_match and self._target.use_bulk and self.ops.features.bulk:
                todo = await bulk_create(self._client, self.ops.features, self._target,
                                         self.links, kind, ENDPOINT[kind], payloads, tally)

            async def push(rid: str, payloads: dict[str, Payload] = payloads) -> None:
                await self._push_one(kind, rid, payloads[rid], tally)

            await each(todo, push)

    async def remove(self, kind: str, ids: Sequence[str], tally: Tally) -> None:
        """``on_remove`` for ``ids``, pushed before and now gone here or out of scope."""
        await each(ids, lambda rid: self._remove_one(kind, rid, tally))

    async def revisit(self, scope: Scope, tally: Tally) -> None:
        """Push again what referenced something not yet on the target, now that it may be
        there (a few rounds: a chain of references resolves one link per round)."""
        for _ in range(_REVISIT_ROUNDS):
            if not tally.revisit:
                return
            todo, tally.revisit = tally.revisit, set()
            async with self._engine.connect() as conn:
                users = await scope.users_in(conn, [r for k, r in todo if k == "User"])
                groups = await scope.groups_in(conn, [r for k, r in todo if k == "Group"])
            await self.upsert("User", sorted(users), scope, tally, revisiting=True)
            await self.upsert("Group", sorted(groups), scope, tally, revisiting=True)
            await self.links.flush()

    async def _push_one(self, kind: str, rid: str, payload: Payload, tally: Tally) -> None:
        link = self.links.get((kind, rid))
        if (link is not None and link.status == "ok" and link.pushed_hash == payload.hash) \
                or (kind, rid) in tally.refused:
            tally.skipped += 1
            return
        endpoint = ENDPOINT[kind]
        try:
            remote_id = link.remote_id if link is not None else None
            if remote_id and not await self.ops.update(endpoint, remote_id, payload, kind):
                remote_id = None  # deleted on the target behind our back: match or create
            created = False
            if not remote_id:
                remote_id = await self.ops.match_or_create(endpoint, kind, payload,
                                                            skip_match=self.skip_match)
                created = True
        except TargetRejected as exc:
            tally.failed += 1
            tally.refused.add((kind, rid))
            self.links.keep(RemoteLink(
                target=self._target.name, kind=kind, resource_id=rid,
                remote_id=link.remote_id if link else None, pushed_hash=link.pushed_hash if link
                else None, status="failed", last_error=str(exc),
                attempts=(link.attempts if link else 0) + 1))
            self._log.warning("push.rejected", kind=kind, id=rid, status=exc.status,
                              scim_type=exc.scim_type, detail=exc.detail)
            return
        tally.pushed += 1
        self.links.keep(RemoteLink(target=self._target.name, kind=kind, resource_id=rid,
                                   remote_id=remote_id, pushed_hash=payload.hash, status="ok",
                                   last_error=None, attempts=0))
        if created and not self.skip_match:
            # (An initial push into an empty target orders references itself: no revisits.)
            await self._referrers(kind, rid, tally)

    async def _referrers(self, kind: str, rid: str, tally: Tally) -> None:
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

    async def _remove_one(self, kind: str, rid: str, tally: Tally) -> None:
        link = self.links[(kind, rid)]
        endpoint = ENDPOINT[kind]
        assert link.remote_id is not None
        try:
            if kind == "User" and self._target.on_remove == "deactivate":
                await self.ops.deactivate(endpoint, link.remote_id)
                self.links.keep(RemoteLink(
                    target=link.target, kind=kind, resource_id=rid, remote_id=link.remote_id,
                    pushed_hash=None, status="removed", last_error=None, attempts=0))
            else:
                await self._client.delete(endpoint, link.remote_id)
                self.links.forget((kind, rid))
        except TargetRejected as exc:
            tally.failed += 1
            self.links.keep(RemoteLink(
                target=link.target, kind=kind, resource_id=rid, remote_id=link.remote_id,
                pushed_hash=link.pushed_hash, status="failed", last_error=str(exc),
                attempts=link.attempts + 1))
            return
        tally.removed += 1
        await self._referrers(kind, rid, tally)  # its groups lose it as a member
