"""Helpers for the push tests: a target's settings, a drain, and reading our links back."""

from __future__ import annotations

import dataclasses
from typing import Any

from syncsvc.push import state
from syncsvc.push.reconcile import ReconcileReport, reconcile
from syncsvc.push.worker import DrainReport, PushWorker
from syncsvc.service import open_store
from syncsvc.settings import (
    DEMO_LDIF,
    LdapSettings,
    Settings,
    StoreSettings,
    TargetAuthSettings,
    TargetSettings,
)
from tests.integration.syncenv import settings_for
from tests.support.scim2server import Scim2Server
from tests.support.slapd import Slapd


def target_for(server: Scim2Server | Any, name: str = "ref", **over: Any) -> TargetSettings:
    """A target for a server with ``url`` and ``token`` (scim2-server or a syncsvc peer)."""
    over.setdefault("timeout", 5.0)
    over.setdefault("max_retries", 2)
    return TargetSettings(name=name, url=over.pop("url", server.url),
                          auth=TargetAuthSettings(kind="bearer", token=server.token), **over)


def demo_settings(store_url: str, *targets: TargetSettings, ldif: str | None = None) -> Settings:
    """The bundled demo directory (200 users, 20 groups) read as LDIF, into ``store_url``."""
    return Settings(ldap=LdapSettings(url=("ldif://" + (ldif or str(DEMO_LDIF)),)),
                    store=StoreSettings(url=store_url), targets=targets)


def ldap_settings(slapd: Slapd, store_url: str, *targets: TargetSettings, **sync: Any) -> Settings:
    return dataclasses.replace(settings_for(slapd, store_url, **sync), targets=targets)


async def drain(settings: Settings, **kw: Any) -> DrainReport:
    """One drain of the first target, with a worker made for it (as `targets push` does)."""
    async with open_store(settings) as engine:
        worker = PushWorker(engine, settings.targets[0])
        try:
            return await worker.drain(**kw)
        finally:
            await worker.aclose()


async def reconcile_once(settings: Settings, *, dry_run: bool) -> ReconcileReport:
    async with open_store(settings) as engine:
        return await reconcile(engine, settings.targets[0], dry_run=dry_run)


async def target_state(settings: Settings) -> state.TargetState:
    async with open_store(settings) as engine, engine.connect() as conn:
        return await state.get_target(conn, settings.targets[0].name)


async def links(settings: Settings, kind: str = "User") -> dict[str, state.RemoteLink]:
    async with open_store(settings) as engine, engine.connect() as conn:
        return {link.resource_id: link
                for link in await state.links(conn, settings.targets[0].name, kind)}
