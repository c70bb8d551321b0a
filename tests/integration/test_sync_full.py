"""Full runs against a real slapd, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from syncsvc.domain import RunStatus
from syncsvc.store import runs
from syncsvc.sync import SyncOptions, run_sync
from tests.integration.syncenv import (
    groups_by_name,
    members_of,
    pipeline,
    settings_for,
    sync_once,
    users_by_name,
)

BASE = "dc=example,dc=com"
ENG = f"ou=engineering,ou=people,{BASE}"
SALES = f"ou=sales,ou=people,{BASE}"


class TestFirstFullSync:
    async def test_every_user_and_group_lands_in_the_store(self, slapd, store_url) -> None:
        """30 users, 6 groups; the broken entry is a problem naming its DN, not a crash."""
        report = await sync_once(settings_for(slapd, store_url))

        assert RunStatus.SUCCESS == report.status
        assert (37, 36, 0) == (report.read, report.created, report.updated)
        assert [f"cn=Broken Entry,ou=people,{BASE}"] == [
            p.dn for p in report.problems if "userName" in p.reason
        ]
        async with pipeline(settings_for(slapd, store_url)) as service:
            users = await users_by_name(service)
            groups = await groups_by_name(service)
        assert 30 == len(users)
        assert {"engineering", "platform-team", "sales", "managers", "developers", "on-call"} == set(groups)
        ada = users["ada.lovelace"]
        assert "ada.lovelace@example.com" == ada.primary_email
        assert ada.active is True
        assert 1 == ada.version

    async def test_members_nested_groups_and_posix_members_resolve(self, slapd, store_url) -> None:
        """groupOfNames, groupOfUniqueNames, memberUid and a nested group all become members."""
        settings = settings_for(slapd, store_url)
        await sync_once(settings)
        async with pipeline(settings) as service:
            engineering = await members_of(service, "engineering")
            sales = await members_of(service, "sales")
            developers = await members_of(service, "developers")
        assert "platform-team" in engineering
        assert 13 == len(engineering)
        assert 12 == len(sales)
        assert {"linus.torvalds", "ken.thompson", "dennis.ritchie", "jose.nunez", "zoe.muller",
                "guido.vanrossum", "yukihiro.matsumoto"} == developers

    async def test_a_first_load_reads_no_memberships_a_second_reads_them(
        self, slapd, store_url
    ) -> None:
        """The groups a first load creates have no members to read (on PostgreSQL, at 1M users,
        that read scanned the filling table each batch); the next run reads what they have, and
        finds nothing to change."""
        reads: list[str] = []

        def note(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
            if statement.startswith("SELECT") and "FROM scim_group_member" in statement:
                reads.append(statement)

        async with pipeline(settings_for(slapd, store_url)) as service:
            event.listen(service.engine.sync_engine, "before_cursor_execute", note)
            first = await run_sync(service.sync, SyncOptions())
            read_first = len(reads)
            second = await run_sync(service.sync, SyncOptions())
            engineering = await members_of(service, "engineering")

        assert (RunStatus.SUCCESS, RunStatus.SUCCESS) == (first.status, second.status)
        assert 0 == read_first
        assert reads and 0 == second.updated
        assert 13 == len(engineering)

    async def test_managers_resolve_to_scim_ids(self, slapd, store_url) -> None:
        """manager DNs become the manager's SCIM id, across OUs too."""
        settings = settings_for(slapd, store_url)
        await sync_once(settings)
        async with pipeline(settings) as service:
            users = await users_by_name(service)
        assert users["alan.turing"].id == users["sam.taylor"].manager_id
        assert users["ada.lovelace"].id == users["grace.hopper"].manager_id
        assert users["ada.lovelace"].manager_id is None

    async def test_run_is_recorded_with_counts_and_problems(self, slapd, store_url) -> None:
        """The run record holds status, counts and the problem of the broken entry."""
        settings = settings_for(slapd, store_url)
        report = await sync_once(settings)
        async with pipeline(settings) as service, service.engine.connect() as conn:
            record = await runs.get_run(conn, report.run_id)
        assert record is not None
        assert ("success", "full", "paged") == (record.status, record.mode, record.method)
        assert 36 == record.counts["created"]
        assert any("Broken Entry" in p.dn for p in record.problems)


class TestSecondFullSync:
    async def test_an_unchanged_directory_writes_nothing(self, slapd, store_url) -> None:
        """Versions and lastModified stay put; every entry counts as unchanged."""
        settings = settings_for(slapd, store_url)
        await sync_once(settings)
        async with pipeline(settings) as service:
            before = {n: (r.version, r.last_modified) for n, r in (await users_by_name(service)).items()}
            gbefore = {n: r.version for n, r in (await groups_by_name(service)).items()}
        report = await sync_once(settings)
        assert (0, 0, 36) == (report.created, report.updated, report.unchanged)
        assert (0, 0) == (report.deactivated, report.deleted)
        async with pipeline(settings) as service:
            after = {n: (r.version, r.last_modified) for n, r in (await users_by_name(service)).items()}
            gafter = {n: r.version for n, r in (await groups_by_name(service)).items()}
        assert before == after
        assert gbefore == gafter


class TestRenameAndMove:
    async def test_rename_and_move_keep_the_scim_id(self, slapd, store_url) -> None:
        """modrdn of a user and a move to another OU keep the id; the group follows the new DN."""
        settings = settings_for(slapd, store_url)
        await sync_once(settings)
        async with pipeline(settings) as service:
            before = await users_by_name(service)
        slapd.rename(f"uid=ken.thompson,{ENG}", "uid=ken.t")
        slapd.rename(f"uid=sam.taylor,{SALES}", "uid=sam.taylor", new_superior=ENG)
        report = await sync_once(settings)
        assert RunStatus.SUCCESS == report.status
        async with pipeline(settings) as service:
            after = await users_by_name(service)
        assert before["ken.thompson"].id == after["ken.t"].id
        assert "ken.thompson" not in after
        assert before["sam.taylor"].id == after["sam.taylor"].id
        assert f"uid=sam.taylor,{ENG}" == after["sam.taylor"].dn
        assert 0 == report.deactivated + report.deleted


class TestBrokenEntries:
    async def test_malformed_entry_is_a_problem_not_a_crash(self, slapd, store_url) -> None:
        """A user whose uid is missing and one with a bad manager DN are reported with their DNs."""
        slapd.modify(
            f"dn: uid=zoe.muller,{ENG}\nchangetype: modify\nreplace: manager\n"
            f"manager: uid=nobody,{ENG}\n"
        )
        report = await sync_once(settings_for(slapd, store_url))
        assert RunStatus.SUCCESS == report.status
        reasons = {p.dn: p.reason for p in report.problems}
        assert f"cn=Broken Entry,ou=people,{BASE}" in reasons
        assert "manager" in reasons[f"uid=zoe.muller,{ENG}"]
        assert 30 == report.created - 6
