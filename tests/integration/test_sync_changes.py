"""Incremental runs, the change feed, deletions and the guard, against a real slapd."""

from __future__ import annotations

import pytest

from syncsvc.domain import EntryKind, RunMode, RunStatus
from syncsvc.store import runs
from tests.integration.syncenv import (
    members_of,
    pipeline,
    settings_for,
    sync_once,
    users_by_name,
)

BASE = "dc=example,dc=com"
ENG = f"ou=engineering,ou=people,{BASE}"
SALES = f"ou=sales,ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"


def modify_three(slapd) -> None:
    for uid in ("ada.lovelace", "grace.hopper", "alan.turing"):
        slapd.modify(f"dn: uid={uid},{ENG}\nchangetype: modify\nreplace: title\ntitle: Changed {uid}\n")


class TestIncremental:
    @pytest.mark.parametrize("feed", ["timestamp", "syncrepl"])
    async def test_three_modified_entries_are_three_updates(self, slapd, store_url, feed) -> None:
        """By modifyTimestamp and by RFC 4533 content sync: exactly the 3 changed users update."""
        settings = settings_for(slapd, store_url, ldap_change_feed=feed)
        await sync_once(settings)
        if feed == "syncrepl":
            primed = await sync_once(settings, RunMode.INCREMENTAL)  # first refresh: gets the cookie
            assert (0, 0) == (primed.created, primed.updated)
        modify_three(slapd)
        report = await sync_once(settings, RunMode.INCREMENTAL)
        assert RunStatus.SUCCESS == report.status
        assert ("timestamp" if feed == "timestamp" else "contentsync") == report.method
        assert (0, 3) == (report.created, report.updated)
        async with pipeline(settings) as service:
            users = await users_by_name(service)
        assert "Changed ada.lovelace" == users["ada.lovelace"].resource["title"]
        assert 2 == users["ada.lovelace"].version

    async def test_change_feed_reports_deletions(self, slapd, store_url) -> None:
        """A user deleted in LDAP is deactivated by the next content-sync run."""
        settings = settings_for(slapd, store_url, ldap_change_feed="syncrepl")
        await sync_once(settings)
        await sync_once(settings, RunMode.INCREMENTAL)
        slapd.delete(f"uid=noah.jones,{SALES}")
        report = await sync_once(settings, RunMode.INCREMENTAL)
        assert (RunStatus.SUCCESS, 1) == (report.status, report.deactivated)
        async with pipeline(settings) as service:
            users = await users_by_name(service)
        assert users["noah.jones"].active is False

    async def test_incremental_sees_membership_changes(self, slapd, store_url) -> None:
        """Adding and removing a member changes the group; the members follow."""
        settings = settings_for(slapd, store_url, ldap_change_feed="timestamp")
        await sync_once(settings)
        slapd.modify(
            f"dn: cn=platform-team,{GROUPS}\nchangetype: modify\n"
            f"add: member\nmember: uid=alan.turing,{ENG}\n-\n"
            f"delete: member\nmember: uid=ken.thompson,{ENG}\n"
        )
        report = await sync_once(settings, RunMode.INCREMENTAL)
        assert RunStatus.SUCCESS == report.status
        async with pipeline(settings) as service:
            members = await members_of(service, "platform-team")
        assert "alan.turing" in members
        assert "ken.thompson" not in members

    async def test_manager_change_is_seen(self, slapd, store_url) -> None:
        """A new manager DN points the user at the new manager's id."""
        settings = settings_for(slapd, store_url, ldap_change_feed="timestamp")
        await sync_once(settings)
        slapd.modify(f"dn: uid=linus.torvalds,{ENG}\nchangetype: modify\nreplace: manager\n"
                     f"manager: uid=alan.turing,{ENG}\n")
        await sync_once(settings, RunMode.INCREMENTAL)
        async with pipeline(settings) as service:
            users = await users_by_name(service)
        assert users["alan.turing"].id == users["linus.torvalds"].manager_id

    async def test_manager_added_later_is_resolved_for_reports_not_reread(
        self, slapd, store_url
    ) -> None:
        """An incremental run reads only the new manager; the report it names (unchanged, not
        re-read) points at it all the same, and users outside the run keep their managers."""
        settings = settings_for(slapd, store_url, ldap_change_feed="timestamp")
        await sync_once(settings)
        slapd.modify(f"dn: uid=linus.torvalds,{ENG}\nchangetype: modify\nreplace: manager\n"
                     f"manager: uid=new.boss,{ENG}\n")
        dangling = await sync_once(settings, RunMode.INCREMENTAL)
        assert [f"manager uid=new.boss,{ENG.lower()} not found"] == [
            p.reason for p in dangling.problems if "linus" in p.dn]
        async with pipeline(settings) as service:
            before = await users_by_name(service)
        assert before["linus.torvalds"].manager_id is None

        slapd.add(f"dn: uid=new.boss,{ENG}\nobjectClass: inetOrgPerson\nuid: new.boss\n"
                  "cn: New Boss\nsn: Boss\nmail: new.boss@example.com\n")
        report = await sync_once(settings, RunMode.INCREMENTAL)
        assert (RunStatus.SUCCESS, 1) == (report.status, report.created)
        async with pipeline(settings) as service:
            after = await users_by_name(service)
        assert after["new.boss"].id == after["linus.torvalds"].manager_id
        unchanged = {n: (u.manager_id, u.version) for n, u in before.items() if n != "linus.torvalds"}
        assert unchanged == {n: (after[n].manager_id, after[n].version) for n in unchanged}

    async def test_incremental_without_a_mark_runs_full(self, slapd, store_url) -> None:
        """The first incremental run has nothing to start from: it reads everything."""
        settings = settings_for(slapd, store_url, ldap_change_feed="timestamp")
        report = await sync_once(settings, RunMode.INCREMENTAL)
        assert (RunMode.FULL, 36) == (report.mode, report.created)


