"""Composition root: the only place that builds concrete engines, directories and apps."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.admin import AdminState
from syncsvc.domain import RunMode
from syncsvc.enrich import compile_enrichment
from syncsvc.errors import SyncBusy
from syncsvc.http import create_app
from syncsvc.http.metrics import Metrics
from syncsvc.ldap import flavor_for, open_directory
from syncsvc.mapping import compile_mapping
from syncsvc.push import PUSH_RUNNER
from syncsvc.push.runner import PushRunner
from syncsvc.settings import Settings
from syncsvc.store import create_engine, runs, upgrade
from syncsvc.sync import RunLock, SyncDeps, SyncOptions, SyncReport, run_sync
from syncsvc.sync.fingerprint import rules_fingerprint
from syncsvc.sync.scheduler import Scheduler

__all__ = ["Service", "config_dir", "open_service", "open_store", "serve_forever"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Service:
    settings: Settings
    engine: AsyncEngine
    sync: SyncDeps


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The store's engine, its schema brought up to date (an empty database gets it all)."""
    engine = create_engine(settings.store)
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Service]:
    """Everything a sync or the server needs; closed in reverse order on exit."""
    flavor = flavor_for(settings.ldap)
    mapping = compile_mapping(settings.ldap.flavor, settings.mapping)
    enricher = compile_enrichment(settings.enrich, base_dir=config_dir(settings))
    async with open_store(settings) as engine:
        directory = open_directory(settings.ldap, flavor)
        try:
            deps = SyncDeps(engine=engine, directory=directory, flavor=flavor, mapping=mapping,
                            ldap=settings.ldap, sync=settings.sync, lock=RunLock(engine),
                            enricher=enricher,
                            rules_fingerprint=rules_fingerprint(mapping, settings.enrich),
                            capture_changes=bool(settings.targets))
            yield Service(settings=settings, engine=engine, sync=deps)
        finally:
            await directory.aclose()


def config_dir(settings: Settings) -> Path:
    """The folder relative paths in the config are taken from (lookup files)."""
    return (Path.cwd() / settings.source).parent if settings.source else Path.cwd()


async def serve_forever(settings: Settings) -> None:
    """Serve HTTP and run the scheduler until SIGINT/SIGTERM, then stop in order.

    At start: a full run if the store never had a successful one, else an incremental run.
    On a signal: a running sync stops at its next page boundary (the page in flight commits
    whole), then the scheduler is cancelled, in-flight requests finish, exit 0.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_service(settings) as service:
        metrics = Metrics()
        push = (PushRunner(service.engine, settings, observers=(metrics.observe_drain,))
                if settings.targets else None)
        observers = (metrics.observe_run, *((_wake_on_run(push),) if push else ()))
        service = dataclasses.replace(
            service, sync=dataclasses.replace(service.sync, observers=observers))
        scheduler = Scheduler(service.sync, settings.schedule)
        admin = AdminState(deps=service.sync, scheduler=scheduler)
        app = create_app(service.engine, settings, admin=admin, metrics=metrics)
        if push is not None:
            app[PUSH_RUNNER] = push
            app.on_response_prepare.append(_wake_on_write(push))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=30)
        await runner.setup()
        site = web.TCPSite(runner, settings.http.host, settings.http.port)
        await site.start()
        log.info("http.listening", host=settings.http.host, port=settings.http.port)
        background = asyncio.create_task(_sync_in_background(service, scheduler, settings))
        push_stop = asyncio.Event()
        pushing = asyncio.create_task(push.run(push_stop)) if push else None
        try:
            await stop.wait()
            log.info("shutdown.started")
        finally:
            # A running sync stops at its next page boundary; then everything else is cancelled.
            service.sync.stopping.set()
            for _ in range(600):
                if not service.sync.lock.busy:
                    break
                await asyncio.sleep(0.05)
            background.cancel()
            for task in list(admin.tasks):
                task.cancel()
            await asyncio.gather(background, *admin.tasks, return_exceptions=True)
            # Pushes stop at a clean point: the page in flight is saved with its cursor. A
            # target that hangs is not waited for past _PUSH_GRACE: cancelled, the page in
            # flight is redone by the next start (matching by externalId, so no duplicates).
            push_stop.set()
            if pushing is not None:
                done, _ = await asyncio.wait({pushing}, timeout=_PUSH_GRACE)
                if not done:
                    pushing.cancel()
                await asyncio.gather(pushing, return_exceptions=True)
            await runner.cleanup()
            log.info("shutdown.done")


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PUSH_GRACE = 20.0  # seconds a shutdown waits for the push loops to reach a clean point


def _wake_on_run(push: PushRunner) -> Callable[[SyncReport], None]:
    """A sync observer: a finished run that wrote something wakes the push workers."""

    def observe(report: SyncReport) -> None:
        if not report.dry_run:
            push.wake()

    return observe


def _wake_on_write(
    push: PushRunner,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """After a successful SCIM write (its transaction, outbox row included, has committed by
    the time the response is prepared) the push workers drain soon."""

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        if (request.method in _WRITES and response.status < 300
                and request.path.startswith("/scim/v2/")):
            push.wake()

    return on_prepare


async def _sync_in_background(service: Service, scheduler: Scheduler, settings: Settings) -> None:
    async with service.engine.connect() as conn:
        synced_before = await runs.last_success(conn) is not None
    mode = RunMode.INCREMENTAL if synced_before else RunMode.FULL
    try:
        report = await run_sync(service.sync, SyncOptions(mode=mode, trigger="startup"))
        scheduler.record(report, scheduler.clock())
        log.info("sync.startup_done", summary=report.summary())
    except SyncBusy:
        log.info("sync.startup_skipped", reason="another replica is syncing")
    if settings.schedule.enabled:
        await scheduler.run_forever()
