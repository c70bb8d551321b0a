"""Push to the reference SCIM server (scim2-server from PyPI, a real process on loopback).

Our store is filled by real syncs of the bundled demo directory (200 users, 20 groups, managers,
nested groups) read as LDIF; a change is an edit of that LDIF and another full sync, so every
outbox row comes from the real sync writes.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from syncsvc.errors import TargetQuarantined
from syncsvc.push import state
from syncsvc.service import open_store
from syncsvc.settings import DEMO_LDIF, Settings
from syncsvc.store.schema import GROUPS, MEMBERS, USERS
from tests.integration.pushenv import (
    demo_settings,
    drain,
    links,
    reconcile_once,
    target_for,
    target_state,
)
from tests.integration.syncenv import sync_once, with_sync
from tests.support.faultproxy import Fault, fault_proxy
from tests.support.scim2server import Scim2Server, scim2_server

__all__ = ["scim2_server"]

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class Directory:
    """The demo LDIF copied to a file the test edits; each sync reads it in full."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "directory.ldif"
        self.path.write_text(DEMO_LDIF.read_text())

    def _block(self, text: str, uid: str) -> tuple[int, int]:
        start = text.index(f"dn: uid={uid},")
        end = text.find("\n\n", start)
        return start, len(text) if end < 0 else end

    def set(self, uid: str, attr: str, value: str) -> None:
        text = self.path.read_text()
        start, end = self._block(text, uid)
        block = re.sub(rf"^{attr}::? .*$", f"{attr}: {value}", text[start:end], flags=re.M)
        if f"\n{attr}: {value}" not in block:
            block += f"\n{attr}: {value}"
        self.path.write_text(text[:start] + block + text[end:])

    def drop(self, uid: str) -> None:
        text = self.path.read_text()
        start, end = self._block(text, uid)
        self.path.write_text(text[:start] + text[end + 2:])


@pytest.fixture
def directory(tmp_path: Path) -> Directory:
    return Directory(tmp_path)


async def ours(settings: Settings) -> dict[str, Any]:
    """Our users by userName (rows), plus groups by displayName with their member ids."""
    async with open_store(settings) as engine, engine.connect() as conn:
        users = {r.user_name: r for r in await conn.execute(select(USERS))}
        groups = {r.display_name: r for r in await conn.execute(select(GROUPS))}
        members: dict[str, set[str]] = {}
        for gid, mid in await conn.execute(select(MEMBERS.c.group_id, MEMBERS.c.member_id)):
            members.setdefault(gid, set()).add(mid)
    return {"users": users, "groups": groups, "members": members}


def some_users(data: dict[str, Any], n: int) -> list[str]:
    """userNames of ``n`` users that manage nobody (so removing them strands no one)."""
    managers = {r.manager_id for r in data["users"].values()}
    return sorted(name for name, r in data["users"].items() if r.id not in managers)[:n]


