"""Per-target push state: the outbox cursor, health, quarantine, and the remote id of each
resource (``push_target`` and ``push_resource``). Every function uses the caller's transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from syncsvc.errors import NotFound
from syncsvc.store.schema import OUTBOX, PUSH_RESOURCES, PUSH_TARGETS

__all__ = [
    "RemoteLink",
    "TargetState",
    "advance",
    "drop_link",
    "ensure_targets",
    "failures",
    "get_link",
    "get_target",
    "links",
    "list_targets",
    "mark_initial_done",
    "record_failure",
    "record_success",
    "resume",
    "save_link",
]

T = PUSH_TARGETS
R = PUSH_RESOURCES
MAX_ERROR = 2000  # characters of an error kept: a target may answer with a whole HTML page


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands DateTime(timezone=True) back naive; everything stored is UTC.
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class TargetState:
    """Where one target stands; ``queue_depth`` counts outbox rows after ``last_seq``."""

    name: str
    last_seq: int
    initial_done: bool
    last_success: datetime | None
    last_attempt: datetime | None
    consecutive_failures: int
    quarantined: bool
    quarantine_reason: str | None
    last_error: str | None
    queue_depth: int
    failed_resources: int = 0  # resources whose last push was refused (status "failed")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data for the admin API and ``syncsvc targets status --json``."""
        return {
            "name": self.name, "last_seq": self.last_seq, "initial_done": self.initial_done,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_attempt": self.last_attempt.isoformat() if self.last_attempt else None,
            "consecutive_failures": self.consecutive_failures, "quarantined": self.quarantined,
            "quarantine_reason": self.quarantine_reason, "last_error": self.last_error,
            "queue_depth": self.queue_depth, "failed_resources": self.failed_resources,
        }


@dataclass(frozen=True, slots=True)
class RemoteLink:
    """One of our resources on one target: its remote id and what was last pushed."""

    target: str
    kind: str  # User | Group
    resource_id: str
    remote_id: str | None
    pushed_hash: str | None
    status: str  # ok | failed | removed
    last_error: str | None
    attempts: int
    updated: datetime | None = None  # set when read back; save_link stamps it with ``now``

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "id": self.resource_id, "remote_id": self.remote_id,
            "status": self.status, "error": self.last_error, "attempts": self.attempts,
            "updated": self.updated.isoformat() if self.updated else None,
        }


def _state_query() -> Any:
    depth = (select(func.count()).select_from(OUTBOX)
             .where(OUTBOX.c.seq > T.c.last_seq).scalar_subquery())
    failed = (select(func.count()).select_from(R)
              .where(R.c.target == T.c.name, R.c.status == "failed").scalar_subquery())
    return select(T, depth.label("queue_depth"), failed.label("failed_resources"))


def _state(row: Row[Any]) -> TargetState:
    return TargetState(
        name=row.name, last_seq=int(row.last_seq), initial_done=bool(row.initial_done),
        last_success=_utc(row.last_success), last_attempt=_utc(row.last_attempt),
        consecutive_failures=int(row.consecutive_failures), quarantined=bool(row.quarantined),
        quarantine_reason=row.quarantine_reason, last_error=row.last_error,
        queue_depth=int(row.queue_depth or 0), failed_resources=int(row.failed_resources or 0),
    )


def _insert(conn: AsyncConnection, table: Any) -> Any:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


async def ensure_targets(conn: AsyncConnection, names: Sequence[str]) -> None:
    """Give every configured target a state row (at start); existing rows are left as they are."""
    if not names:
        return
    stmt = _insert(conn, T).on_conflict_do_nothing(index_elements=[T.c.name])
    await conn.execute(stmt, [
        {"name": n, "last_seq": 0, "initial_done": False, "consecutive_failures": 0,
         "quarantined": False} for n in dict.fromkeys(names)])


async def get_target(conn: AsyncConnection, name: str) -> TargetState:
    """One target's state; NotFound when it has no state row (not configured, never started)."""
    row = (await conn.execute(_state_query().where(T.c.name == name))).first()
    if row is None:
        raise NotFound(f"no push target {name!r}")
    return _state(row)


async def list_targets(conn: AsyncConnection) -> list[TargetState]:
    """Every target with a state row, by name."""
    return [_state(r) for r in await conn.execute(_state_query().order_by(T.c.name))]


