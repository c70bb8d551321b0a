"""`syncsvc targets list|status|push|reconcile|resume` as users run it: a real process, real
exit codes, the reference SCIM server (``scim2-server``) as the target."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from syncsvc.push import state
from syncsvc.settings import DEMO_LDIF, StoreSettings
from syncsvc.store import create_engine
from tests.support.scim2server import Scim2Server, scim2_server  # noqa: F401 (fixture)

KEEP_USERS = 8


def small_directory(path: Path) -> set[str]:
    """The demo directory cut down to its tree, 8 users and one group of them."""
    records = DEMO_LDIF.read_text(encoding="utf-8").split("\n\n")
    users = [r for r in records if r.startswith("dn: uid=")][:KEEP_USERS]
    kept = {r.split("\n", 1)[0][4:] for r in users}
    (group,) = [r for r in records if r.startswith("dn: cn=engineering,")]
    group = "\n".join(line for line in group.split("\n")
                      if not line.startswith("member:") or line[8:].strip() in kept)
    group += "".join(f"\nmember: {dn}" for dn in sorted(kept))
    tree = [r for r in records if r.startswith(("dn: dc=", "dn: ou="))]
    path.write_text("\n\n".join([*tree, *users, group]) + "\n", encoding="utf-8")
    return {dn.split(",", 1)[0][4:] for dn in kept}


def syncsvc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCSVC_")}
    return subprocess.run([sys.executable, "-m", "syncsvc", "--config", "syncsvc.toml", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def ok(result: subprocess.CompletedProcess[str], code: int = 0) -> str:
    assert code == result.returncode, result.stderr
    return result.stdout


def quarantine(folder: Path, name: str) -> None:
    async def go() -> None:
        engine = create_engine(StoreSettings(url=f"sqlite+aiosqlite:///{folder / 'store.db'}"))
        try:
            async with engine.begin() as conn:
                for _ in range(3):
                    await state.record_failure(conn, name, "503 Service Unavailable",
                                               datetime.now(UTC), 3)
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_status_push_reconcile_and_resume(
    tmp_path: Path, scim2_server: Scim2Server  # noqa: F811
) -> None:
    """The whole admin loop from the command line: list, status, push, drift repaired by a
    reconcile (after its dry run showed it), a quarantine refused and resumed."""
    names = small_directory(tmp_path / "dir.ldif")
    (tmp_path / "peer.token").write_text(scim2_server.token + "\n", encoding="utf-8")
    (tmp_path / "syncsvc.toml").write_text(f"""
[ldap]
url = "ldif://dir.ldif"

[store]
url = "sqlite:///store.db"

[log]
format = "json"

[[targets]]
name = "peer"
url = "{scim2_server.url}"
[targets.auth]
token_file = "peer.token"

[[targets]]
name = "off"
url = "http://127.0.0.1:9/scim/v2"
enabled = false
[targets.auth]
kind = "none"
""", encoding="utf-8")

    listed = json.loads(ok(syncsvc("targets", "list", "--json", cwd=tmp_path)))
    assert [("peer", True, "bearer"), ("off", False, "none")] == [
        (t["name"], t["enabled"], t["auth"]) for t in listed]
    shown = ok(syncsvc("check-config", "--show", cwd=tmp_path))
    assert scim2_server.token not in shown

    ok(syncsvc("sync", "--full", cwd=tmp_path))
    before = {s["name"]: s for s in json.loads(ok(syncsvc("targets", "status", "--json",
                                                          cwd=tmp_path)))}
    assert before["peer"]["queue_depth"] >= KEEP_USERS + 1
    assert before["peer"]["initial_done"] is False

    report = json.loads(ok(syncsvc("targets", "push", "peer", "--json", cwd=tmp_path)))
    assert (KEEP_USERS + 1, 0, None) == (report["pushed"], report["failed"], report["error"])
    assert names == {u["userName"] for u in scim2_server.all("Users")}
    status = ok(syncsvc("targets", "status", "peer", cwd=tmp_path))
    assert "queue=0" in status and "initial=done" in status

    gone = next(iter(scim2_server.users().values()))  # drift made on the target itself
    scim2_server.request("DELETE", f"/Users/{gone['id']}")
    diff = json.loads(ok(syncsvc("targets", "reconcile", "peer", "--dry-run", "--json",
                                 cwd=tmp_path)))
    assert [gone["userName"]] == [entry["name"] for entry in diff["create"]]
    assert names - {gone["userName"]} == {u["userName"] for u in scim2_server.all("Users")}
    ok(syncsvc("targets", "reconcile", "peer", cwd=tmp_path))
    assert names == {u["userName"] for u in scim2_server.all("Users")}

    quarantine(tmp_path, "peer")
    refused = syncsvc("targets", "push", "peer", cwd=tmp_path)
    assert 1 == refused.returncode
    assert "quarantined" in refused.stderr and "syncsvc targets resume peer" in refused.stderr
    ok(syncsvc("targets", "resume", "peer", cwd=tmp_path))
    (after,) = json.loads(ok(syncsvc("targets", "status", "peer", "--json", cwd=tmp_path)))
    assert (False, 0) == (after["quarantined"], after["consecutive_failures"])

    unknown = syncsvc("targets", "push", "nope", cwd=tmp_path)
    assert 2 == unknown.returncode and "no target 'nope'" in unknown.stderr
    disabled = syncsvc("targets", "push", "off", cwd=tmp_path)
    assert 1 == disabled.returncode and "disabled" in disabled.stderr
