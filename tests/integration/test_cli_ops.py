"""The `syncsvc` command for operators and their scripts: one-line errors, --json, progress, help.

Real processes throughout (see test_cli.syncsvc); the directory is the bundled demo LDIF unless
a test is about LDAP itself.
"""

from __future__ import annotations

import errno
import json
import os
import pty
import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest

from syncsvc.cli import main
from syncsvc.settings import DEMO_LDIF
from syncsvc.store import head_revision
from tests.integration.test_cli import clean_env, syncsvc
from tests.support.postgres import sqlalchemy_url


def human_lines(stderr: str) -> list[str]:
    """stderr without the JSON log lines and progress lines: what the command says to a person."""
    return [line for line in stderr.splitlines()
            if line.strip() and not line.startswith(("{", "progress: "))]


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, *parts: str) -> str:
    """Exit ``code``, no traceback, exactly one "syncsvc: ..." line naming every part."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = human_lines(done.stderr)
    assert code == done.returncode, done.stderr
    assert 1 == len(lines), done.stderr
    assert lines[0].startswith("syncsvc: "), lines[0]
    for part in parts:
        assert part in lines[0]
    return lines[0]


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(folder: Path, *, ldap_url: str = f"ldif://{DEMO_LDIF}",
                 store_url: str = "sqlite:///store.db") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "syncsvc.toml"
    path.write_text(f'[ldap]\nurl = "{ldap_url}"\nbind_dn = "cn=reader,dc=example,dc=com"\n'
                    f'bind_password = "secret-bind-pw"\nbase_dn = "dc=example,dc=com"\n\n'
                    f'[store]\nurl = "{store_url}"\n\n[log]\nformat = "json"\n')
    return path


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose store holds one full sync of the demo directory (shared: read-only tests)."""
    folder = tmp_path_factory.mktemp("synced")
    write_config(folder)
    done = syncsvc("sync", "--progress", "none", cwd=folder)
    assert 0 == done.returncode, done.stderr
    return folder


class TestOneLineErrors:
    def test_missing_config_file(self, tmp_path: Path) -> None:
        """--config nope.toml: exit 2 and the path, not a traceback."""
        done = syncsvc("--config", "nope.toml", "sync", cwd=tmp_path)
        assert_one_line_error(done, 2, str(tmp_path / "nope.toml"), "No such file")

    def test_malformed_toml_names_the_line(self, tmp_path: Path) -> None:
        """An unterminated string on line 3: exit 2, the file and "line 3"."""
        (tmp_path / "syncsvc.toml").write_text('[ldap]\nbase_dn = "dc=x"\nurl = "ldap://x\n')
        done = syncsvc("runs", "list", cwd=tmp_path)
        assert_one_line_error(done, 2, "syncsvc.toml", "not valid TOML", "line 3")

    def test_ldap_connection_refused(self, tmp_path: Path) -> None:
        """Nothing listens on the LDAP port: the run fails (exit 1), one line says why."""
        url = f"ldap://127.0.0.1:{_closed_port()}"
        write_config(tmp_path, ldap_url=url)
        done = syncsvc("sync", cwd=tmp_path)
        line = assert_one_line_error(done, 1, "sync failed", "no directory server reachable", url)
        assert "Connection refused" in line
        assert "secret-bind-pw" not in done.stdout + done.stderr

    def test_ldap_host_that_does_not_resolve(self, tmp_path: Path) -> None:
        """A DNS name that cannot exist (.invalid, RFC 2606): exit 1, one line with the URL."""
        write_config(tmp_path, ldap_url="ldap://no-such-host.invalid")
        done = syncsvc("sync", cwd=tmp_path)
        assert_one_line_error(done, 1, "sync failed", "ldap://no-such-host.invalid")

    def test_postgresql_refuses_the_login(self, tmp_path: Path, pg_admin_url: str) -> None:
        """A role the server does not know (its answer to a wrong login): exit 1, no password."""
        url = sqlalchemy_url(pg_admin_url, "postgres").replace("://postgres@", "://nobody:pw1@")
        write_config(tmp_path, store_url=url)
        done = syncsvc("runs", "list", cwd=tmp_path)
        line = assert_one_line_error(done, 1, "cannot connect to the database", "nobody",
                                     'role "nobody" does not exist')
        assert "pw1" not in line

    def test_postgresql_unreachable(self, tmp_path: Path) -> None:
        """Nothing listens where the store should be: exit 1, "Connection refused"."""
        port = _closed_port()
        write_config(tmp_path, store_url=f"postgresql+asyncpg://u:pw2@127.0.0.1:{port}/db")
        done = syncsvc("token", "list", cwd=tmp_path)
        line = assert_one_line_error(done, 1, f"127.0.0.1:{port}", "Connection refused")
        assert "pw2" not in line

    def test_sqlite_folder_missing(self, tmp_path: Path) -> None:
        """The store's folder does not exist: exit 1, the folder named."""
        write_config(tmp_path, store_url="sqlite:///no/such/folder/store.db")
        done = syncsvc("db", "upgrade", cwd=tmp_path)
        assert_one_line_error(done, 1, str(tmp_path / "no" / "such" / "folder"), "does not exist")

    def test_sqlite_folder_read_only(self, tmp_path: Path) -> None:
        """The store's folder cannot be written: exit 1, the folder named, "read-only"."""
        if os.geteuid() == 0:
            # root writes through file modes; sysfs refuses new files even to root.
            folder = Path("/sys")
        else:
            folder = tmp_path / "ro"
            folder.mkdir(mode=0o555)
        write_config(tmp_path, store_url=f"sqlite:///{folder}/store.db")
        done = syncsvc("sync", cwd=tmp_path)
        assert_one_line_error(done, 1, str(folder), "read-only")

    def test_port_in_use(self, tmp_path: Path) -> None:
        """serve on a port another process holds: exit 1, one line naming host:port."""
        write_config(tmp_path)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            port = sock.getsockname()[1]
            done = syncsvc("serve", cwd=tmp_path, env={"SYNCSVC_HTTP__PORT": str(port)})
        assert_one_line_error(done, 1, f"127.0.0.1:{port}", "in use")


