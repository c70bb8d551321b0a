"""The schedule's plan: what runs next, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncsvc.domain import RunMode
from syncsvc.settings import ScheduleSettings
from syncsvc.sync.scheduler import Plan, ScheduleState, plan_next

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


class TestPlan:
    def test_incremental_every_interval(self) -> None:
        """Five minutes after the last run comes an incremental one."""
        state = ScheduleState(started=T0, last_incremental=T0)
        assert Plan(T0 + timedelta(minutes=5), RunMode.INCREMENTAL) == plan_next(
            ScheduleSettings(), state, T0)

    def test_full_run_at_the_cron_time_wins_over_a_later_incremental(self) -> None:
        """At 01:58 with a 02:00 nightly full run, the full run comes next."""
        now = datetime(2026, 11, 27, 1, 58, tzinfo=UTC)
        state = ScheduleState(started=now, last_incremental=now,
                              last_full=datetime(2026, 11, 26, 2, 0, tzinfo=UTC))
        assert Plan(datetime(2026, 11, 27, 2, 0, tzinfo=UTC), RunMode.FULL) == plan_next(
            ScheduleSettings(), state, now)

    def test_backoff_doubles_and_is_capped(self) -> None:
        """After 1, 2, 3 and 10 failures: 30 s, 60 s, 120 s, then the cap."""
        settings = ScheduleSettings(max_backoff=600)
        waits = []
        for failures in (1, 2, 3, 10):
            state = ScheduleState(started=T0, failures=failures, next_mode=RunMode.INCREMENTAL)
            plan = plan_next(settings, state, T0)
            assert plan is not None
            waits.append((plan.at - T0).total_seconds())
        assert [30, 60, 120, 600] == waits

    def test_nothing_scheduled(self) -> None:
        """No interval and no cron: the scheduler has nothing to do."""
        settings = ScheduleSettings(incremental_interval=0, full_cron="")
        assert plan_next(settings, ScheduleState(started=T0), T0) is None
