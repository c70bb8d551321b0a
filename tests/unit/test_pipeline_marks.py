"""High-water marks: incremental runs start from what the last successful run saw."""

from __future__ import annotations

from pathlib import Path

from syncsvc.domain import RunMode, RunStatus
from syncsvc.ldap import FLAVORS, LdifDirectory
from syncsvc.mapping import compile_mapping
from syncsvc.settings import LdapSettings, StoreSettings, SyncSettings
from syncsvc.store import create_engine, upgrade
from syncsvc.store.state import get_state
from syncsvc.sync import RunLock, SyncDeps, SyncOptions, SyncReport, run_sync

BASE = "dc=example,dc=com"


def person(uid: str, stamp: str) -> str:
    return (f"dn: uid={uid},{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: x\n"
            f"entryUUID: 00000000-0000-0000-0000-{abs(hash(uid)) % 10**12:012d}\n"
            f"modifyTimestamp: {stamp}\n\n")


async def run(tmp_path: Path, ldif: Path, mode: RunMode) -> SyncReport:
    engine = create_engine(StoreSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"))
    try:
        await upgrade(engine)
        flavor = FLAVORS["openldap"]
        deps = SyncDeps(engine=engine, directory=LdifDirectory(f"ldif://{ldif}", flavor),
                        flavor=flavor, mapping=compile_mapping("openldap"),
                        ldap=LdapSettings(url=(f"ldif://{ldif}",), base_dn=BASE),
                        sync=SyncSettings(), lock=RunLock(engine))
        return await run_sync(deps, SyncOptions(mode=mode))
    finally:
        await engine.dispose()


class TestMarks:
    async def test_a_directory_without_groups_still_runs_incrementally(self, tmp_path: Path) -> None:
        """No group gives no group mark; the run's start stands in, so incremental runs work."""
        ldif = tmp_path / "d.ldif"
        ldif.write_text(person("a", "20200101000000Z") + person("b", "20250101000000Z"))
        assert RunStatus.SUCCESS == (await run(tmp_path, ldif, RunMode.FULL)).status
        ldif.write_text(person("a", "20200101000000Z") + person("b", "20300101000000Z"))
        report = await run(tmp_path, ldif, RunMode.INCREMENTAL)
        assert ("timestamp", RunMode.INCREMENTAL) == (report.method, report.mode)
        assert (1, 0, 0) == (report.read, report.created, report.updated)  # b's title is unchanged

    async def test_a_failed_run_does_not_move_the_mark(self, tmp_path: Path) -> None:
        """A run that fails keeps the previous mark; the next successful one moves it."""
        ldif = tmp_path / "d.ldif"
        ldif.write_text(person("a", "20260101000000Z"))
        await run(tmp_path, ldif, RunMode.FULL)
        assert "20260101000000Z" == await stored_mark(tmp_path)
        ldif.write_text(person("a", "20300101000000Z") + "dn: broken\nnot ldif at all\n")
        failed = await run(tmp_path, ldif, RunMode.INCREMENTAL)
        assert RunStatus.FAILED == failed.status
        assert "20260101000000Z" == await stored_mark(tmp_path)
        ldif.write_text(person("a", "20300101000000Z"))
        assert RunStatus.SUCCESS == (await run(tmp_path, ldif, RunMode.INCREMENTAL)).status
        assert "20300101000000Z" == await stored_mark(tmp_path)


async def stored_mark(tmp_path: Path) -> str | None:
    engine = create_engine(StoreSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"))
    try:
        async with engine.connect() as conn:
            return await get_state(conn, "users.mark")
    finally:
        await engine.dispose()