class TestJsonOutput:
    def test_sync_json_is_the_run(self, tmp_path: Path) -> None:
        """sync --json: stdout is one JSON document; runs show --json agrees with it."""
        write_config(tmp_path)
        done = syncsvc("sync", "--json", cwd=tmp_path)
        assert 0 == done.returncode, done.stderr
        run = json.loads(done.stdout)
        assert ("full", "success", False) == (run["mode"], run["status"], run["dry_run"])
        assert {"read": 220, "created": 220, "problems": 0} == {
            k: run["counts"][k] for k in ("read", "created", "problems")}
        shown = json.loads(syncsvc("runs", "show", "--json", run["id"], cwd=tmp_path).stdout)
        assert (run["id"], run["counts"]) == (shown["id"], shown["counts"])

    def test_dry_run_json_lists_the_changes(self, tmp_path: Path) -> None:
        """sync --dry-run --json: every planned creation, and no run recorded."""
        write_config(tmp_path)
        run = json.loads(syncsvc("sync", "--dry-run", "--json", cwd=tmp_path).stdout)
        assert 220 == sum(1 for c in run["changes"] if c["action"] == "create")
        assert [] == json.loads(syncsvc("runs", "list", "--json", cwd=tmp_path).stdout)

    def test_failed_sync_json_still_parses(self, tmp_path: Path) -> None:
        """A failed run: exit 1, stdout still one JSON document with the reason."""
        write_config(tmp_path, ldap_url=f"ldap://127.0.0.1:{_closed_port()}")
        done = syncsvc("sync", "--json", cwd=tmp_path)
        assert 1 == done.returncode
        run = json.loads(done.stdout)
        assert "failed" == run["status"]
        assert "no directory server reachable" in run["detail"]

    def test_runs_and_tokens_json(self, synced: Path) -> None:
        """runs list --json and token list --json: lists a script can index."""
        runs = json.loads(syncsvc("runs", "list", "--json", cwd=synced).stdout)
        assert ["success"] == [r["status"] for r in runs]
        tokens = json.loads(syncsvc("token", "list", "--json", cwd=synced).stdout)
        assert isinstance(tokens, list)

    def test_db_upgrade_json(self, synced: Path) -> None:
        """db upgrade --json: the revision the store is at, which is the newest one."""
        done = syncsvc("db", "upgrade", "--json", cwd=synced)
        assert {"revision": head_revision(), "head": head_revision()} == json.loads(done.stdout)

    def test_check_config_json(self, tmp_path: Path) -> None:
        """check-config --json: ok with masked settings; or not ok, every problem, exit 2."""
        write_config(tmp_path)
        good = syncsvc("check-config", "--json", cwd=tmp_path)
        body = json.loads(good.stdout)
        assert (0, True, []) == (good.returncode, body["ok"], body["problems"])
        assert "***" == body["settings"]["ldap"]["bind_password"]
        assert "secret-bind-pw" not in good.stdout
        (tmp_path / "syncsvc.toml").write_text('[ldap]\npage_size = "lots"\nnope = 1\n')
        bad = syncsvc("check-config", "--json", cwd=tmp_path)
        body = json.loads(bad.stdout)
        assert (2, False, None) == (bad.returncode, body["ok"], body["settings"])
        named = [key for key in ("ldap.nope", "ldap.page_size", "ldap.url")
                 if any(key in problem for problem in body["problems"])]
        assert ["ldap.nope", "ldap.page_size", "ldap.url"] == named


