"""The syncs `serve` runs by itself: incremental every N seconds, full on a cron expression.

No overlap (one loop awaits each run before planning the next, and the run lock refuses a
second run: a replica that finds the lock taken just waits for its next turn), jitter so that
replicas do not fire together, and exponential backoff after failures. The plan is a pure
function of the clock and what happened, and the loop takes its clock, sleep, randomness and
runner as arguments, so both are tested without sleeping.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from croniter import croniter

from syncsvc.domain import RunMode, RunStatus
from syncsvc.errors import SyncBusy
from syncsvc.settings import ScheduleSettings
from syncsvc.sync.pipeline import SyncDeps, SyncOptions, run_sync
from syncsvc.sync.report import SyncReport

__all__ = ["BACKOFF_BASE", "Plan", "ScheduleState", "Scheduler", "plan_next"]

log = structlog.get_logger(__name__)

BACKOFF_BASE = 30  # seconds before the first retry after a failure


@dataclass(slots=True)
class ScheduleState:
    """What the scheduler knows; read by /admin/status."""

    started: datetime
    last_full: datetime | None = None
    last_incremental: datetime | None = None
    last_success: datetime | None = None
    last_run_id: str | None = None
    last_status: str | None = None
    failures: int = 0
    next_at: datetime | None = None
    next_mode: RunMode | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    at: datetime
    mode: RunMode


def plan_next(settings: ScheduleSettings, state: ScheduleState, now: datetime) -> Plan | None:
    """When the next run is due and which kind; None when nothing is scheduled.

    After failures the next attempt comes after a doubling backoff (30 s, 60 s, ... up to
    ``max_backoff``) and is of the failed run's kind (a full run when unknown): the marks of a
    failed run did not move, so an incremental retry still covers everything since the last
    success.
    """
    if state.failures:
        wait = min(BACKOFF_BASE * 2 ** (state.failures - 1), settings.max_backoff)
        return Plan(now + timedelta(seconds=wait), state.next_mode or RunMode.FULL)
    candidates: list[Plan] = []
    if settings.full_cron:
        base = state.last_full or state.started
        candidates.append(Plan(croniter(settings.full_cron, base).get_next(datetime), RunMode.FULL))
    if settings.incremental_interval > 0:
        base = max(filter(None, (state.last_incremental, state.last_full, state.started)))
        candidates.append(Plan(base + timedelta(seconds=settings.incremental_interval),
                               RunMode.INCREMENTAL))
    if not candidates:
        return None
    # A full run due no later than the incremental one does its job too.
    return min(candidates, key=lambda p: (p.at, p.mode is not RunMode.FULL))


@dataclass
class Scheduler:
    deps: SyncDeps
    settings: ScheduleSettings
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    runner: Callable[[SyncDeps, SyncOptions], Awaitable[SyncReport]] = run_sync
    state: ScheduleState = field(init=False)

    def __post_init__(self) -> None:
        self.state = ScheduleState(started=self.clock())

    def record(self, report: SyncReport, ended: datetime) -> None:
        """Fold a finished run (scheduled or not) into the state."""
        state = self.state
        state.last_run_id, state.last_status = report.run_id, report.status.value
        if report.dry_run:
            return
        if report.status is RunStatus.FAILED:
            state.failures += 1
            return
        state.failures = 0
        if report.mode is RunMode.FULL:
            state.last_full = ended
        state.last_incremental = ended
        if report.status is RunStatus.SUCCESS:
            state.last_success = ended

    async def run_forever(self) -> None:
        """Sleep until the next run is due, run it, repeat; cancelled on shutdown."""
        while True:
            plan = plan_next(self.settings, self.state, self.clock())
            if plan is None:
                log.info("schedule.idle")
                return
            self.state.next_at, self.state.next_mode = plan.at, plan.mode
            jitter = self.rng.uniform(0, self.settings.jitter)
            delay = (plan.at - self.clock()).total_seconds() + jitter
            await self.sleep(max(0.0, delay))
            try:
                options = SyncOptions(mode=plan.mode, trigger="schedule")
                report = await self.runner(self.deps, options)
            except SyncBusy as exc:
                # Another replica (or an admin-triggered run) has it: not a failure of ours.
                log.info("schedule.skipped_busy", reason=str(exc))
                now = self.clock()
                if plan.mode is RunMode.FULL:
                    self.state.last_full = now
                self.state.last_incremental = now
                continue
            except Exception:
                # run_sync records its own failures; anything else is a bug, and it must not end
                # the schedule for the life of the process: back off and try again.
                log.exception("schedule.run_crashed")
                self.state.failures += 1
                self.state.last_status = "failed"
                continue
            self.record(report, self.clock())
            if report.status is RunStatus.FAILED:
                log.warning("schedule.backoff", failures=self.state.failures)
