"""Enrichment inside the sync pipeline, on an LDIF directory (no slapd): rules change, runs
re-derive every user and write only what changed; the profile column is never touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from syncsvc.domain import RunMode, RunStatus
from syncsvc.enrich import Enricher, compile_enrichment
from syncsvc.ldap import FLAVORS, LdifDirectory
from syncsvc.mapping import compile_mapping
from syncsvc.mapping.targets import ENTERPRISE_USER
from syncsvc.settings import LdapSettings, StoreSettings, SyncSettings
from syncsvc.store import create_engine, upgrade
from syncsvc.store.schema import UserRow
from syncsvc.sync import RunLock, SyncDeps, SyncOptions, SyncReport, run_sync

BASE = "dc=example,dc=com"
PEOPLE = [
    ("ada", "Ada", "Lovelace", "Engineering", "1001", "(415) 555-0101"),
    ("grace", "Grace", "Hopper", "Engineering", "1002", "+1 415 555 0102"),
    ("alan", "Alan", "Turing", "Research", "1003", "12"),  # not a phone number
    ("linus", "Linus", "Torvalds", "Sales", "1004", "(212) 555-0104"),
]


def ldif() -> str:
    out = []
    for n, (uid, given, sn, ou, number, phone) in enumerate(PEOPLE):
        out.append(
            f"dn: uid={uid},ou={ou},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn: {given} {sn}\ngivenName: {given}\nsn: {sn}\nmail: {given}.{sn}@Example.COM\n"
            f"telephoneNumber: {phone}\nemployeeNumber: {number}\nroomNumber: R{n}\n"
            f"entryUUID: 00000000-0000-0000-0000-{n:012d}\nmodifyTimestamp: 20250101000000Z\n\n")
    return "".join(out)


RULES: list[dict[str, Any]] = [
    {"kind": "default", "target": "preferredLanguage", "value": "en"},
    {"kind": "template", "target": "displayName",
     "template": "{{ user.name.givenName }} {{ user.name.familyName }}"},
    {"kind": "template", "target": "nickName", "template": "{{ ldap.roomNumber }}"},
    {"kind": "email"},
    {"kind": "phone", "region": "US"},
    {"kind": "lookup", "file": "hr.csv", "attribute": "employeeNumber", "column": "employee_id",
     "set": {"enterprise:costCenter": "cost_center", "addresses[work].locality": "office"}},
    {"kind": "department_from_dn"},
]


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.ldif = tmp_path / "d.ldif"
        self.ldif.write_text(ldif())
        self.hr = tmp_path / "hr.csv"
        self.hr.write_text("employee_id,cost_center,office\n1001,CC-1,Berlin\n1002,CC-2,Paris\n")
        self.url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"

    async def sync(self, rules: list[dict[str, Any]] | Enricher,
                   mode: RunMode = RunMode.FULL) -> SyncReport:
        """One run; ``rules`` are compiled for it, as ``syncsvc sync`` does, or an enricher
        compiled once is reused, as ``serve`` does across its scheduled runs."""
        engine = create_engine(StoreSettings(url=self.url))
        try:
            await upgrade(engine)
            flavor = FLAVORS["openldap"]
            deps = SyncDeps(
                engine=engine, directory=LdifDirectory(f"ldif://{self.ldif}", flavor),
                flavor=flavor, mapping=compile_mapping("openldap"),
                ldap=LdapSettings(url=(f"ldif://{self.ldif}",), base_dn=BASE),
                sync=SyncSettings(), lock=RunLock(engine),
                enricher=rules if not isinstance(rules, list) else self.compile(rules))
            return await run_sync(deps, SyncOptions(mode=mode))
        finally:
            await engine.dispose()

    def compile(self, rules: list[dict[str, Any]]) -> Enricher:
        return compile_enrichment({"rules": rules}, base_dir=self.tmp)

    async def users(self) -> dict[str, Any]:
        engine = create_engine(StoreSettings(url=self.url))
        try:
            async with engine.connect() as conn:
                return {r.user_name: r for r in await conn.execute(select(UserRow.__table__))}
        finally:
            await engine.dispose()

    async def set_profile(self, user_name: str, profile: dict[str, Any]) -> None:
        engine = create_engine(StoreSettings(url=self.url))
        try:
            async with engine.begin() as conn:
                await conn.execute(update(UserRow.__table__)
                                   .where(UserRow.__table__.c.user_name == user_name)
                                   .values(profile=profile))
        finally:
            await engine.dispose()


def written(report: SyncReport) -> tuple[int, int, int]:
    return report.created, report.updated, report.unchanged


class TestEnrichedSync:
    async def test_every_rule_lands_in_the_store(self, tmp_path: Path) -> None:
        """Defaults, templates (SCIM and LDAP values), e-mails, E.164, lookup, department."""
        env = Env(tmp_path)
        report = await env.sync(RULES)
        assert RunStatus.SUCCESS == report.status
        users = await env.users()
        ada = users["ada"].resource
        assert "Ada Lovelace" == ada["displayName"] == users["ada"].display_name
        assert "R0" == ada["nickName"]  # roomNumber is not mapped: the rule asked for it
        assert "en" == ada["preferredLanguage"]
        assert "ada.lovelace@example.com" == ada["emails"][0]["value"] == users["ada"].primary_email
        assert "+14155550101" == ada["phoneNumbers"][0]["value"]
        assert {"employeeNumber": "1001", "costCenter": "CC-1",
                "department": "Engineering"} == ada[ENTERPRISE_USER]
        assert [{"type": "work", "locality": "Berlin"}] == ada["addresses"]
        linus = users["linus"].resource
        assert "costCenter" not in linus[ENTERPRISE_USER]  # no HR row: no change
        assert "Sales" == linus[ENTERPRISE_USER]["department"]

    async def test_a_failing_rule_is_a_problem_and_the_entry_is_still_written(self, tmp_path: Path) -> None:
        """alan's phone is invalid: kept as is, one problem; alan is written with everything else."""
        env = Env(tmp_path)
        report = await env.sync(RULES)
        assert [(f"uid=alan,ou=Research,ou=people,{BASE}", "enrich.rules[4] (phone)")] == [
            (p.dn, p.reason.split(":")[0]) for p in report.problems]
        alan = (await env.users())["alan"].resource
        assert ("12", "Alan Turing") == (alan["phoneNumbers"][0]["value"], alan["displayName"])

    async def test_changing_a_rule_rewrites_every_user_then_nothing(self, tmp_path: Path) -> None:
        """The content hash covers the enriched resource: N updated, then 0 written."""
        env = Env(tmp_path)
        assert (4, 0, 0) == written(await env.sync(RULES))
        assert (0, 0, 4) == written(await env.sync(RULES))
        changed = [*RULES[:1], {**RULES[1], "template": "{{ user.name.familyName }}, {{ user.name.givenName }}"},
                   *RULES[2:]]
        assert (0, 4, 0) == written(await env.sync(changed))
        assert "Lovelace, Ada" == (await env.users())["ada"].display_name
        assert (0, 0, 4) == written(await env.sync(changed))
        versions = {name: row.version for name, row in (await env.users()).items()}
        assert {"ada": 2, "grace": 2, "alan": 2, "linus": 2} == versions

    async def test_a_changed_lookup_file_is_re_read_and_only_its_users_change(self, tmp_path: Path) -> None:
        """grace moves office in the HR export: one update on the next run of the same enricher."""
        env = Env(tmp_path)
        enricher = env.compile(RULES)
        await env.sync(enricher)
        env.hr.write_text("employee_id,cost_center,office\n1001,CC-1,Berlin\n1002,CC-2,Lisbon\n")
        assert (0, 1, 3) == written(await env.sync(enricher))
        assert "Lisbon" == (await env.users())["grace"].resource["addresses"][0]["locality"]

    async def test_a_vanished_lookup_file_fails_the_run_and_changes_nothing(self, tmp_path: Path) -> None:
        """Going on without the file would strip costCenter from everyone: the run fails instead.

        (``serve`` compiles the rules once and re-reads the file at each run; ``syncsvc sync``
        compiles at start, where a missing file is a config error.)"""
        env = Env(tmp_path)
        enricher = env.compile(RULES)
        await env.sync(enricher)
        env.hr.rename(tmp_path / "hr.bak")
        report = await env.sync(enricher)
        assert RunStatus.FAILED == report.status
        assert "lookup file" in (report.detail or "") and "cannot read" in (report.detail or "")
        assert "CC-1" == (await env.users())["ada"].resource[ENTERPRISE_USER]["costCenter"]

    async def test_the_profile_column_survives_rule_changes(self, tmp_path: Path) -> None:
        """Enrichment writes the LDAP-owned resource only; syncsvc's profile stays as written."""
        env = Env(tmp_path)
        await env.sync(RULES)
        await env.set_profile("ada", {"bio": "Poetical science", "skills": ["math"]})
        await env.sync(RULES[1:])  # the default rule gone: preferredLanguage goes, ada is rewritten
        ada = (await env.users())["ada"]
        assert "preferredLanguage" not in ada.resource
        assert {"bio": "Poetical science", "skills": ["math"]} == ada.profile

    async def test_incremental_runs_enrich_the_entries_they_read(self, tmp_path: Path) -> None:
        """An incremental run goes through the same hook."""
        env = Env(tmp_path)
        await env.sync(RULES)
        env.ldif.write_text(ldif().replace("sn: Lovelace\n", "sn: Byron\n").replace(
            "modifyTimestamp: 20250101000000Z\n", "modifyTimestamp: 20300101000000Z\n", 1))
        report = await env.sync(RULES, RunMode.INCREMENTAL)
        assert (RunMode.INCREMENTAL, 1) == (report.mode, report.updated)
        assert "Ada Byron" == (await env.users())["ada"].display_name