class TestInitialPush:
    async def test_demo_directory_reaches_an_empty_target(
        self, scim2_server: Scim2Server, store_url: str
    ) -> None:
        """200 users and 20 groups arrive once, with our id as externalId, members and
        managers as the target's ids; a second drain sends nothing."""
        settings = demo_settings(store_url, target_for(scim2_server))
        await sync_once(settings)
        started = time.monotonic()
        report = await drain(settings)
        print(f"\ndemo directory -> empty scim2-server: {time.monotonic() - started:.2f}s "
              f"({report.pushed} resources)")
        remote_users, remote_groups = scim2_server.users(), scim2_server.groups()
        assert (200, 20, 0) == (len(remote_users), len(remote_groups), report.failed)
        data = await ours(settings)
        user_links = await links(settings, "User")
        group_links = await links(settings, "Group")
        remote_of = {rid: link.remote_id for rid, link in {**user_links, **group_links}.items()}
        for name, row in data["users"].items():
            remote = remote_users[name]
            assert (row.id, remote_of[row.id]) == (remote["externalId"], remote["id"])
            assert row.id != remote["id"]
            manager = remote.get(ENTERPRISE, {}).get("manager", {}).get("value")
            assert (remote_of[row.manager_id] if row.manager_id else None) == manager
        for name, row in data["groups"].items():
            remote = remote_groups[name]
            assert row.id == remote["externalId"]
            want = {remote_of[m] for m in data["members"].get(row.id, set())}
            assert want == {m["value"] for m in remote.get("members") or []}, name
        again = await drain(settings)
        assert (0, 0) == (again.pushed, again.failed)
        assert 200 == len(scim2_server.users())

    async def test_preexisting_remote_users_are_matched_not_duplicated(
        self, scim2_server: Scim2Server, store_url: str
    ) -> None:
        """Users and a group already on the target (by userName / displayName) are adopted."""
        settings = demo_settings(store_url, target_for(scim2_server))
        await sync_once(settings)
        data = await ours(settings)
        names = some_users(data, 3)
        before = {n: scim2_server.post("/Users", {"schemas": [USER], "userName": n,
                                                   "title": "stale"})["id"] for n in names}
        group = sorted(data["groups"])[0]
        gid = scim2_server.post("/Groups", {"schemas": [GROUP], "displayName": group})["id"]
        report = await drain(settings)
        users = scim2_server.users()
        assert (200, 20, 0) == (len(users), len(scim2_server.groups()), report.failed)
        for name in names:
            assert before[name] == users[name]["id"]
            assert data["users"][name].id == users[name]["externalId"]
            assert "stale" != users[name].get("title")
        assert gid == scim2_server.groups()[group]["id"]

    async def test_a_refused_resource_is_recorded_and_does_not_block_the_rest(
        self, scim2_server: Scim2Server, store_url: str
    ) -> None:
        """Matching only by externalId, a taken userName is a 409 for that user alone: its
        link records the target's detail; the 199 others go; the target is not failing."""
        settings = demo_settings(store_url, target_for(scim2_server, match_by=("externalId",)))
        await sync_once(settings)
        data = await ours(settings)
        taken = some_users(data, 1)[0]
        scim2_server.post("/Users", {"schemas": [USER], "userName": taken})
        report = await drain(settings)
        assert (1, 200) == (report.failed, len(scim2_server.users()))
        link = (await links(settings))[data["users"][taken].id]
        assert "failed" == link.status and "409" in (link.last_error or "")
        assert "already in use" in (link.last_error or "")
        current = await target_state(settings)
        assert (0, None, 1) == (current.consecutive_failures, current.last_error,
                                current.failed_resources)


class TestChanges:
    async def test_change_scope_and_membership_reach_the_target(
        self, scim2_server: Scim2Server, store_url: str, directory: Directory
    ) -> None:
        """After one sync and one drain: a new title arrives, a user leaving the scope is
        deactivated remotely (and leaves its groups there), a returning user is active again."""
        settings = demo_settings(
            store_url, target_for(scim2_server, users_filter='title ne "Left"'),
            ldif=str(directory.path))
        await sync_once(settings)
        await drain(settings)
        data = await ours(settings)
        changed, leaver = some_users(data, 2)
        directory.set(changed, "title", "Chief Push Officer")
        directory.set(leaver, "title", "Left")
        await sync_once(settings)
        report = await drain(settings)
        users = scim2_server.users()
        leaver_groups = sum(data["users"][leaver].id in m for m in data["members"].values())
        # The changed user, and each group of the leaver (it leaves their member list there).
        assert (1 + leaver_groups, 1) == (report.pushed, report.removed)
        assert "Chief Push Officer" == users[changed]["title"]
        assert False is users[leaver]["active"]
        leaver_remote = users[leaver]["id"]
        assert all(leaver_remote not in {m["value"] for m in g.get("members") or []}
                   for g in scim2_server.groups().values())
        directory.set(leaver, "title", "Back Again")
        await sync_once(settings)
        await drain(settings)
        users = scim2_server.users()
        assert (True, leaver_remote, 200) == (users[leaver]["active"], users[leaver]["id"],
                                              len(users))

    async def test_deletions_over_the_guard_are_held_until_allowed(
        self, scim2_server: Scim2Server, store_url: str, directory: Directory
    ) -> None:
        """3 users deleted here with a guard of 2: held (still active there, cursor kept, a
        later change still goes out); a drain allowing removals deactivates them."""
        settings = demo_settings(store_url, target_for(scim2_server, deletion_guard=2),
                                 ldif=str(directory.path))
        settings = with_sync(settings, on_missing="delete")
        await sync_once(settings)
        await drain(settings)
        *gone, changed = some_users(await ours(settings), 4)
        for name in gone:
            directory.drop(name)
        await sync_once(settings)
        directory.set(changed, "title", "Changed While Held")
        await sync_once(settings)
        held = await drain(settings)
        assert (True, 0) == (held.held, held.removed)
        assert all(scim2_server.users()[n]["active"] for n in gone)
        # Other changes are not held back by the removals waiting for a confirmation.
        assert "Changed While Held" == scim2_server.users()[changed]["title"]
        assert 0 < (await target_state(settings)).queue_depth
        allowed = await drain(settings, allow_removals=True)
        assert (False, 3) == (allowed.held, allowed.removed)
        assert not any(scim2_server.users()[n]["active"] for n in gone)
        assert 0 == (await target_state(settings)).queue_depth