class TestDeletion:
    async def test_deleted_user_is_deactivated_and_comes_back(self, slapd, store_url) -> None:
        """A user gone from a full read is deactivated (not removed); re-added, it is active again."""
        settings = settings_for(slapd, store_url)
        await sync_once(settings)
        ldif = slapd.search("(uid=noah.jones)", ["*"])
        slapd.delete(f"uid=noah.jones,{SALES}")
        report = await sync_once(settings)
        assert (RunStatus.SUCCESS, 1, 0) == (report.status, report.deactivated, report.deleted)
        async with pipeline(settings) as service:
            users = await users_by_name(service)
        assert users["noah.jones"].active is False
        assert users["noah.jones"].resource["active"] is False
        assert users["noah.jones"].missing_since is not None
        again = await sync_once(settings)
        assert 0 == again.deactivated  # already deactivated: not counted twice

    async def test_delete_policy_removes_user_and_memberships(self, slapd, store_url) -> None:
        """on_missing=delete removes the row and its group memberships."""
        settings = settings_for(slapd, store_url, on_missing="delete")
        await sync_once(settings)
        slapd.delete(f"uid=noah.jones,{SALES}")
        report = await sync_once(settings)
        assert (1, 0) == (report.deleted, report.deactivated)
        async with pipeline(settings) as service:
            users = await users_by_name(service)
            sales = await members_of(service, "sales")
        assert "noah.jones" not in users
        assert "noah.jones" not in sales


class TestGuard:
    async def test_guard_trips_at_threshold_and_removes_nothing(self, slapd, store_url) -> None:
        """Over the absolute threshold the run is guarded; nothing is deactivated."""
        settings = settings_for(slapd, store_url, guard_max_deletions=2, guard_max_fraction=1.0)
        await sync_once(settings)
        for uid in ("noah.jones", "david.kim", "emily.chen"):
            slapd.delete(f"uid={uid},{SALES}")
        report = await sync_once(settings)
        assert RunStatus.GUARDED == report.status
        assert 0 == report.deactivated
        assert {"noah.jones", "david.kim", "emily.chen"} == {r.name for r in report.removals}
        assert "would remove 3 of 30 users" in (report.detail or "")
        async with pipeline(settings) as service:
            users = await users_by_name(service)
        assert all(users[u].active for u in ("noah.jones", "david.kim", "emily.chen"))
        confirmed = await sync_once(settings, allow_deletions=True)
        assert (RunStatus.SUCCESS, 3) == (confirmed.status, confirmed.deactivated)

    async def test_at_the_threshold_is_allowed(self, slapd, store_url) -> None:
        """Exactly the threshold removes; one more trips the guard (fraction 5% default)."""
        settings = settings_for(slapd, store_url)  # 5% of 30 users = 1.5
        await sync_once(settings)
        slapd.delete(f"uid=noah.jones,{SALES}")
        assert RunStatus.SUCCESS == (await sync_once(settings)).status
        slapd.delete(f"uid=david.kim,{SALES}")
        slapd.delete(f"uid=emily.chen,{SALES}")
        assert RunStatus.GUARDED == (await sync_once(settings)).status

    async def test_empty_read_never_deletes(self, slapd, store_url) -> None:
        """A filter that matches nothing removes nothing, even with --allow-deletions."""
        settings = settings_for(slapd, store_url)
        await sync_once(settings)
        empty = settings_for(slapd, store_url, ldap_user_filter="(uid=nobody-at-all)")
        report = await sync_once(empty, allow_deletions=True)
        assert RunStatus.GUARDED == report.status
        assert 0 == report.deactivated
        assert "returned no users" in (report.detail or "")


class TestFailures:
    async def test_server_stopped_mid_run_fails_and_removes_nothing(self, slapd, store_url) -> None:
        """slapd stops after the first page: the run fails, nothing is deactivated, data intact."""
        settings = settings_for(slapd, store_url)
        await sync_once(settings)
        slapd.delete(f"uid=noah.jones,{SALES}")  # would be swept by a complete read

        class StopAfterFirstPage:
            def phase(self, name: str) -> None:
                pass

            def advance(self, kind: EntryKind, entries: int) -> None:
                slapd.stop()

        report = await sync_once(settings, progress=StopAfterFirstPage())
        assert RunStatus.FAILED == report.status
        assert 0 == report.deactivated + report.deleted
        async with pipeline(settings) as service:
            users = await users_by_name(service)
            async with service.engine.connect() as conn:
                record = await runs.get_run(conn, report.run_id)
        assert 30 == len(users)
        assert all(u.active for u in users.values())
        assert record is not None and "failed" == record.status
        slapd.start()
        report = await sync_once(settings)
        assert (RunStatus.SUCCESS, 1) == (report.status, report.deactivated)

    async def test_dry_run_writes_nothing(self, slapd, store_url) -> None:
        """A dry run lists what it would create and writes no row, not even a run record."""
        settings = settings_for(slapd, store_url)
        report = await sync_once(settings, dry_run=True)
        assert 36 == sum(1 for c in report.changes if c.action == "create")
        async with pipeline(settings) as service:
            assert {} == await users_by_name(service)
            async with service.engine.connect() as conn:
                assert [] == await runs.list_runs(conn)