class TestProgress:
    def test_plain_lines_when_stderr_is_not_a_terminal(self, tmp_path: Path) -> None:
        """Each phase and the final counts as "progress:" lines; the summary stays on stdout."""
        write_config(tmp_path)
        done = syncsvc("sync", cwd=tmp_path)
        assert 0 == done.returncode, done.stderr
        progress = [l for l in done.stderr.splitlines() if l.startswith("progress: ")]
        assert "progress: reading" == progress[0]
        assert "progress: users: 200 entries read, 1 page written" in progress
        assert "progress: groups: 20 entries read, 1 page written" in progress
        assert "progress:" not in done.stdout

    def test_progress_none_is_silent(self, synced: Path) -> None:
        """--progress none: no progress lines at all."""
        done = syncsvc("sync", "--progress", "none", cwd=synced)
        assert 0 == done.returncode, done.stderr
        assert "progress" not in done.stderr

    def test_live_display_on_a_terminal(self, tmp_path: Path) -> None:
        """stderr on a terminal (a pty): a live display with the counts; stdout unchanged."""
        write_config(tmp_path)
        master, slave = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "syncsvc", "sync"], cwd=tmp_path,
                                env={**clean_env(), "COLUMNS": "160"}, stdout=subprocess.PIPE,
                                stderr=slave, text=True)
        os.close(slave)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError as exc:  # EIO: the child closed its end
                assert errno.EIO == exc.errno
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(master)
        out, _ = proc.communicate(timeout=60)
        screen = b"".join(chunks).decode(errors="replace")
        assert 0 == proc.returncode, screen
        assert "users" in screen and "200 entries read, 1 page written" in screen
        assert "progress: " not in screen  # the live display, not the plain lines
        assert out.startswith("full sync success")


class TestHelp:
    def test_every_command_and_option_explains_itself(self) -> None:
        """Each command and subcommand has a description; each option has help text."""
        missing: list[str] = []

        def walk(command: click.Command, path: str) -> None:
            if not (command.help or "").strip():
                missing.append(f"{path}: no description")
            for param in command.params:
                if isinstance(param, click.Option) and not param.help:
                    missing.append(f"{path} {param.opts[0]}: no help")
            if isinstance(command, click.Group):
                for name, sub in command.commands.items():
                    walk(sub, f"{path} {name}")

        walk(main, "syncsvc")
        assert [] == missing

    def test_help_names_the_program_and_commands(self, tmp_path: Path) -> None:
        """`syncsvc sync --help` (a real process): usage under the program's name, exit 0."""
        done = syncsvc("sync", "--help", cwd=tmp_path)
        assert 0 == done.returncode
        assert done.stdout.startswith("Usage: syncsvc sync [OPTIONS]")
        for option in ("--full", "--incremental", "--dry-run", "--allow-deletions", "--json",
                       "--progress"):
            assert option in done.stdout
