"""The secret scanner of the test run (tests/support/logscan.py) really catches leaks.

Each test plants a secret through one of the paths syncsvc logs through, with a private
scanner attached to the same taps as the session's, and checks that it is flagged. The
planted values are allowed on the session's scanner, so they do not fail this run.
"""

from __future__ import annotations

import io
import logging
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from syncsvc.auth.tokens import generate_secret
from syncsvc.logconfig import configure_logging
from syncsvc.settings import LogSettings
from tests.support.logscan import LogScan, capturing


@pytest.fixture
def planted(logscan: LogScan) -> Iterator[tuple[LogScan, str, str]]:
    """A private scanner knowing one password; a fresh token; both allowed on the session's."""
    password = "pw-" + secrets.token_hex(8)
    token = generate_secret()
    logscan.allow(password)
    logscan.allow(token)
    scan = LogScan()
    scan.add_secret(password)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    structlog.reset_defaults()
    try:
        with capturing(scan):
            yield scan, password, token
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers  # configure_logging() added its own
        root.setLevel(level)


def _secrets(scan: LogScan) -> list[str]:
    """The masked secrets found, each once (a line may pass through two taps)."""
    return sorted({leak.secret for leak in scan.leaks})


class TestCatches:
    def test_structlog_default_chain(self, planted: tuple[LogScan, str, str]) -> None:
        """A password in a message and a token in any value are flagged."""
        scan, password, token = planted
        log = structlog.get_logger("t")

        log.warning("ldap.bind_failed", detail=f"bind with {password} refused")
        log.info("push.request", header=f"Bearer {token}")

        assert sorted([password[:6] + "…", token[:6] + "…"]) == _secrets(scan)

    def test_configured_json_chain(self, planted: tuple[LogScan, str, str]) -> None:
        """The production chain (configure_logging, JSON) is scanned too."""
        scan, password, _token = planted
        configure_logging(LogSettings(format="json"), stream=io.StringIO())

        structlog.get_logger().error("sync.failed", error=f"ldap://svc:{password}x@host refused")
        structlog.get_logger().error("sync.failed", note=password)

        assert [password[:6] + "…"] == _secrets(scan)  # the URL's password was masked

    def test_capture_logs_events(self, planted: tuple[LogScan, str, str]) -> None:
        """Events swallowed by structlog.testing.capture_logs are scanned as well."""
        scan, _password, token = planted

        with structlog.testing.capture_logs():
            structlog.get_logger().info("auth.denied", presented=token)

        assert [token[:6] + "…"] == _secrets(scan)

    def test_exception_messages(self, planted: tuple[LogScan, str, str]) -> None:
        """A secret inside a logged exception's message is flagged."""
        scan, password, _token = planted
        try:
            raise RuntimeError(f"cannot bind as cn=svc with {password}")
        except RuntimeError:
            structlog.get_logger().exception("ldap.error")

        assert [password[:6] + "…"] == _secrets(scan)

    def test_stdlib_logging(self, planted: tuple[LogScan, str, str]) -> None:
        """Library lines through the logging module reach the scanner."""
        scan, password, _token = planted

        logging.getLogger("sqlalchemy.engine").warning("connect failed: %s", password)

        assert [password[:6] + "…"] == _secrets(scan)

    def test_syncsvc_subprocess_stderr(self, planted: tuple[LogScan, str, str]) -> None:
        """stderr of a syncsvc process, read by run() or through the Popen pipe, is scanned."""
        scan, password, token = planted
        code = "import sys; sys.stderr.write(sys.argv[1] + '\\n')"

        subprocess.run([sys.executable, "-c", code, password, "syncsvc"], capture_output=True,
                       check=True)
        with subprocess.Popen([sys.executable, "-c", code, token, "syncsvc"],
                              stderr=subprocess.PIPE, text=True) as proc:
            assert proc.stderr is not None
            proc.stderr.read()

        assert sorted([password[:6] + "…", token[:6] + "…"]) == _secrets(scan)


class TestDoesNotCry:
    def test_masked_and_partial_values_pass(self, planted: tuple[LogScan, str, str]) -> None:
        """Secret-named keys (masked in production), token prefixes and names are fine."""
        scan, password, token = planted
        log = structlog.get_logger()

        log.info("auth.ok", token=token, bind_password=password, token_name="okta")
        log.info("auth.denied", prefix=token[:12], shape="scs_short")

        assert ([], 2) == (scan.leaks, scan.lines)

    def test_a_tokens_stdout_is_not_a_log(self, planted: tuple[LogScan, str, str]) -> None:
        """`token create` prints its token on stdout on purpose: stdout is not scanned."""
        scan, _password, token = planted

        subprocess.run([sys.executable, "-c", f"print({token!r})", "syncsvc"],
                       capture_output=True, check=True)

        assert [] == scan.leaks


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one_process", "xdist_workers"])
def test_a_leak_fails_the_whole_run(tmp_path: Path, logscan: LogScan, workers: list[str]) -> None:
    """A test that passes but logs a token makes pytest exit 1, naming the test; also when it
    ran in a pytest-xdist worker (scripts/test runs the suite over several)."""
    token = generate_secret()
    logscan.allow(token)
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        from tests.support.logscan import LogScanPlugin

        def pytest_configure(config):
            config.pluginmanager.register(LogScanPlugin(), "syncsvc-logscan-inner")
    """))
    (tmp_path / "test_leaky.py").write_text(textwrap.dedent(f"""
        import structlog

        def test_leaky():
            structlog.get_logger().info("push.sent", header="Bearer {token}")

        def test_clean():
            structlog.get_logger().info("push.sent", header="Bearer [masked]")
    """))
    root = Path(__file__).resolve().parents[2]

    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), "-q", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", "/dev/null", *workers],
        cwd=root, capture_output=True, text=True, env={"PYTHONPATH": str(root), "PATH": "/usr/bin"},
    )

    assert 1 == done.returncode, done.stdout + done.stderr
    assert "secrets in log lines" in done.stdout
    assert "test_leaky.py::test_leaky [structlog] scs_" in done.stdout
    assert token not in done.stdout
