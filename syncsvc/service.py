"""Composition root: the only place that builds concrete engines, directories and apps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.domain import RunMode
from syncsvc.http import create_app
from syncsvc.ldap import flavor_for, open_directory
from syncsvc.mapping import compile_mapping
from syncsvc.settings import Settings
from syncsvc.store import create_engine, upgrade
from syncsvc.sync import RunLock, SyncDeps, SyncOptions, run_sync

__all__ = ["Service", "open_service", "open_store", "serve_forever"]

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
    async with open_store(settings) as engine:
        directory = open_directory(settings.ldap, flavor)
        try:
            deps = SyncDeps(engine=engine, directory=directory, flavor=flavor, mapping=mapping,
                            ldap=settings.ldap, sync=settings.sync, lock=RunLock(engine))
            yield Service(settings=settings, engine=engine, sync=deps)
        finally:
            await directory.aclose()


async def serve_forever(settings: Settings) -> None:
    """Serve HTTP on settings.http and run a full sync at start; stops on SIGINT/SIGTERM."""
    async with open_service(settings) as service:
        runner = web.AppRunner(create_app(service.engine, settings), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.http.host, settings.http.port)
        await site.start()
        log.info("http.listening", host=settings.http.host, port=settings.http.port)
        try:
            report = await run_sync(service.sync, SyncOptions(mode=RunMode.FULL, trigger="startup"))
            log.info("sync.startup_done", summary=report.summary())
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
