"""configure_logging: one structlog chain, JSON or console, stdlib routed, secrets hidden."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any, Literal

import pytest
import structlog

from syncsvc.logconfig import RedactSecrets, configure_logging
from syncsvc.redact import is_secret_key, mask_url_password
from syncsvc.settings import LogSettings


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)

Level = Literal["debug", "info", "warning", "error"]
# Far from the tests that raise with it: a traceback shows the source lines around each frame,
# and the value must not be there for the wrong reason (source code is not a runtime secret).
DB_PASSWORD = "hunter2"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def json_logger(level: Level = "info") -> tuple[io.StringIO, Any]:
    stream = io.StringIO()
    configure_logging(LogSettings(level=level, format="json"), stream=stream)
    return stream, structlog.get_logger()


class TestJson:
    def test_line_has_event_level_timestamp_and_context(self) -> None:
        """A JSON line carries the event, level, UTC ISO timestamp and bound contextvars."""
        stream, log = json_logger()
        structlog.contextvars.bind_contextvars(request_id="req-1")

        log.info("sync.started", mode="full")

        (line,) = lines(stream)
        assert ("sync.started", "info", "full", "req-1") == (
            line["event"], line["level"], line["mode"], line["request_id"])
        assert line["timestamp"].endswith("Z")

    def test_below_level_is_dropped(self) -> None:
        """The filtering bound logger drops events below the configured level."""
        stream, log = json_logger("warning")

        log.info("quiet")
        log.warning("loud")

        assert ["loud"] == [line["event"] for line in lines(stream)]

    def test_exceptions_become_structured_without_locals(self) -> None:
        """log.exception renders a dict traceback and leaves local variables out."""
        stream, log = json_logger()
        given = "s3cret"

        try:
            raise ValueError(len(given))
        except ValueError:
            log.exception("ldap.bind_failed")

        (line,) = lines(stream)
        assert "ValueError" == line["exception"][0]["exc_type"]
        assert "s3cret" not in stream.getvalue()

    def test_auto_is_json_when_not_a_terminal(self) -> None:
        """format=auto renders JSON on a stream that is not a TTY."""
        stream = io.StringIO()
        configure_logging(LogSettings(format="auto"), stream=stream)

        structlog.get_logger().info("x.y")

        assert "x.y" == lines(stream)[0]["event"]


class TestConsole:
    def test_auto_is_console_on_a_terminal(self) -> None:
        """format=auto renders for people (not JSON) when the stream is a TTY."""
        stream = _Tty()
        configure_logging(LogSettings(format="auto"), stream=stream)

        structlog.get_logger().info("x.y", password="s3cret")

        text = stream.getvalue()
        assert "x.y" in text and not text.lstrip().startswith("{")
        assert "s3cret" not in text

    def test_secrets_in_a_traceback_are_masked(self) -> None:
        """log.exception on a terminal hides a URL password and an API token in the exception
        message, as the JSON format does."""
        stream = _Tty()
        configure_logging(LogSettings(format="console"), stream=stream)
        token = "scs_" + "Ab3_-" * 8 + "xyz"

        try:
            raise ValueError(f"db://syncsvc:{DB_PASSWORD}@db/x {token}")
        except ValueError:
            structlog.get_logger().exception("store.connect_failed")

        text = stream.getvalue()
        assert "store.connect_failed" in text and "ValueError" in text
        assert "hunter2" not in text and token not in text
        assert "scs_***" in text

    def test_secrets_in_a_library_traceback_are_masked(self) -> None:
        """A library logging an exception through stdlib logging gets the same masking."""
        stream = _Tty()
        configure_logging(LogSettings(format="console"), stream=stream)

        try:
            raise ConnectionError(f"connect to postgresql://u:{DB_PASSWORD}@db/x failed")
        except ConnectionError:
            logging.getLogger("sqlalchemy.pool").error("pool error", exc_info=True)

        text = stream.getvalue()
        assert "pool error" in text and "ConnectionError" in text
        assert "hunter2" not in text


class TestStdlib:
    def test_library_warnings_are_structured(self) -> None:
        """stdlib warnings (sqlalchemy, aiohttp) come out as JSON with the logger name."""
        stream, _ = json_logger()

        logging.getLogger("sqlalchemy.pool").warning("pool %s exhausted", "main")
        logging.getLogger("aiohttp.access").info("GET /")

        (line,) = lines(stream)
        assert ("pool main exhausted", "sqlalchemy.pool", "warning") == (
            line["event"], line["logger"], line["level"])

    def test_reconfiguring_replaces_the_handler(self) -> None:
        """Calling configure_logging twice leaves one handler, not two copies of each line."""
        json_logger()
        stream, _ = json_logger()

        logging.getLogger("alembic").warning("once")

        assert 1 == len(lines(stream))

    def test_default_stream_is_stderr(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Logs go to stderr so that stdout stays clean for CLI output."""
        configure_logging(LogSettings(format="json"))

        structlog.get_logger().warning("to.stderr")

        captured = capsys.readouterr()
        assert "" == captured.out
        assert "to.stderr" in captured.err


class TestRedactSecrets:
    def test_secret_keys_are_masked_at_any_depth(self) -> None:
        """password, Authorization headers and URL passwords are replaced by ***."""
        stream, log = json_logger()

        log.info("http.request", password="p1", headers={"Authorization": "Bearer t0k"},
                 dsn="postgresql://u:hunter2@db/x", token_name="ci")

        (line,) = lines(stream)
        assert "***" == line["password"] == line["headers"]["Authorization"]
        assert "postgresql://u:***@db/x" == line["dsn"]
        assert "ci" == line["token_name"]

    def test_processor_does_not_modify_its_input(self) -> None:
        """RedactSecrets returns a new dict; callers' data is left alone."""
        event = {"event": "x", "client_secret": "abc"}

        out = RedactSecrets()(None, "info", event)

        assert ("***", "abc") == (out["client_secret"], event["client_secret"])

    @pytest.mark.parametrize(("key", "secret"), [
        ("bind_password", True), ("Authorization", True), ("access_token", True),
        ("Set-Cookie", True), ("clientSecret", True), ("token_name", False),
        ("page_size", False),
    ])
    def test_secret_key_names(self, key: str, secret: bool) -> None:
        """Secret-looking names are recognised case-insensitively; metadata names are not."""
        assert secret is is_secret_key(key)

    @pytest.mark.parametrize(("url", "expected"), [
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        ("ldap://h:389", "ldap://h:389"),
        ("http://user@h/", "http://user@h/"),
        ("copy a://u:p@x/y to b://v:q@h:5 now", "copy a://u:***@x/y to b://v:***@h:5 now"),
    ])
    def test_url_password_masking(self, url: str, expected: str) -> None:
        """Only the password part of a URL's authority is hidden."""
        assert expected == mask_url_password(url)


class TestTokensInText:
    def test_a_token_inside_any_string_is_masked(self) -> None:
        """A token in a message (aiohttp logs a malformed header line whole) is masked, even
        cut short; the scs_ prefix stays so the line still says what was there."""
        stream, log = json_logger()
        token = "scs_" + "Ab3_-" * 8 + "xyz"

        log.warning("Error handling request", detail=f"b'Authorization: Bearer {token}\\x7f'",
                    cut=token[:20], word="scs_short")

        (line,) = lines(stream)
        assert ("b'Authorization: Bearer scs_***\\x7f'", "scs_***", "scs_short") == (
            line["detail"], line["cut"], line["word"])
