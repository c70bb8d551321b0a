"""The `syncsvc` command as users run it: a real process, real exit codes, real slapd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from syncsvc.store import head_revision
from tests.support.slapd import Slapd

SALES = "ou=sales,ou=people,dc=example,dc=com"


def clean_env() -> dict[str, str]:
    """This process's environment without any SYNCSVC_* setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SYNCSVC_")}


def syncsvc(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = clean_env()
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "syncsvc", *args], cwd=cwd, env=full_env,
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture
def config(slapd: Slapd, tmp_path: Path) -> Path:
    secret = tmp_path / "bind.secret"
    secret.write_text(slapd.service_password + "\n")
    path = tmp_path / "syncsvc.toml"
    path.write_text(
        f"""
[ldap]
url = "{slapd.url}"
bind_dn = "{slapd.service_dn}"
bind_password_file = "bind.secret"
base_dn = "{slapd.base_dn}"
page_size = 10

[store]
url = "sqlite:///store.db"

[sync]
guard_max_deletions = 1

[log]
format = "json"
"""
    )
    return path


class TestSyncCommand:
    def test_sync_prints_a_summary_and_records_the_run(self, config: Path) -> None:
        """Exit 0, one summary line on stdout; `runs show` lists the broken entry's problem."""
        done = syncsvc("sync", "--full", cwd=config.parent)
        assert 0 == done.returncode, done.stderr
        summary = done.stdout.strip().splitlines()[-1]
        assert summary.startswith("full sync success (paged)")
        assert "created=36" in summary
        run_id = summary.rsplit("[run ", 1)[1].rstrip("]")
        shown = syncsvc("runs", "show", run_id[:8], cwd=config.parent)
        assert 0 == shown.returncode, shown.stderr
        assert "cn=Broken Entry,ou=people,dc=example,dc=com" in shown.stdout
        listed = syncsvc("runs", "list", "--json", cwd=config.parent)
        assert [run_id] == [r["id"] for r in json.loads(listed.stdout)]

    def test_guarded_sync_exits_3_and_allow_deletions_confirms(self, slapd: Slapd, config: Path) -> None:
        """Over the guard: exit 3, the would-be removals on stderr; --allow-deletions: exit 0."""
        assert 0 == syncsvc("sync", cwd=config.parent).returncode
        slapd.delete(f"uid=noah.jones,{SALES}")
        slapd.delete(f"uid=david.kim,{SALES}")
        held = syncsvc("sync", cwd=config.parent)
        assert 3 == held.returncode
        assert f"would remove: User uid=noah.jones,{SALES}" in held.stderr
        assert "guarded" in held.stdout
        confirmed = syncsvc("sync", "--allow-deletions", cwd=config.parent)
        assert 0 == confirmed.returncode, confirmed.stderr
        assert "deactivated=2" in confirmed.stdout

    def test_unreachable_directory_exits_1(self, slapd: Slapd, config: Path) -> None:
        """A stopped server fails the run: exit 1 and the reason in the summary."""
        slapd.stop()
        done = syncsvc("sync", cwd=config.parent)
        assert 1 == done.returncode
        assert "full sync failed" in done.stdout
        assert slapd.url.removeprefix("ldap://") in done.stdout

    def test_dry_run_prints_the_diff_and_writes_nothing(self, config: Path) -> None:
        """--dry-run lists creations per resource; no run is recorded."""
        done = syncsvc("sync", "--dry-run", cwd=config.parent)
        assert 0 == done.returncode, done.stderr
        creates = [l for l in done.stdout.splitlines() if l.startswith("create")]
        assert 36 == len(creates)
        assert any("uid=ada.lovelace" in l for l in creates)
        assert "[]" == syncsvc("runs", "list", "--json", cwd=config.parent).stdout.strip()

    def test_password_never_reaches_the_logs(self, slapd: Slapd, config: Path) -> None:
        """The bind password appears neither in stdout nor in the JSON logs."""
        done = syncsvc("sync", cwd=config.parent, env={"SYNCSVC_LOG__LEVEL": "debug"})
        assert 0 == done.returncode
        assert slapd.service_password not in done.stdout + done.stderr
        events = [json.loads(l) for l in done.stderr.splitlines() if l.startswith("{")]
        runs = {e.get("sync_run") for e in events if e["event"].startswith("sync.")}
        assert 1 == len(runs - {None})  # every sync event carries the run id


class TestConfigCommands:
    def test_check_config_reports_every_problem(self, tmp_path: Path) -> None:
        """Unknown key, wrong type, unreadable secret file and a bad URL: all four, exit 2."""
        path = tmp_path / "syncsvc.toml"
        path.write_text(
            '[ldap]\nurl = "ldap//broken"\nbindpw = "x"\npage_size = "lots"\n'
            'bind_password_file = "/nonexistent/secret"\nbase_dn = "dc=x"\n'
        )
        done = syncsvc("check-config", cwd=tmp_path)
        assert 2 == done.returncode
        lines = done.stderr.strip().splitlines()
        assert 4 == len(lines), done.stderr
        for line, key in zip(sorted(lines), ("ldap.bind_password", "ldap.page_size", "ldap.url", "bindpw")):
            assert key in line

    def test_check_config_show_masks_secrets(self, config: Path, slapd: Slapd) -> None:
        """--show prints the effective settings with the password masked."""
        done = syncsvc("check-config", "--show", cwd=config.parent)
        assert 0 == done.returncode, done.stderr
        shown = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
        assert "***" == shown["ldap"]["bind_password"]
        assert slapd.service_password not in done.stdout

    def test_db_upgrade_creates_the_schema(self, tmp_path: Path) -> None:
        """An empty database gets the whole schema; the revision is printed."""
        done = syncsvc("db", "upgrade", cwd=tmp_path)
        assert 0 == done.returncode, done.stderr
        assert f"schema at revision {head_revision()}" in done.stdout
        assert (tmp_path / "syncsvc.db").exists()


class TestDemo:
    def test_demo_directory_syncs_without_any_config(self, tmp_path: Path) -> None:
        """No config file: the bundled directory (200 users, 20 groups) lands in ./syncsvc.db."""
        done = syncsvc("sync", cwd=tmp_path)
        assert 0 == done.returncode, done.stderr
        assert "created=220" in done.stdout
        again = syncsvc("sync", cwd=tmp_path)
        assert "created=0 updated=0 unchanged=220" in again.stdout
