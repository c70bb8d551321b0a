"""Builds a real pipeline (slapd -> mapping -> store) for sync tests, and reads the store back."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select

from syncsvc.domain import RunMode
from syncsvc.service import Service, open_service
from syncsvc.settings import LdapSettings, Settings, StoreSettings, SyncSettings
from syncsvc.store.schema import GroupMemberRow, GroupRow, UserRow
from syncsvc.sync import SyncOptions, SyncReport, run_sync
from tests.support.slapd import Slapd


def settings_for(slapd: Slapd, store_url: str, **sync: Any) -> Settings:
    ldap_over = {k[5:]: sync.pop(k) for k in list(sync) if k.startswith("ldap_")}
    return Settings(
        ldap=LdapSettings(
            url=(slapd.url,), bind_dn=slapd.service_dn, bind_password=slapd.service_password,
            base_dn=slapd.base_dn, page_size=7, **ldap_over,
        ),
        store=StoreSettings(url=store_url),
        sync=SyncSettings(**sync),
    )


@asynccontextmanager
async def pipeline(settings: Settings) -> AsyncIterator[Service]:
    async with open_service(settings) as service:
        yield service


async def sync_once(settings: Settings, mode: RunMode = RunMode.FULL, **opts: Any) -> SyncReport:
    async with open_service(settings) as service:
        return await run_sync(service.sync, SyncOptions(mode=mode, **opts))


def with_sync(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, sync=dataclasses.replace(settings.sync, **changes))


async def users_by_name(service: Service) -> dict[str, Any]:
    async with service.engine.connect() as conn:
        rows = await conn.execute(select(UserRow.__table__))
        return {r.user_name: r for r in rows}


async def groups_by_name(service: Service) -> dict[str, Any]:
    async with service.engine.connect() as conn:
        rows = await conn.execute(select(GroupRow.__table__))
        return {r.display_name: r for r in rows}


async def members_of(service: Service, group: str) -> set[str]:
    """Names (userName or group displayName) of a group's resolved members."""
    users = {r.id: name for name, r in (await users_by_name(service)).items()}
    groups = await groups_by_name(service)
    group_names = {r.id: name for name, r in groups.items()}
    async with service.engine.connect() as conn:
        rows = await conn.execute(
            select(GroupMemberRow.member_id).where(GroupMemberRow.group_id == groups[group].id)
        )
        return {users.get(mid) or group_names[mid] for (mid,) in rows}
