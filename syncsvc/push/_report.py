"""What a drain did: the running tally, the report, and the target's health recorded from it.

A retryable failure (``TargetUnavailable``) counts toward quarantine (``quarantine_after`` in
a row); a success resets the count. Retrying later is the runner's job
(:mod:`syncsvc.push.runner`), from the report's ``retry_after``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.errors import TargetUnavailable
from syncsvc.push import state
from syncsvc.push.state import TargetState
from syncsvc.settings import TargetSettings

__all__ = ["DrainReport", "Tally", "finish_drain", "tally_report"]

# An idle drain (empty outbox) records its success at most this often (seconds): a poll every
# few seconds should not write to the store each time.
_IDLE_RECORD = 60.0


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
class Tally:
    """Counts and follow-ups of the drain in progress."""

    pushed: int = 0
    removed: int = 0
    failed: int = 0
    skipped: int = 0
    held: bool = False
    revisit: set[tuple[str, str]] = field(default_factory=set)
    refused: set[tuple[str, str]] = field(default_factory=set)  # not retried in the same drain


def tally_report(
    target: str, tally: Tally, started: float, error: TargetUnavailable | None,
    *, held: bool,
) -> DrainReport:
    """The report of a drain that started at ``started`` (``time.monotonic()``)."""
    return DrainReport(
        target=target, pushed=tally.pushed, removed=tally.removed, failed=tally.failed,
        skipped=tally.skipped, held=held, seconds=round(time.monotonic() - started, 3),
        error=error.detail if error else None,
        retry_after=error.retry_after if error else None)


async def finish_drain(
    engine: AsyncEngine, target: TargetSettings, current: TargetState, tally: Tally,
    error: TargetUnavailable | None, *, worked: bool, now: datetime, started: float, log: Any,
) -> DrainReport:
    """Record the drain's outcome on the target (success, or a failure that may quarantine
    it), log it when something happened, and report it. ``worked`` is False for an idle poll,
    which records its success only every ``_IDLE_RECORD`` seconds."""
    name = target.name
    if not worked and not current.consecutive_failures and current.last_success \
            and (now - current.last_success).total_seconds() < _IDLE_RECORD:
        return DrainReport(target=name, pushed=0, removed=0, failed=0, skipped=0,
                           held=False, seconds=round(time.monotonic() - started, 3))
    async with engine.begin() as conn:
        if error is None:
            await state.record_success(conn, name, now)
        else:
            after = await state.record_failure(
                conn, name, error.detail, now, target.quarantine_after)
            log.warning("push.drain_failed", error=error.detail,
                        failures=after.consecutive_failures, quarantined=after.quarantined)
    report = tally_report(name, tally, started, error, held=tally.held)
    if report.pushed or report.removed or report.failed or report.held or error:
        log.info("push.drained", pushed=report.pushed, removed=report.removed,
                 failed=report.failed, skipped=report.skipped, held=report.held,
                 seconds=report.seconds)
    return report