async def _update(conn: AsyncConnection, name: str, **values: Any) -> None:
    result = await conn.execute(update(T).where(T.c.name == name).values(**values))
    if result.rowcount != 1:
        raise NotFound(f"no push target {name!r}")


async def advance(conn: AsyncConnection, name: str, seq: int) -> None:
    """Move the target's outbox cursor to ``seq``; never backwards."""
    await _update(conn, name, last_seq=case((T.c.last_seq < seq, seq), else_=T.c.last_seq))


async def mark_initial_done(conn: AsyncConnection, name: str, seq: int) -> None:
    """The initial push is complete as of outbox ``seq`` (the head read before it started)."""
    await _update(conn, name, initial_done=True,
                  last_seq=case((T.c.last_seq < seq, seq), else_=T.c.last_seq))


async def record_success(conn: AsyncConnection, name: str, now: datetime) -> None:
    """The target answered: failures reset, and a quarantine ends (it has recovered)."""
    await _update(conn, name, last_success=now, last_attempt=now, consecutive_failures=0,
                  last_error=None, quarantined=False, quarantine_reason=None)


async def record_failure(
    conn: AsyncConnection, name: str, error: str, now: datetime, quarantine_after: int
) -> TargetState:
    """Count a failed attempt; at ``quarantine_after`` consecutive ones the target is
    quarantined (pushes stop until it recovers or an admin resumes it). Returns the new state."""
    error = error[:MAX_ERROR]
    await _update(conn, name, consecutive_failures=T.c.consecutive_failures + 1,
                  last_attempt=now, last_error=error)
    current = await get_target(conn, name)
    if current.consecutive_failures >= quarantine_after and not current.quarantined:
        reason = f"{current.consecutive_failures} consecutive failures; last: {error}"[:MAX_ERROR]
        await _update(conn, name, quarantined=True, quarantine_reason=reason)
        current = dataclasses.replace(current, quarantined=True, quarantine_reason=reason)
    return current


async def resume(conn: AsyncConnection, name: str) -> None:
    """An admin lifts the quarantine: failures are forgotten, the next drain pushes again."""
    await _update(conn, name, quarantined=False, quarantine_reason=None, consecutive_failures=0)


def _link(row: Row[Any]) -> RemoteLink:
    return RemoteLink(target=row.target, kind=row.kind, resource_id=row.resource_id,
                      remote_id=row.remote_id, pushed_hash=row.pushed_hash, status=row.status,
                      last_error=row.last_error, attempts=int(row.attempts),
                      updated=_utc(row.updated))


async def get_link(
    conn: AsyncConnection, target: str, kind: str, resource_id: str
) -> RemoteLink | None:
    row = (await conn.execute(select(R).where(
        R.c.target == target, R.c.kind == kind, R.c.resource_id == resource_id))).first()
    return _link(row) if row is not None else None


async def links(conn: AsyncConnection, target: str, kind: str) -> list[RemoteLink]:
    """Every link of one kind on one target (reconcile compares them with the remote list)."""
    rows = await conn.execute(
        select(R).where(R.c.target == target, R.c.kind == kind).order_by(R.c.resource_id))
    return [_link(r) for r in rows]


async def failures(conn: AsyncConnection, target: str, limit: int = 50) -> list[RemoteLink]:
    """The resources the target refused (status ``failed``), most recent first."""
    rows = await conn.execute(
        select(R).where(R.c.target == target, R.c.status == "failed")
        .order_by(R.c.updated.desc(), R.c.resource_id).limit(limit))
    return [_link(r) for r in rows]


async def save_link(conn: AsyncConnection, link: RemoteLink, now: datetime) -> None:
    """Insert or replace the link (keyed by target, kind and resource id)."""
    values = {"target": link.target, "kind": link.kind, "resource_id": link.resource_id,
              "remote_id": link.remote_id, "pushed_hash": link.pushed_hash,
              "status": link.status, "last_error": link.last_error,
              "attempts": link.attempts, "updated": now}
    stmt = _insert(conn, R).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[R.c.target, R.c.kind, R.c.resource_id],
        set_={k: stmt.excluded[k] for k in values if k not in ("target", "kind", "resource_id")})
    await conn.execute(stmt)


async def drop_link(conn: AsyncConnection, target: str, kind: str, resource_id: str) -> None:
    await conn.execute(delete(R).where(
        R.c.target == target, R.c.kind == kind, R.c.resource_id == resource_id))
