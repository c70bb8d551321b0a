"""A resource whose representation shows another's name or membership gets a new version (ETag)
when that changes, on both stores: a User shows its groups and its manager's displayName, a
Group its members' display names (syncsvc.store.dependents). Through SCIM writes over real
HTTP, and through the writes of a sync run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.domain import EntryKind, GroupRecord, UserRecord
from syncsvc.store import writes
from syncsvc.store.schema import GROUPS, USERS
from syncsvc.store.writes import WriteContext
from tests.integration.scimenv import Scim, scim  # noqa: F401 - fixture

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(ops)}


async def new_user(scim: Scim, name: str, manager: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [USER], "userName": name, "displayName": name.title()}
    if manager:
        body["schemas"].append(ENTERPRISE)
        body[ENTERPRISE] = {"manager": {"value": manager}}
    return await scim.json("POST", "/Users", body, expect=201)


async def new_group(scim: Scim, name: str, *members: str) -> dict[str, Any]:
    return await scim.json("POST", "/Groups", {"schemas": [GROUP], "displayName": name,
                                               "members": [{"value": m} for m in members]},
                           expect=201)


async def read_changed(scim: Scim, path: str, old: dict[str, Any]) -> dict[str, Any]:
    """The resource again, asked with the ETag the client held: it must not be 304."""
    response = await scim.request("GET", path, headers={"If-None-Match": old["meta"]["version"]})
    assert 200 == response.status, f"{path} still answers 304 to its old ETag"
    now = await response.json(content_type=None)
    assert now["meta"]["version"] != old["meta"]["version"]
    assert response.headers["ETag"] == now["meta"]["version"]
    assert now["meta"]["lastModified"] >= old["meta"]["lastModified"]
    return now


async def read_same(scim: Scim, path: str, old: dict[str, Any]) -> None:
    response = await scim.request("GET", path, headers={"If-None-Match": old["meta"]["version"]})
    assert 304 == response.status


class TestScimWrites:
    async def test_joining_and_leaving_a_group_moves_the_users_version(self, scim: Scim) -> None:
        ada = await new_user(scim, "ada")
        bob = await new_user(scim, "bob")
        group = await new_group(scim, "Pilots")

        await scim.json("PATCH", f"/Groups/{group['id']}",
                        patch({"op": "add", "path": "members", "value": [{"value": ada["id"]}]}))
        ada2 = await read_changed(scim, f"/Users/{ada['id']}", ada)
        assert ["Pilots"] == [g["display"] for g in ada2["groups"]]
        await read_same(scim, f"/Users/{bob['id']}", bob)

        await scim.json("PATCH", f"/Groups/{group['id']}",
                        patch({"op": "remove", "path": f'members[value eq "{ada["id"]}"]'}))
        ada3 = await read_changed(scim, f"/Users/{ada['id']}", ada2)
        assert not ada3.get("groups")

        # PUT of the group with its whole member list (Okta): the joiner moves too.
        await scim.json("PUT", f"/Groups/{group['id']}", {
            "schemas": [GROUP], "displayName": "Pilots", "members": [{"value": bob["id"]}]})
        await read_changed(scim, f"/Users/{bob['id']}", bob)
        await read_same(scim, f"/Users/{ada['id']}", ada3)

    async def test_a_renamed_group_moves_its_members_and_parent_groups(self, scim: Scim) -> None:
        ada = await new_user(scim, "ada")
        inner = await new_group(scim, "Pilots", ada["id"])
        outer = await new_group(scim, "Crew", inner["id"])
        ada = await scim.json("GET", f"/Users/{ada['id']}")

        await scim.json("PATCH", f"/Groups/{inner['id']}",
                        patch({"op": "replace", "value": {"displayName": "Aviators"}}))

        ada2 = await read_changed(scim, f"/Users/{ada['id']}", ada)
        assert ["Aviators"] == [g["display"] for g in ada2["groups"]]
        outer2 = await read_changed(scim, f"/Groups/{outer['id']}", outer)
        assert ["Aviators"] == [m["display"] for m in outer2["members"]]

    async def test_a_renamed_user_moves_its_reports_and_groups(self, scim: Scim) -> None:
        boss = await new_user(scim, "boss")
        worker = await new_user(scim, "worker", manager=boss["id"])
        other = await new_user(scim, "other")
        group = await new_group(scim, "Board", boss["id"])

        await scim.json("PATCH", f"/Users/{boss['id']}",
                        patch({"op": "replace", "path": "displayName", "value": "The Boss"}))

        worker2 = await read_changed(scim, f"/Users/{worker['id']}", worker)
        assert "The Boss" == worker2[ENTERPRISE]["manager"]["displayName"]
        group2 = await read_changed(scim, f"/Groups/{group['id']}", group)
        assert ["The Boss"] == [m["display"] for m in group2["members"]]
        await read_same(scim, f"/Users/{other['id']}", other)

        # A write that keeps the name moves nobody else.
        await scim.json("PATCH", f"/Users/{boss['id']}",
                        patch({"op": "replace", "path": "title", "value": "CEO"}))
        await read_same(scim, f"/Users/{worker['id']}", worker2)
        await read_same(scim, f"/Groups/{group['id']}", group2)

    async def test_deleting_a_manager_or_a_group_moves_who_showed_it(self, scim: Scim) -> None:
        boss = await new_user(scim, "boss")
        worker = await new_user(scim, "worker", manager=boss["id"])
        group = await new_group(scim, "Board", worker["id"])
        worker = await scim.json("GET", f"/Users/{worker['id']}")

        await scim.json("DELETE", f"/Users/{boss['id']}", expect=204)
        worker2 = await read_changed(scim, f"/Users/{worker['id']}", worker)
        assert "manager" not in worker2.get(ENTERPRISE, {})

        await scim.json("DELETE", f"/Groups/{group['id']}", expect=204)
        worker3 = await read_changed(scim, f"/Users/{worker['id']}", worker2)
        assert not worker3.get("groups")


T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
BASE = "ou=people,dc=example,dc=com"


def user(n: int, *, display: str | None = None, manager: int | None = None) -> UserRecord:
    name = f"user{n}"
    resource: dict[str, Any] = {"userName": name, "active": True}
    if display:
        resource["displayName"] = display
    return UserRecord(anchor=f"u-{n}", dn=f"uid={name},{BASE}", user_name=name, resource=resource,
                      manager_dn=None if manager is None else f"uid=user{manager},{BASE}")


def group(n: int, *members: int, name: str | None = None, groups: Sequence[int] = ()) -> GroupRecord:
    display = name or f"group{n}"
    dns = [f"uid=user{m},{BASE}" for m in members] + [f"cn=group{g},{BASE}" for g in groups]
    return GroupRecord(anchor=f"g-{n}", dn=f"cn=group{n},{BASE}", display_name=display,
                       resource={"displayName": display}, member_dns=tuple(dns))


async def run(engine: AsyncEngine, now: datetime, users: Sequence[UserRecord] = (),
              groups: Sequence[GroupRecord] = ()) -> None:
    """One sync run's writes: users, groups, then members and managers, as the pipeline orders them."""
    ctx = WriteContext(now=now)
    async with engine.begin() as conn:
        if users:
            await writes.upsert_users(conn, ctx, users)
        written = (await writes.upsert_groups(conn, ctx, groups)).changed_ids if groups else []
        await writes.resolve_members(conn, ctx, already_bumped=set(written))
        await writes.resolve_managers(conn, ctx)


