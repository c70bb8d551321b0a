"""The background loop `serve` runs: one :class:`PushWorker` per enabled target.

Each target has its own loop, so a slow or failing target never holds the others back. A loop
drains when woken (:meth:`PushRunner.wake`, called after each sync run and each SCIM write)
and at least every ``poll_interval`` seconds (a change written by another replica, or a wake
that came mid-drain, is not missed). After a failed drain it waits the target's
``Retry-After`` or an exponential backoff (capped) before trying again; a quarantined target
is left alone until an admin resumes it (the loop keeps checking). A ``reconcile_cron`` runs
a full reconcile at those times. On the stop event each loop finishes at a clean point: the
worker checks it between pages, after the page's links and cursor are saved.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from croniter import croniter
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.errors import Conflict, NotFound, TargetQuarantined, TargetUnavailable
from syncsvc.push import outbox, state
from syncsvc.push.reconcile import ReconcileReport, reconcile
from syncsvc.push.worker import DrainReport, PushWorker
from syncsvc.settings import Settings, TargetSettings

__all__ = ["PushRunner"]

_MAX_BACKOFF = 300.0
_PRUNE_EVERY = 300.0  # seconds between outbox prunes

_log = structlog.get_logger(__name__)


class PushRunner:
    """Drives the push workers of every enabled target (``Settings.targets``)."""

    def __init__(
        self, engine: AsyncEngine, settings: Settings, *, log: Any = None,
        poll_interval: float = 5.0,
        observers: Sequence[Callable[[DrainReport], None]] = (),
        prune_interval: float = _PRUNE_EVERY,
    ) -> None:
        self._engine = engine
        self._prune_every = prune_interval
        self._observers = tuple(observers)
        self._log = log or _log
        self._poll = poll_interval
        self._stop = asyncio.Event()
        self._targets: dict[str, TargetSettings] = {t.name: t for t in settings.targets}
        self._workers = {
            t.name: PushWorker(engine, t, log=self._log, stopping=self._stop)
            for t in settings.targets if t.enabled
        }
        self._wakes = {name: asyncio.Event() for name in self._workers}

    @property
    def names(self) -> list[str]:
        """The enabled targets, in config order."""
        return list(self._workers)

    def wake(self) -> None:
        """Something changed: every target drains soon (cheap; safe to call often)."""
        for event in self._wakes.values():
            event.set()

    def worker(self, name: str) -> PushWorker:
        try:
            return self._workers[name]
        except KeyError:
            state = "disabled" if name in self._targets else "not configured"
            raise NotFound(f"target {name!r} is {state}") from None

    async def push_now(self, name: str, *, allow_removals: bool = False) -> DrainReport:
        """Drain ``name`` now (waits for a drain in progress); raises TargetQuarantined.

        The caller reports the drain (the admin route feeds it to the metrics itself)."""
        return await self.worker(name).drain(allow_removals=allow_removals)

    async def reconcile(self, name: str, dry_run: bool) -> ReconcileReport:
        """A full reconcile of ``name``, never at the same time as one of its drains."""
        worker = self.worker(name)
        async with worker.exclusive() as mine:
            if not mine:
                raise Conflict(f"another replica is pushing to {name!r}; try again shortly")
            return await reconcile(self._engine, worker.target, dry_run=dry_run, log=self._log,
                                   worker=worker)

    async def run(self, stop: asyncio.Event) -> None:
        """Run every target's loop until ``stop`` is set, then close the workers."""
        watcher = asyncio.create_task(self._relay(stop))
        try:
            async with self._engine.begin() as conn:
                # Every configured target, disabled ones too: a target without a state row
                # would block pruning, and a disabled one catches up when re-enabled.
                await state.ensure_targets(conn, list(self._targets))
            async with asyncio.TaskGroup() as group:
                for name in self._workers:
                    group.create_task(self._loop(name))
                group.create_task(self._prune_loop())
        finally:
            watcher.cancel()
            for worker in self._workers.values():
                await worker.aclose()

    async def _relay(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stop.set()
        self.wake()

    async def _prune_loop(self) -> None:
        """Delete the outbox rows every configured target has passed, now and then."""
        while not self._stop.is_set():
            try:
                async with self._engine.begin() as conn:
                    gone = await outbox.prune(conn, list(self._targets))
                if gone:
                    self._log.info("push.outbox_pruned", rows=gone)
            except Exception:  # the store: try again next time, never fatal
                self._log.exception("push.prune_failed")
            await _sleep_unless(self._stop, self._prune_every)

    async def _loop(self, name: str) -> None:
        worker = self._workers[name]
        target = worker.target
        wake = self._wakes[name]
        cron = croniter(target.reconcile_cron, datetime.now(UTC)) if target.reconcile_cron else None
        next_reconcile = cron.get_next(datetime) if cron else None
        failures = 0
        wait = 0.0
        while not self._stop.is_set():
            if failures:
                # Backing off: wakes (every SCIM write sends one) do not shorten the wait.
                await _sleep_unless(self._stop, wait)
            elif wait > 0:
                await _sleep_unless(wake, wait)
            if self._stop.is_set():
                return
            wake.clear()
            try:
                if next_reconcile is not None and datetime.now(UTC) >= next_reconcile:
                    await self.reconcile(name, dry_run=False)
                    next_reconcile = cron.get_next(datetime) if cron else None
                report = await worker.drain()
                for observe in self._observers:
                    observe(report)
            except (TargetQuarantined, Conflict):
                # Quarantined: an admin's resume is noticed at the next poll. Busy: another
                # replica holds the target; it drains it.
                failures, wait = 0, self._poll
                continue
            except TargetUnavailable as exc:  # a scheduled reconcile could not list the target
                self._log.warning("push.reconcile_failed", target=name, error=exc.detail)
                failures += 1
                wait = min(_MAX_BACKOFF, max(exc.retry_after or 0.0,
                                             self._poll * 2 ** min(failures, 8)))
                continue
            except Exception:  # a bug or the store: logged, retried later, never fatal
                self._log.exception("push.loop_error", target=name)
                failures += 1
                wait = min(_MAX_BACKOFF, self._poll * 2 ** min(failures, 8))
                continue
            if report.error is None:
                failures, wait = 0, self._poll
            else:
                failures += 1
                backoff = min(_MAX_BACKOFF, self._poll * 2 ** min(failures - 1, 8))
                wait = max(report.retry_after or 0.0, backoff * (0.5 + random.random() / 2))


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``event`` is set, whichever comes first."""
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except TimeoutError:
        pass
