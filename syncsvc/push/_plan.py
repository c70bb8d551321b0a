"""Small helpers of the push worker: ordering by references, running work together, and
read-only views of the link cache."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from typing import Any

from syncsvc.errors import TargetUnavailable
from syncsvc.push.state import RemoteLink

__all__ = ["RemoteIds", "RemoteKeys", "levels", "together"]


def levels(ids: Sequence[str], needs: Mapping[str, set[str]]) -> list[list[str]]:
    """``ids`` in levels: everything a resource ``needs`` (a manager, a nested group) that is in
    ``ids`` sits in an earlier level. Members of a cycle, which no order satisfies, come last."""
    wanted = set(ids)
    level: dict[str, int] = {}
    todo = sorted(wanted)
    while todo:
        left = []
        for rid in todo:
            deps = needs.get(rid, set()) & wanted
            if all(d in level for d in deps):
                level[rid] = 1 + max((level[d] for d in deps), default=-1)
            else:
                left.append(rid)
        if len(left) == len(todo):  # only cycles remain
            last = 1 + max(level.values(), default=-1)
            level.update((rid, last) for rid in left)
            break
        todo = left
    out: list[list[str]] = [[] for _ in range(1 + max(level.values(), default=-1))]
    for rid in sorted(wanted):
        out[level[rid]].append(rid)
    return out


async def together(work: Sequence[Awaitable[None]]) -> None:
    """Run ``work`` concurrently; the first failure is raised as itself (a TargetUnavailable
    if there is one), not as an ExceptionGroup. The others are cancelled: a re-drain redoes
    them idempotently."""
    try:
        async with asyncio.TaskGroup() as group:
            for item in work:
                group.create_task(item)  # type: ignore[arg-type]
    except ExceptionGroup as eg:
        errors = list(_leaves(eg))
        raise next((e for e in errors if isinstance(e, TargetUnavailable)), errors[0]) from None


def _leaves(group: BaseExceptionGroup[Any]) -> Any:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


class RemoteIds(Mapping[str, str]):
    """Our id -> the target's id, for one kind, from the worker's link cache."""

    def __init__(self, links: Mapping[tuple[str, str], RemoteLink], kind: str) -> None:
        self._links = links
        self._kind = kind

    def __getitem__(self, key: str) -> str:
        link = self._links.get((self._kind, key))
        if link is None or not link.remote_id:
            raise KeyError(key)
        return link.remote_id

    def __iter__(self) -> Iterator[Any]:
        return (rid for kind, rid in self._links if kind == self._kind)

    def __len__(self) -> int:
        return sum(1 for kind, _ in self._links if kind == self._kind)


class RemoteKeys(Mapping[tuple[str, str], str]):
    """(kind, our id) -> the target's id, from the worker's link cache."""

    def __init__(self, links: Mapping[tuple[str, str], RemoteLink]) -> None:
        self._links = links

    def __getitem__(self, key: tuple[str, str]) -> str:
        link = self._links.get(key)
        if link is None or not link.remote_id:
            raise KeyError(key)
        return link.remote_id

    def __iter__(self) -> Iterator[Any]:
        return iter(self._links)

    def __len__(self) -> int:
        return len(self._links)