class TestFailures:
    async def test_target_unreachable_then_back_loses_nothing(
        self, scim2_server: Scim2Server, store_url: str, directory: Directory
    ) -> None:
        """While the target hangs, drains fail and keep the cursor; once it answers, every
        change arrives and nothing is duplicated."""
        settings = demo_settings(store_url, target_for(scim2_server, timeout=0.5, max_retries=0),
                                 ldif=str(directory.path))
        # The first push of 200 users with the default timeout: at 0.5 s a slow machine saw one
        # of its requests time out, a failure before the target ever hung.
        await sync_once(settings)
        assert (await drain(demo_settings(store_url, target_for(scim2_server, max_retries=0),
                                          ldif=str(directory.path)))).error is None
        names = some_users(await ours(settings), 3)
        for name in names:
            directory.set(name, "title", "Changed While Down")
        await sync_once(settings)
        scim2_server.pause()
        try:
            failed = await drain(settings)
            failed_again = await drain(settings)
        finally:
            scim2_server.resume()
        assert failed.error and failed_again.error
        current = await target_state(settings)
        assert (2, True) == (current.consecutive_failures, current.queue_depth > 0)
        report = await drain(settings)
        assert (None, 3) == (report.error, report.pushed)
        users = scim2_server.users()
        assert 200 == len(users)
        assert all("Changed While Down" == users[n]["title"] for n in names)
        assert (0, 0) == ((await target_state(settings)).consecutive_failures,
                          (await target_state(settings)).queue_depth)

    async def test_429_with_retry_after_is_honoured(
        self, scim2_server: Scim2Server, store_url: str
    ) -> None:
        """The target throttles creates (429, Retry-After: 1) twice: the drain waits and
        completes; nothing is duplicated."""
        async with fault_proxy(scim2_server.url.removesuffix("/v2")) as proxy:
            proxy.when = lambda request: request.method == "POST"
            proxy.inject(Fault(429, {"Retry-After": "1"}), Fault(429, {"Retry-After": "1"}))
            target = target_for(scim2_server, url=proxy.url + "/v2")
            settings = demo_settings(store_url, target)
            await sync_once(settings)
            report = await drain(settings)
        assert (None, 220, 2) == (report.error, report.pushed, proxy.served_faults)
        assert (200, 20) == (len(scim2_server.users()), len(scim2_server.groups()))

    async def test_quarantine_after_repeated_failures_until_resumed(
        self, scim2_server: Scim2Server, store_url: str
    ) -> None:
        """Two failed drains with quarantine_after=2: quarantined, nothing is tried; after an
        admin's resume the next drain pushes everything."""
        settings = demo_settings(store_url, target_for(scim2_server, quarantine_after=2,
                                                       max_retries=0))
        await sync_once(settings)
        scim2_server.stop()
        await drain(settings)
        await drain(settings)
        current = await target_state(settings)
        assert current.quarantined and "2 consecutive failures" in (current.quarantine_reason
                                                                    or "")
        scim2_server.start()
        with pytest.raises(TargetQuarantined):
            await drain(settings)
        assert 0 == len(scim2_server.users())
        async with open_store(settings) as engine, engine.begin() as conn:
            await state.resume(conn, "ref")
        report = await drain(settings)
        assert (None, 200) == (report.error, len(scim2_server.users()))
        assert not (await target_state(settings)).quarantined


