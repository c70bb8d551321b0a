"""Enrichment rules against the real slapd fixture, on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from syncsvc.domain import RunStatus
from syncsvc.mapping.targets import ENTERPRISE_USER
from syncsvc.settings import Settings
from tests.integration.syncenv import pipeline, settings_for, sync_once, users_by_name


def with_rules(settings: Settings, rules: list[dict[str, Any]]) -> Settings:
    return dataclasses.replace(settings, enrich={"phone_region": "US", "rules": rules})


def rules(hr: Path, display: str) -> list[dict[str, Any]]:
    return [
        {"kind": "template", "target": "displayName", "template": display},
        {"kind": "template", "target": "profileUrl",
         "template": "https://people.example.com/{{ user.userName }}"},
        {"kind": "email"},
        {"kind": "phone"},
        {"kind": "lookup", "file": str(hr), "attribute": "employeeNumber",
         "column": "employee_id", "set": {"enterprise:costCenter": "cost_center"}},
        {"kind": "title_case", "targets": ["title"], "keep": ["VP"]},
    ]


class TestEnrichedFullSync:
    async def test_rules_rewrite_every_user_once_then_nothing(
        self, slapd, store_url, tmp_path: Path
    ) -> None:
        """No rules, then rules: 30 users updated; same rules again: nothing written; a rule
        change: 30 updated again. Enriched values land in the resource and the hot columns."""
        hr = tmp_path / "hr.csv"
        hr.write_text("employee_id,cost_center\n1001,CC-ADA\n1002,CC-GRACE\n")
        plain = settings_for(slapd, store_url)
        first = await sync_once(plain)
        assert (36, 0) == (first.created, first.updated)  # 30 users, 6 groups

        enriched = with_rules(plain, rules(hr, "{{ user.name.familyName }}, {{ user.name.givenName }}"))
        report = await sync_once(enriched)
        assert RunStatus.SUCCESS == report.status
        assert (0, 30, 6) == (report.created, report.updated, report.unchanged)  # groups: as were
        # Only the broken entry, as without rules: every fixture phone number is valid.
        assert ["cn=Broken Entry,ou=people,dc=example,dc=com"] == [p.dn for p in report.problems]

        again = await sync_once(enriched)
        assert (0, 0, 36) == (again.created, again.updated, again.unchanged)

        changed = with_rules(plain, rules(hr, "{{ user.name.givenName }} {{ user.name.familyName | upper }}"))
        third = await sync_once(changed)
        assert (0, 30, 6) == (third.created, third.updated, third.unchanged)

        async with pipeline(changed) as service:
            users = await users_by_name(service)
        ada = users["ada.lovelace"]
        assert "Ada LOVELACE" == ada.display_name == ada.resource["displayName"]
        assert "https://people.example.com/ada.lovelace" == ada.resource["profileUrl"]
        assert "+14155551101" == ada.resource["phoneNumbers"][0]["value"]
        assert "CC-ADA" == ada.resource[ENTERPRISE_USER]["costCenter"]
        assert "VP Engineering" == ada.resource["title"]
        assert 3 == ada.version
        # No HR row: the directory's departmentNumber stays the cost centre.
        assert "ENG-120" == users["alan.turing"].resource[ENTERPRISE_USER]["costCenter"]
