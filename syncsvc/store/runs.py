"""Run records: what each sync did, for `syncsvc runs` and the admin API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from syncsvc.domain import Problem
from syncsvc.store.schema import SyncProblemRow, SyncRunRow

__all__ = [
    "COUNTS", "RunRecord", "fail_interrupted", "finish_run", "get_run", "last_success", "list_runs",
    "start_run",
]

RUNS = SyncRunRow.__table__
PROBLEMS = SyncProblemRow.__table__
COUNTS = ("read", "created", "updated", "unchanged", "deactivated", "deleted", "problems")
# A run with millions of dangling references must not make a million rows of its own.
MAX_STORED_PROBLEMS = 10_000


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    mode: str
    method: str
    trigger: str
    status: str
    started: datetime
    ended: datetime | None
    counts: dict[str, int]
    detail: str | None
    problems: tuple[Problem, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode,
            "method": self.method,
            "trigger": self.trigger,
            "status": self.status,
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat() if self.ended else None,
            "counts": self.counts,
            "detail": self.detail,
            "problems": [{"dn": p.dn, "reason": p.reason} for p in self.problems],
        }


async def start_run(
    conn: AsyncConnection, *, run_id: str, mode: str, method: str, trigger: str, now: datetime
) -> None:
    await conn.execute(
        insert(RUNS).values(
            id=run_id, mode=mode, method=method, trigger=trigger, status="running", started=now,
            **dict.fromkeys(COUNTS, 0),
        )
    )


async def finish_run(
    conn: AsyncConnection,
    *,
    run_id: str,
    status: str,
    method: str,
    counts: dict[str, int],
    detail: str | None,
    problems: Sequence[Problem],
    now: datetime,
) -> None:
    await conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id)
        .values(status=status, method=method, ended=now, detail=detail, **counts)
    )
    if problems:
        await conn.execute(
            insert(PROBLEMS),
            [{"run_id": run_id, "dn": p.dn, "reason": p.reason} for p in problems[:MAX_STORED_PROBLEMS]],
        )


def _record(row: Any, problems: Sequence[Problem] = ()) -> RunRecord:
    return RunRecord(
        id=row.id, mode=row.mode, method=row.method, trigger=row.trigger, status=row.status,
        started=row.started, ended=row.ended, counts={c: getattr(row, c) for c in COUNTS},
        detail=row.detail, problems=tuple(problems),
    )


async def list_runs(conn: AsyncConnection, limit: int = 20) -> list[RunRecord]:
    rows = await conn.execute(select(RUNS).order_by(RUNS.c.started.desc()).limit(limit))
    return [_record(r) for r in rows]


async def get_run(conn: AsyncConnection, run_id: str) -> RunRecord | None:
    """One run with its problems; ``run_id`` may be a unique prefix."""
    rows = list(await conn.execute(select(RUNS).where(RUNS.c.id.startswith(run_id, autoescape=True)).limit(2)))
    if len(rows) != 1:
        return None
    problems = await conn.execute(
        select(PROBLEMS.c.dn, PROBLEMS.c.reason).where(PROBLEMS.c.run_id == rows[0].id).order_by(PROBLEMS.c.id)
    )
    return _record(rows[0], [Problem(dn, reason) for dn, reason in problems])


async def last_success(conn: AsyncConnection) -> datetime | None:
    """When the latest successful run ended (UTC)."""
    ended = await conn.scalar(
        select(RUNS.c.ended).where(RUNS.c.status == "success").order_by(RUNS.c.ended.desc()).limit(1)
    )
    if ended is not None and ended.tzinfo is None:  # SQLite keeps UTC without a zone
        ended = ended.replace(tzinfo=UTC)
    return ended


async def fail_interrupted(conn: AsyncConnection, now: datetime) -> int:
    """Runs still marked running when the lock is free were cut off (SIGKILL, a crash, a lost
    connection): record them as failed. Call only while holding the run lock."""
    result = await conn.execute(
        update(RUNS)
        .where(RUNS.c.status == "running")
        .values(status="failed", ended=now,
                detail="interrupted: the run ended without recording its outcome (its process was "
                       "killed, or the store was unreachable at the end); nothing was removed")
    )
    return result.rowcount or 0