class TestReconcile:
    async def test_reconcile_repairs_drift_made_on_the_target(
        self, scim2_server: Scim2Server, store_url: str
    ) -> None:
        """Edits, a deletion and a membership change made directly on the target: the dry run
        lists them and changes nothing; the reconcile repairs them; a second finds nothing."""
        settings = demo_settings(store_url, target_for(scim2_server))
        await sync_once(settings)
        await drain(settings)
        data = await ours(settings)
        edited, deleted = some_users(data, 2)
        users = scim2_server.users()
        body = {k: v for k, v in users[edited].items() if k not in ("id", "meta")}
        scim2_server.request("PUT", f"/Users/{users[edited]['id']}", {**body, "title": "Drift"})
        scim2_server.request("DELETE", f"/Users/{users[deleted]['id']}")
        group = sorted(data["groups"])[0]
        remote_group = scim2_server.groups()[group]
        scim2_server.request("PUT", f"/Groups/{remote_group['id']}",
                             {"schemas": [GROUP], "displayName": group, "members": []})

        dry = await reconcile_once(settings, dry_run=True)
        assert {edited} == {e["name"] for e in dry.update if e["kind"] == "User"}
        assert {group} == {e["name"] for e in dry.update if e["kind"] == "Group"}
        assert [deleted] == [e["name"] for e in dry.create]
        assert "Drift" == scim2_server.users()[edited]["title"]
        assert deleted not in scim2_server.users()

        applied = await reconcile_once(settings, dry_run=False)
        assert applied.applied
        users = scim2_server.users()
        assert 200 == len(users)
        assert data["users"][edited].resource.get("title") == users[edited].get("title")
        assert data["users"][deleted].id == users[deleted]["externalId"]
        assert len(data["members"][data["groups"][group].id]) == len(
            scim2_server.groups()[group].get("members") or [])
        again = await reconcile_once(settings, dry_run=True)
        assert ([], [], [], []) == (again.create, again.update, again.remove, again.link)


class TestTargetShape:
    async def test_patch_updates_member_batches_and_attribute_mapping(
        self, scim2_server: Scim2Server, store_url: str, directory: Directory
    ) -> None:
        """With update_method=patch and member_batch=3: members moved in and out of a group
        arrive as PATCHes; the allow-list, drop and rename shape what each user carries."""
        target = target_for(scim2_server, update_method="patch", member_batch=3,
                            attributes=("name.givenName", "title", "emails"),
                            drop=("emails",), rename={"title": "nickName"})
        settings = demo_settings(store_url, target, ldif=str(directory.path))
        await sync_once(settings)
        await drain(settings)
        data = await ours(settings)
        sample = scim2_server.users()[some_users(data, 1)[0]]
        assert {"givenName"} == set(sample["name"])
        assert "emails" not in sample and "title" not in sample and "phoneNumbers" not in sample
        assert data["users"][sample["userName"]].resource["title"] == sample["nickName"]

        text = directory.path.read_text()
        start = text.index("dn: cn=sales,ou=groups,")
        end = text.index("\n\n", start)
        block = text[start:end].split("\n")
        gone = [line for line in block if line.startswith("member: ")][:4]
        newcomers = sorted(n for n in data["users"] if f"uid={n}," not in text[start:end])[:5]
        kept = [line for line in block if line not in gone]
        kept += [f"member: {data['users'][n].dn}" for n in newcomers]
        directory.path.write_text(text[:start] + "\n".join(kept) + text[end:])
        await sync_once(settings)
        report = await drain(settings)
        assert (None, 0) == (report.error, report.failed)
        data = await ours(settings)
        names = {u["id"]: u["userName"] for u in scim2_server.all("Users")}
        remote = {names.get(m["value"]) for m in scim2_server.groups()["sales"]["members"]}
        by_id = {r.id: n for n, r in data["users"].items()}
        assert {by_id[m] for m in data["members"][data["groups"]["sales"].id]} == remote
        assert set(newcomers) <= remote
        assert not {line.split("uid=")[1].split(",")[0] for line in gone} & remote

    async def test_bulk_initial_push_into_an_empty_target(
        self, scim2_server: Scim2Server, store_url: str
    ) -> None:
        """With use_bulk and a target announcing bulk, the initial push creates through /Bulk:
        far fewer requests than resources, the same result (members, managers, links)."""
        async with fault_proxy(scim2_server.url.removesuffix("/v2")) as proxy:
            settings = demo_settings(store_url, target_for(scim2_server, url=proxy.url + "/v2",
                                                           use_bulk=True))
            await sync_once(settings)
            report = await drain(settings)
        assert (220, 0) == (report.pushed, report.failed)
        assert proxy.forwarded < 80, proxy.forwarded
        users, groups = scim2_server.users(), scim2_server.groups()
        assert (200, 20) == (len(users), len(groups))
        data = await ours(settings)
        remote_of = {rid: link.remote_id for rid, link in (await links(settings, "User")).items()}
        for name, row in data["users"].items():
            manager = users[name].get(ENTERPRISE, {}).get("manager", {}).get("value")
            assert (remote_of[row.manager_id] if row.manager_id else None) == manager
        sales = data["members"][data["groups"]["sales"].id]
        assert {remote_of[m] for m in sales} == {m["value"] for m in groups["sales"]["members"]}
