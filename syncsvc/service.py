"""Composition root: the only place that builds concrete engines, directories and apps."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import AsyncIterator
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
from syncsvc.settings import Settings
from syncsvc.store import create_engine, runs, upgrade
from syncsvc.sync import RunLock, SyncDeps, SyncOptions, run_sync
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
                            enricher=enricher)
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
        service = dataclasses.replace(
            service, sync=dataclasses.replace(service.sync, observers=(metrics.observe_run,)))
        scheduler = Scheduler(service.sync, settings.schedule)
        admin = AdminState(deps=service.sync, scheduler=scheduler)
        app = create_app(service.engine, settings, admin=admin, metrics=metrics)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=30)
        await runner.setup()
        site = web.TCPSite(runner, settings.http.host, settings.http.port)
        await site.start()
        log.info("http.listening", host=settings.http.host, port=settings.http.port)
        background = asyncio.create_task(_sync_in_background(service, scheduler, settings))
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
            await runner.cleanup()
            log.info("shutdown.done")


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
