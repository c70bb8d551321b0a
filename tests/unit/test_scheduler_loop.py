"""The scheduler's loop: jitter on every wait, backoff after failures, a busy lock is no failure.

The clock, sleep, randomness and the runner are the scheduler's own arguments; the runner here
stands in for run_sync to produce outcomes on demand (a failure, a lock held elsewhere, a bug).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncsvc.domain import RunMode, RunStatus
from syncsvc.errors import SyncBusy
from syncsvc.settings import ScheduleSettings
from syncsvc.sync import SyncOptions, SyncReport
from syncsvc.sync.scheduler import Scheduler

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


class _Done(BaseException):  # not Exception: the loop survives those
    """Ends the endless loop once the scripted outcomes are used up."""


class _MaxJitter(random.Random):
    """Always the largest jitter, so the waits are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Script:
    """A fake clock and sleep, and a runner that replays ``outcomes`` (a status or an error)."""

    def __init__(self, outcomes: list[RunStatus | Exception]) -> None:
        self.now = T0
        self.sleeps: list[float] = []
        self.modes: list[RunMode] = []
        self._outcomes: Iterator[RunStatus | Exception] = iter(outcomes)

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)

    async def run(self, deps: Any, options: SyncOptions) -> SyncReport:
        self.modes.append(options.mode)
        outcome = next(self._outcomes, None)
        if outcome is None:
            raise _Done
        if isinstance(outcome, Exception):
            raise outcome
        self.now += timedelta(seconds=10)  # every run takes ten seconds
        return SyncReport(run_id="r", mode=options.mode, trigger=options.trigger, status=outcome)


def _scheduler(script: Script, **settings: Any) -> Scheduler:
    deps: Any = None  # the runner below never looks at it
    return Scheduler(deps=deps, settings=ScheduleSettings(full_cron="", **settings),
                     clock=script.clock, sleep=script.sleep, rng=_MaxJitter(), runner=script.run)


async def _until_done(scheduler: Scheduler) -> None:
    with pytest.raises(_Done):
        await scheduler.run_forever()


class TestLoop:
    async def test_each_wait_is_the_interval_plus_jitter(self) -> None:
        """Interval 300 s, jitter 30 s: the next run is 300 s after the last one ended, + 30 s."""
        script = Script([RunStatus.SUCCESS, RunStatus.SUCCESS])
        await _until_done(_scheduler(script, incremental_interval=300, jitter=30))
        assert [330.0, 330.0, 330.0] == script.sleeps
        assert [RunMode.INCREMENTAL] * 3 == script.modes

    async def test_failures_back_off_then_success_resets(self) -> None:
        """Two failures: retries after 30 s, then 60 s (+ jitter); a success resets the interval."""
        script = Script([RunStatus.FAILED, RunStatus.FAILED, RunStatus.SUCCESS])
        scheduler = _scheduler(script, incremental_interval=300, jitter=5)
        await _until_done(scheduler)
        assert [305.0, 35.0, 65.0, 305.0] == script.sleeps
        assert 0 == scheduler.state.failures

    async def test_backoff_is_capped(self) -> None:
        """Failures keep doubling the wait only up to max_backoff."""
        script = Script([RunStatus.FAILED] * 5)
        await _until_done(_scheduler(script, incremental_interval=300, jitter=0, max_backoff=100))
        assert [300.0, 30.0, 60.0, 100.0, 100.0, 100.0] == script.sleeps

    async def test_a_lock_held_elsewhere_is_not_a_failure(self) -> None:
        """Another replica syncing: skip the turn, no backoff; the next turn is a normal one."""
        script = Script([SyncBusy("another replica is running a sync"), RunStatus.SUCCESS])
        scheduler = _scheduler(script, incremental_interval=60, jitter=0)
        await _until_done(scheduler)
        assert [60.0, 60.0, 60.0] == script.sleeps
        assert 0 == scheduler.state.failures

    async def test_an_unexpected_error_backs_off_instead_of_ending_the_schedule(self) -> None:
        """A crash in a run is logged and retried after the backoff; the loop goes on."""
        script = Script([RuntimeError("bug"), RunStatus.SUCCESS])
        scheduler = _scheduler(script, incremental_interval=60, jitter=0)
        await _until_done(scheduler)
        assert [60.0, 30.0, 60.0] == script.sleeps
