"""The engine with the Active Directory flavour: objectGUID anchors, uSNChanged marks, DC changes.

No AD runs here, so AD-shaped entries come from an LDIF file through the same LDIF directory the
demo uses; a thin wrapper reports which domain controller answered (the one fault a file cannot
produce).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

from syncsvc.domain import RunMode, RunStatus
from syncsvc.ldap import FLAVORS, LdifDirectory, ServerInfo
from syncsvc.mapping import compile_mapping
from syncsvc.settings import LdapSettings, StoreSettings, SyncSettings
from syncsvc.store import create_engine, upgrade
from syncsvc.store.schema import UserRow
from syncsvc.sync import RunLock, SyncDeps, SyncOptions, run_sync

BASE = "DC=corp,DC=example"


def ad_user(n: int, usn: int, *, disabled: bool = False, title: str = "Engineer") -> str:
    guid = uuid.UUID(int=n)
    return (
        f"dn: CN=User {n},OU=Staff,{BASE}\n"
        "objectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\n"
        # AD matches (objectCategory=person) against the category DN; a file holds the short form.
        "objectCategory: person\n"
        "sAMAccountType: 805306368\n"
        f"objectGUID:: {base64.b64encode(guid.bytes_le).decode()}\n"
        f"sAMAccountName: user{n}\ncn: User {n}\ngivenName: User\nsn: {n}\n"
        f"mail: user{n}@corp.example\ntitle: {title}\n"
        f"userAccountControl: {514 if disabled else 512}\nuSNChanged: {usn}\n\n"
    )


class DirectoryOnDc(LdifDirectory):
    """The LDIF directory, answering as domain controller ``dc``."""

    dc = "CN=NTDS Settings,CN=DC1"

    async def server_info(self) -> ServerInfo:
        info = await super().server_info()
        return replace(info, ad_service_name=self.dc, ad_highest_usn=1000)


async def run(tmp_path: Path, directory: LdifDirectory, mode: RunMode):
    ldap = LdapSettings(url=(directory.description,), base_dn=BASE, flavor="ad")
    engine = create_engine(StoreSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"))
    try:
        await upgrade(engine)
        deps = SyncDeps(engine=engine, directory=directory, flavor=FLAVORS["ad"],
                        mapping=compile_mapping("ad"), ldap=ldap, sync=SyncSettings(),
                        lock=RunLock(engine))
        report = await run_sync(deps, SyncOptions(mode=mode))
        async with engine.connect() as conn:
            rows = {r.user_name: r for r in await conn.execute(select(UserRow.__table__))}
        return report, rows
    finally:
        await engine.dispose()


class TestActiveDirectory:
    async def test_guid_anchor_usn_marks_and_disabled_accounts(self, tmp_path: Path) -> None:
        """objectGUID becomes the anchor as a UUID; bit 2 of userAccountControl makes active false."""
        ldif = tmp_path / "ad.ldif"
        ldif.write_text(ad_user(1, 100) + ad_user(2, 101, disabled=True) + ad_user(3, 102))
        directory = DirectoryOnDc(f"ldif://{ldif}", FLAVORS["ad"])
        report, rows = await run(tmp_path, directory, RunMode.FULL)
        assert (RunStatus.SUCCESS, 3) == (report.status, report.created)
        assert str(uuid.UUID(int=1)) == rows["user1"].anchor
        assert (True, False) == (rows["user1"].active, rows["user2"].active)

        ldif.write_text(ad_user(1, 100) + ad_user(2, 101, disabled=True)
                        + ad_user(3, 150, title="Lead"))
        report, rows = await run(tmp_path, directory, RunMode.INCREMENTAL)
        assert ("usn", RunMode.INCREMENTAL, 1) == (report.method, report.mode, report.updated)
        assert 1 == report.read  # only uSNChanged >= the mark was asked for
        assert "Lead" == rows["user3"].resource["title"]

    async def test_another_domain_controller_forces_a_full_run(self, tmp_path: Path) -> None:
        """A uSNChanged mark is only valid on the DC it came from: another DC means a full run."""
        ldif = tmp_path / "ad.ldif"
        ldif.write_text(ad_user(1, 100) + ad_user(2, 101))
        directory = DirectoryOnDc(f"ldif://{ldif}", FLAVORS["ad"])
        await run(tmp_path, directory, RunMode.FULL)
        directory.dc = "CN=NTDS Settings,CN=DC2"
        report, _ = await run(tmp_path, directory, RunMode.INCREMENTAL)
        assert (RunMode.FULL, "paged", 2) == (report.mode, report.method, report.read)