async def versions(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = list(await conn.execute(select(USERS.c.anchor, USERS.c.version)))
        rows += list(await conn.execute(select(GROUPS.c.anchor, GROUPS.c.version)))
    return {anchor: version for anchor, version in rows}


class TestSyncWrites:
    USERS3 = (user(1, display="One"), user(2, display="Two", manager=1), user(3, display="Three"))

    async def test_a_first_load_gives_every_resource_version_1(self, engine: AsyncEngine) -> None:
        """Members and managers resolved in the run that wrote them do not move them again."""
        await run(engine, T0, self.USERS3, [group(1, 1, 2), group(2, groups=[1])])
        assert {"u-1": 1, "u-2": 1, "u-3": 1, "g-1": 1, "g-2": 1} == await versions(engine)

    async def test_a_directory_rename_moves_those_who_show_the_name(self, engine: AsyncEngine) -> None:
        groups = [group(1, 1, 2), group(2, groups=[1])]
        await run(engine, T0, self.USERS3, groups)

        # user1 renamed: its group and its report move; user3 and group2 do not.
        await run(engine, T0 + timedelta(hours=1),
                  [user(1, display="Uno"), *self.USERS3[1:]], groups)
        assert {"u-1": 2, "u-2": 2, "u-3": 1, "g-1": 2, "g-2": 1} == await versions(engine)

        # group1 renamed: its members and the group that contains it move.
        await run(engine, T0 + timedelta(hours=2), groups=[group(1, 1, 2, name="Ones"), groups[1]])
        assert {"u-1": 3, "u-2": 3, "u-3": 1, "g-1": 3, "g-2": 2} == await versions(engine)

    async def test_membership_changes_move_the_users_who_joined_or_left(self, engine: AsyncEngine) -> None:
        await run(engine, T0, self.USERS3, [group(1, 1, 2)])

        await run(engine, T0 + timedelta(hours=1), groups=[group(1, 2, 3)])

        assert {"u-1": 2, "u-2": 1, "u-3": 2, "g-1": 2} == await versions(engine)

    async def test_removals_move_reports_and_members(self, engine: AsyncEngine) -> None:
        await run(engine, T0, self.USERS3, [group(1, 2, 3)])
        later = WriteContext(now=T0 + timedelta(hours=1))
        async with engine.begin() as conn:
            doomed = await writes.plan_removals(conn, EntryKind.USER, keep={"u-2", "u-3"},
                                                policy="delete")
            doomed += await writes.plan_removals(conn, EntryKind.GROUP, keep=set(), policy="delete")
            await writes.remove(conn, later, doomed, policy="delete")

        # user2 lost its manager and its group, in one new version; user3 lost its group.
        assert {"u-2": 2, "u-3": 2} == await versions(engine)
        async with engine.connect() as conn:
            assert await conn.scalar(select(USERS.c.manager_id).where(USERS.c.anchor == "u-2")) is None
