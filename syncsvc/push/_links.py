"""The push worker's link cache: which of our resources has which remote copy on one target.

Loaded at the start of a drain, changed in memory as resources are pushed, and written back
by :meth:`LinkCache.flush` in one transaction (after each page, so a crash loses at most a
page of bookkeeping, and a re-push of that page is harmless).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from syncsvc.push import state
from syncsvc.push.state import RemoteLink

__all__ = ["Key", "LinkCache"]

Key = tuple[str, str]  # (kind, our id)


class LinkCache:
    """(kind, our id) -> :class:`RemoteLink` for one target, with the changes not yet saved."""

    def __init__(self, engine: AsyncEngine, target: str, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._target = target
        self._clock = clock
        self._links: dict[Key, RemoteLink] = {}
        self._dirty: list[RemoteLink] = []
        self._dropped: list[Key] = []

    @property
    def by_key(self) -> Mapping[Key, RemoteLink]:
        """The links themselves (a live view, replaced by :meth:`load`)."""
        return self._links

    def __len__(self) -> int:
        return len(self._links)

    def __contains__(self, key: Key) -> bool:
        return key in self._links

    def __getitem__(self, key: Key) -> RemoteLink:
        return self._links[key]

    def get(self, key: Key) -> RemoteLink | None:
        return self._links.get(key)

    async def load(self, conn: AsyncConnection) -> None:
        """Replace the cache with the stored links (start of a drain)."""
        self._links = {}
        for kind in ("User", "Group"):
            for link in await state.links(conn, self._target, kind):
                self._links[(kind, link.resource_id)] = link

    def keep(self, link: RemoteLink) -> None:
        """Record ``link`` (saved at the next flush)."""
        self._links[(link.kind, link.resource_id)] = link
        self._dirty.append(link)

    def forget(self, key: Key) -> None:
        """Drop the link of ``key`` (deleted at the next flush)."""
        self._links.pop(key, None)
        self._dropped.append(key)

    def resend(self, key: Key) -> None:
        """Forget what was pushed for ``key`` (in memory only): its next push is sent even if
        the body did not change, because the remote copy drifted."""
        old = self._links.get(key)
        if old is not None:
            self._links[key] = dataclasses.replace(old, pushed_hash=None, status="ok")

    async def flush(self) -> None:
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
                await state.drop_link(conn, self._target, kind, rid)
