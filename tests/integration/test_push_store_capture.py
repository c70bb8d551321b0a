"""Change capture: every change a sync or the SCIM API makes to a resource writes a push outbox
row in the same transaction, and only when push targets are configured."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from syncsvc.auth import create_token
from syncsvc.domain import RunMode, RunStatus
from syncsvc.http import create_app
from syncsvc.push import outbox
from syncsvc.settings import Settings, StoreSettings, TargetSettings
from syncsvc.store import create_engine, upgrade
from syncsvc.store.schema import MEMBERS, OUTBOX
from tests.integration.scimenv import Scim
from tests.integration.syncenv import (
    groups_by_name,
    pipeline,
    settings_for,
    sync_once,
    users_by_name,
)
from tests.support.slapd import Slapd

ENG = "ou=engineering,ou=people,dc=example,dc=com"
TARGETS = (TargetSettings(name="peer", url="http://127.0.0.1:9/scim/v2"),)

Row = tuple[str, str, str]  # kind, resource id, op


async def rows_after(settings: Settings, seq: int = 0) -> list[Row]:
    """Outbox rows after ``seq``, in order, as (kind, id, op)."""
    async with pipeline(settings) as service, service.engine.connect() as conn:
        return [(i.kind, i.resource_id, i.op) for i in await outbox.pending(conn, seq, 100_000)]


async def head(settings: Settings) -> int:
    async with pipeline(settings) as service, service.engine.connect() as conn:
        return await outbox.head_seq(conn)


class TestSync:
    async def test_a_sync_captures_each_change_once_per_transaction(
        self, slapd: Slapd, store_url: str, tmp_path: Path
    ) -> None:
        """First sync: every resource; unchanged re-sync: nothing; a modified entry: that user;
        a deleted manager: its delete, then its groups and the users it managed; a dry run and
        a store without targets: nothing at all."""
        plain = settings_for(slapd, store_url, on_missing="delete")
        settings = dataclasses.replace(plain, targets=TARGETS)

        dry = await sync_once(settings, dry_run=True)
        assert RunStatus.SUCCESS == dry.status
        assert [] == await rows_after(settings)

        assert RunStatus.SUCCESS == (await sync_once(settings)).status
        async with pipeline(settings) as service:
            users, groups = await users_by_name(service), await groups_by_name(service)
        first = await rows_after(settings)
        assert {("User", u.id, "upsert") for u in users.values()} | {
            ("Group", g.id, "upsert") for g in groups.values()} == set(first)
        with_members = await _groups_with_members(settings)
        # A page writes each resource once, with its manager when the manager came on an
        # earlier page or the same one (every manager here); resolving members is one more change.
        assert len(users) + len(groups) + len(with_members) == len(first)

        mark = await head(settings)
        assert RunStatus.SUCCESS == (await sync_once(settings)).status
        assert [] == await rows_after(settings, mark)

        slapd.modify(f"dn: uid=linus.torvalds,{ENG}\nchangetype: modify\n"
                     "replace: title\ntitle: Kernel maintainer\n")
        assert RunStatus.SUCCESS == (await sync_once(settings, RunMode.INCREMENTAL)).status
        assert [("User", users["linus.torvalds"].id, "upsert")] == await rows_after(settings, mark)

        mark = await head(settings)
        alan = users["alan.turing"]
        parents = await _parents(settings, alan.id)
        reports = {u.id for u in users.values() if u.manager_id == alan.id}
        assert parents and reports
        slapd.delete(f"uid=alan.turing,{ENG}")
        report = await sync_once(settings)
        assert (RunStatus.SUCCESS, 1) == (report.status, report.deleted)
        after = await rows_after(settings, mark)
        assert ("User", alan.id, "delete") == after[0]
        assert {("Group", g, "upsert") for g in parents} | {
            ("User", u, "upsert") for u in reports} == set(after[1:])

        # The same directory into a store with no targets: no outbox row is ever written.
        bare = dataclasses.replace(plain, store=StoreSettings(
            url=f"sqlite+aiosqlite:///{tmp_path / 'bare.db'}"))
        assert RunStatus.SUCCESS == (await sync_once(bare)).status
        assert 0 == await _outbox_count(bare)


async def _groups_with_members(settings: Settings) -> set[str]:
    async with pipeline(settings) as service, service.engine.connect() as conn:
        return set(await conn.scalars(select(MEMBERS.c.group_id).distinct()))


async def _parents(settings: Settings, member_id: str) -> set[str]:
    async with pipeline(settings) as service, service.engine.connect() as conn:
        return set(await conn.scalars(
            select(MEMBERS.c.group_id).where(MEMBERS.c.member_id == member_id)))


async def _outbox_count(settings: Settings) -> int:
    async with pipeline(settings) as service, service.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(OUTBOX)) or 0)


@pytest.fixture
async def scim_push(store_url: str, aiohttp_client: Any) -> AsyncIterator[tuple[Scim, Any]]:
    """A live SCIM server configured with one push target, and its engine."""
    settings = Settings(store=StoreSettings(url=store_url), targets=TARGETS)
    engine = create_engine(settings.store)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            token = await create_token(conn, name="tests", scopes="scim:read,scim:write",
                                       now=datetime.now(UTC))
        client = await aiohttp_client(create_app(engine, settings))
        yield Scim(client, token), engine
        await client.close()
    finally:
        await engine.dispose()


async def scim_rows(engine: Any, seq: int = 0) -> list[Row]:
    async with engine.connect() as conn:
        return [(i.kind, i.resource_id, i.op) for i in await outbox.pending(conn, seq, 1000)]


PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


class TestScim:
    async def test_each_scim_write_captures_its_resources(
        self, scim_push: tuple[Scim, Any]
    ) -> None:
        """Create, replace, patch (members too) and delete each record exactly the resources they
        changed, in order; a delete is recorded with the groups and reports it leaves."""
        scim, engine = scim_push
        boss = await scim.json("POST", "/Users", {"schemas": [USER], "userName": "boss"}, 201)
        managed = {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "manager": {"value": boss["id"]}}}
        ann = await scim.json("POST", "/Users", {"schemas": [USER], "userName": "ann", **managed},
                              201)
        team = await scim.json("POST", "/Groups", {
            "schemas": [GROUP], "displayName": "team",
            "members": [{"value": boss["id"]}]}, 201)
        await scim.json("PUT", f"/Users/{ann['id']}",
                        {"schemas": [USER], "userName": "ann", "title": "Engineer", **managed})
        await scim.json("PATCH", f"/Groups/{team['id']}", {"schemas": [PATCH], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": ann["id"]}]}]})
        await scim.json("PATCH", f"/Groups/{team['id']}", {"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "displayName", "value": "the team"}]})
        await scim.json("DELETE", f"/Users/{boss['id']}", expect=204)

        assert [
            ("User", boss["id"], "upsert"),
            ("User", ann["id"], "upsert"),
            ("Group", team["id"], "upsert"),
            ("User", ann["id"], "upsert"),
            ("Group", team["id"], "upsert"),
            ("Group", team["id"], "upsert"),
            ("User", boss["id"], "delete"),
            ("User", ann["id"], "upsert"),  # lost her manager
            ("Group", team["id"], "upsert"),  # lost a member
        ] == await scim_rows(engine)

    async def test_a_write_that_fails_leaves_no_row(self, scim_push: tuple[Scim, Any]) -> None:
        """A refused write (a member that does not exist, a taken userName, a no-op PATCH)
        rolls back its outbox row with it, or never writes one."""
        scim, engine = scim_push
        ann = await scim.json("POST", "/Users", {"schemas": [USER], "userName": "ann"}, 201)
        mark = len(await scim_rows(engine))

        await scim.json("POST", "/Groups", {"schemas": [GROUP], "displayName": "ghosts",
                                            "members": [{"value": "no-such-id"}]}, 400)
        await scim.json("POST", "/Users", {"schemas": [USER], "userName": "ANN"}, 409)
        await scim.json("PATCH", f"/Users/{ann['id']}", {"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "userName", "value": "ann"}]})

        assert 1 == mark
        assert [("User", ann["id"], "upsert")] == await scim_rows(engine)

    async def test_without_targets_scim_writes_record_nothing(
        self, store_url: str, aiohttp_client: Any
    ) -> None:
        from tests.integration.scimenv import serving

        async with serving(store_url, aiohttp_client) as scim:
            user = await scim.json("POST", "/Users", {"schemas": [USER], "userName": "x"}, 201)
            await scim.json("DELETE", f"/Users/{user['id']}", expect=204)
        settings = Settings(store=StoreSettings(url=store_url))
        engine = create_engine(settings.store)
        try:
            async with engine.connect() as conn:
                assert 0 == await conn.scalar(select(func.count()).select_from(OUTBOX))
        finally:
            await engine.dispose()
