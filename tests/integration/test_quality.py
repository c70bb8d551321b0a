"""The directory-quality report: its numbers against counts made independently in Python."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from syncsvc.auth import create_token
from syncsvc.http import create_app
from syncsvc.profiles import FIELDS
from syncsvc.store import create_engine, upgrade
from syncsvc.store.schema import GroupMemberRow, UserRow
from tests.integration.syncenv import settings_for, sync_once

ENG = "ou=engineering,ou=people,dc=example,dc=com"
SALES = "ou=sales,ou=people,dc=example,dc=com"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PROFILE = "urn:syncsvc:params:scim:schemas:extension:profile:2.0:User"


def _filled(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def expected_fields(row: Any) -> dict[str, bool]:
    """Which fields a user has, judged from the stored resource in plain Python."""
    resource, profile = row.resource, row.profile or {}
    return {
        "title": _filled(resource.get("title")),
        "email": bool(row.primary_email),
        "phone": bool(resource.get("phoneNumbers")),
        "manager": row.manager_id is not None,
        "department": _filled((resource.get(ENTERPRISE) or {}).get("department")),
        "location": _filled(profile.get("location")) or bool(resource.get("addresses")),
        "photo": _filled((profile.get("photo") or {}).get("url")) or bool(resource.get("photos")),
        "headline": _filled(profile.get("headline")),
        "bio": _filled(profile.get("bio")),
        "skills": bool(profile.get("skills")),
    }


async def _patch(client: Any, token: str, user_name: str, profile: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    found = await (await client.get(f'/scim/v2/Users?filter=userName eq "{user_name}"',
                                    headers=headers)).json(content_type=None)
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": PROFILE, "value": profile}]}
    response = await client.patch(f"/scim/v2/Users/{found['Resources'][0]['id']}", json=body,
                                  headers=headers)
    assert 200 == response.status, await response.text()


class TestQualityReport:
    async def test_numbers_match_an_independent_count(
        self, slapd: Any, store_url: str, aiohttp_client: Any
    ) -> None:
        """Completeness, departments, scores and every issue equal a Python count of the store."""
        settings = settings_for(slapd, store_url)
        await sync_once(settings)
        # Make an issue of each kind: a manager DN that resolves to nobody, an address two
        # users share (in another case), a user gone from the directory (deactivated).
        slapd.modify(f"dn: uid=linus.torvalds,{ENG}\nchangetype: modify\nreplace: manager\n"
                     f"manager: uid=nobody,{ENG}\n")
        slapd.modify(f"dn: uid=sam.taylor,{SALES}\nchangetype: modify\nreplace: mail\n"
                     "mail: Ada.Lovelace@example.com\n")
        slapd.delete(f"uid=noah.jones,{SALES}")
        report = await sync_once(settings)
        assert "success" == report.status.value

        engine = create_engine(settings.store)
        await upgrade(engine)
        try:
            async with engine.begin() as conn:
                now = datetime.now(UTC)
                admin = await create_token(conn, name="admin", scopes="admin", now=now)
                writer = await create_token(conn, name="writer", scopes="scim:write", now=now)
                reader = await create_token(conn, name="reader", scopes="scim:read", now=now)
            client = await aiohttp_client(create_app(engine, settings))
            await _patch(client, writer, "ada.lovelace", {
                "bio": "First programmer.", "headline": "Poet of science",
                "skills": ["maths"], "photo": {"url": "https://img.example.test/ada.jpg"}})
            await _patch(client, writer, "grace.hopper", {"bio": "Compilers.", "location": "DC"})
            forbidden = await client.get("/admin/quality",
                                         headers={"Authorization": f"Bearer {writer}"})
            assert 403 == forbidden.status
            response = await client.get("/admin/quality?limit=100",
                                        headers={"Authorization": f"Bearer {admin}"})
            assert 200 == response.status
            got = await response.json()
            listed = await (await client.get(
                "/scim/v2/Users?count=1000", headers={"Authorization": f"Bearer {reader}"})).json(
                    content_type=None)
            async with engine.connect() as conn:
                users = list(await conn.execute(select(UserRow.__table__)))
                members = list(await conn.execute(select(GroupMemberRow.__table__)))
        finally:
            await engine.dispose()

        active = [u for u in users if u.active]
        has = {u.id: expected_fields(u) for u in active}
        assert {"total": len(users), "active": len(active),
                "inactive": len(users) - len(active)} == got["users"]
        assert list(FIELDS) == list(got["fields"])
        for name in FIELDS:
            count = sum(h[name] for h in has.values())
            assert {"count": count, "share": round(count / len(active), 4)} == got["fields"][name]
        scores = {uid: 100 * sum(h.values()) / len(FIELDS) for uid, h in has.items()}
        assert round(sum(scores.values()) / len(scores), 1) == got["score"]
        assert Counter(str(round(s, 1)) for s in scores.values()) == Counter(
            {k: v for k, v in got["scores"].items()})

        by_dept: dict[str | None, list[Any]] = defaultdict(list)
        for u in active:
            by_dept[((u.resource.get(ENTERPRISE) or {}).get("department") or "").strip() or None].append(u)
        departments = {d["department"]: d for d in got["departments"]}
        assert set(by_dept) == set(departments)
        for dept, rows in by_dept.items():
            assert len(rows) == departments[dept]["users"]
            mean = sum(scores[u.id] for u in rows) / len(rows)
            assert round(mean, 1) == departments[dept]["score"]
        # Each user's readOnly profile completeness is the same score, as a whole number.
        completeness = {u["id"]: u[PROFILE]["completeness"] for u in listed["Resources"]}
        assert {uid: round(score) for uid, score in scores.items()} == {
            uid: completeness[uid] for uid in scores}
        lowest = got["lowestScores"]
        assert sorted(scores.values())[: len(lowest)] == [u["score"] for u in lowest]
        ada = next(u for u in lowest if u["userName"] == "ada.lovelace")
        assert ["manager"] == ada["missing"]  # the head of engineering reports to no one

        issues = got["issues"]
        user_members = {m.member_id for m in members if m.member_type == "User"}
        broken = sorted(u.user_name for u in active if u.manager_dn_norm and u.manager_id is None)
        assert ["linus.torvalds"] == broken
        assert broken == [i["userName"] for i in issues["brokenManagers"]["sample"]]
        assert issues["brokenManagers"]["count"] == 1
        without = sorted(u.user_name for u in active if u.id not in user_members)
        assert len(without) == issues["withoutGroups"]["count"]
        assert without == sorted(i["userName"] for i in issues["withoutGroups"]["sample"])
        inactive_in = sorted(u.user_name for u in users if not u.active and u.id in user_members)
        assert len(inactive_in) == issues["inactiveInGroups"]["count"]
        assert inactive_in == [i["userName"] for i in issues["inactiveInGroups"]["sample"]]
        assert "noah.jones" in {u.user_name for u in users if not u.active}
        owners: dict[str, set[str]] = defaultdict(set)
        for u in users:
            for email in u.resource.get("emails") or []:
                owners[email["value"].lower()].add(u.user_name)
        dups = {v: sorted(n) for v, n in owners.items() if len(n) > 1}
        assert {"ada.lovelace@example.com": ["ada.lovelace", "sam.taylor"]} == dups
        assert [{"email": v, "userNames": n} for v, n in sorted(dups.items())] == \
            issues["duplicateEmails"]["sample"]
        names = Counter(u.user_name.lower() for u in users)
        assert sum(1 for c in names.values() if c > 1) == issues["duplicateUserNames"]["count"]
        unmapped = issues["unmappedEntries"]
        assert report.run_id == unmapped["run"]["id"]
        assert len(report.problems) == unmapped["count"] >= 1
        assert sorted(p.dn for p in report.problems) == sorted(p["dn"] for p in unmapped["sample"])
        assert any("Broken Entry" in p["dn"] for p in unmapped["sample"])


def _cli(args: list[str], cwd: Path, store_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCSVC_")}
    env.update(SYNCSVC_STORE__URL=store_url, SYNCSVC_LOG__FORMAT="json")
    return subprocess.run([sys.executable, "-m", "syncsvc", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


class TestQualityCli:
    def test_quality_formats_on_the_demo(self, tmp_path: Path, store_url: str) -> None:
        """syncsvc quality after a demo sync: json parses, csv has its header, table reads."""
        synced = _cli(["sync"], tmp_path, store_url)
        assert 0 == synced.returncode, synced.stderr
        as_json = _cli(["quality", "--format", "json", "--limit", "3"], tmp_path, store_url)
        assert 0 == as_json.returncode, as_json.stderr
        report = json.loads(as_json.stdout)
        assert 200 == report["users"]["active"]
        assert 3 == len(report["lowestScores"])
        assert 0 <= report["score"] <= 100
        as_csv = _cli(["quality", "--format", "csv"], tmp_path, store_url)
        assert 0 == as_csv.returncode, as_csv.stderr
        rows = list(csv.reader(io.StringIO(as_csv.stdout)))
        assert ["section", "name", "metric", "value"] == rows[0]
        assert ["users", "", "total", "200"] in rows
        table = _cli(["quality"], tmp_path, store_url)
        assert 0 == table.returncode, table.stderr
        assert table.stdout.startswith("Directory quality: score")

    def test_bad_format_is_a_usage_error(self, tmp_path: Path) -> None:
        result = _cli(["quality", "--format", "xml"], tmp_path, "sqlite:///x.db")
        assert 2 == result.returncode
