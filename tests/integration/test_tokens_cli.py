"""`syncsvc token ...` as users run it: a real process, its stdout, stderr and exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syncsvc.auth.tokens import looks_like_token
from syncsvc.settings import DEMO_LDIF
from tests.integration.test_cli import syncsvc


@pytest.fixture
def workdir(tmp_path: Path, store_url: str) -> Path:
    """A folder whose syncsvc.toml points at a fresh store (SQLite, then PostgreSQL)."""
    (tmp_path / "syncsvc.toml").write_text(
        f'[ldap]\nurl = "ldif://{DEMO_LDIF}"\n\n[store]\nurl = "{store_url}"\n\n'
        '[log]\nformat = "json"\n'
    )
    return tmp_path


class TestCreate:
    def test_stdout_holds_only_the_token(self, workdir: Path) -> None:
        """One line on stdout, the secret; the note and logs go to stderr."""
        done = syncsvc("token", "create", "--name", "okta", "--scopes", "scim:read,scim:write",
                       cwd=workdir)

        assert 0 == done.returncode, done.stderr
        assert [True] == [looks_like_token(line) for line in done.stdout.splitlines()]
        assert done.stdout.strip() not in done.stderr

    def test_duplicate_name_exits_1_with_one_line(self, workdir: Path) -> None:
        """The second create of a name: exit 1, one line on stderr naming it, nothing on stdout."""
        assert 0 == syncsvc("token", "create", "--name", "okta", "--scopes", "admin",
                            cwd=workdir).returncode

        done = syncsvc("token", "create", "--name", "okta", "--scopes", "scim:read", cwd=workdir)

        assert (1, "") == (done.returncode, done.stdout)
        assert ["syncsvc: a token named 'okta' already exists; choose another name"] == (
            done.stderr.strip().splitlines())

    def test_unknown_scope_exits_1_listing_valid_scopes(self, workdir: Path) -> None:
        """A typo in --scopes: exit 1 and the list of what exists."""
        done = syncsvc("token", "create", "--name", "okta", "--scopes", "scim:reed", cwd=workdir)

        assert (1, "") == (done.returncode, done.stdout)
        assert ["syncsvc: unknown scope 'scim:reed'; valid scopes: scim:read, scim:write, metrics, admin"] == (
            done.stderr.strip().splitlines())


class TestListAndRevoke:
    def test_list_revoke_list(self, workdir: Path) -> None:
        """list shows tokens without secrets; revoke marks one; unknown names exit 1."""
        secret = syncsvc("token", "create", "--name", "okta", "--scopes", "scim:write",
                         cwd=workdir).stdout.strip()
        syncsvc("token", "create", "--name", "ops", "--scopes", "admin", cwd=workdir)

        table = syncsvc("token", "list", cwd=workdir)
        revoked = syncsvc("token", "revoke", "okta", cwd=workdir)
        listed = json.loads(syncsvc("token", "list", "--json", cwd=workdir).stdout)
        unknown = syncsvc("token", "revoke", "nobody", cwd=workdir)

        assert 0 == table.returncode, table.stderr
        assert ["NAME", "okta", "ops"] == [line.split()[0] for line in table.stdout.splitlines()]
        assert secret not in table.stdout + json.dumps(listed)
        assert (0, "revoked okta") == (revoked.returncode, revoked.stdout[:12])
        assert [("okta", ["scim:write"], True), ("ops", ["admin"], False)] == [
            (t["name"], t["scopes"], t["revoked"] is not None) for t in listed]
        assert (1, ["syncsvc: no token named 'nobody'"]) == (
            unknown.returncode, unknown.stderr.strip().splitlines())

    def test_empty_list_prints_nothing_on_stdout(self, workdir: Path) -> None:
        """No tokens: empty stdout (a hint on stderr), and [] as JSON."""
        table = syncsvc("token", "list", cwd=workdir)
        as_json = syncsvc("token", "list", "--json", cwd=workdir)

        assert ("", []) == (table.stdout, json.loads(as_json.stdout))
