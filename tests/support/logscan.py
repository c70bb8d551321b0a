"""No secret in any log line: a pytest plugin that scans every line logged during a test run.

What it sees, for the whole session, from the moment the plugin is configured:

- structlog events, at the renderer (``ConsoleRenderer``, ``JSONRenderer``, ``KeyValueRenderer``,
  ``LogfmtRenderer``) and at ``structlog.testing.LogCapture`` (``capture_logs`` swallows events
  before any renderer). Values under secret-named keys are masked first, as production's
  redaction step does (tests that never configure logging run structlog's default chain,
  which lacks it); a token anywhere else in syncsvc's own event is a leak, even though that
  step would mask it too: it is the last resort, not a licence. Tracebacks are formatted in
  and redacted like the JSON chain does;
- stdlib ``logging`` records that reach the root logger (SQLAlchemy, aiohttp, asyncio...),
  after :func:`syncsvc.redact.redact_tree` (libraries are not ours to fix: what counts is what
  production writes);
- the stderr of ``syncsvc`` subprocesses the tests run with a pipe (``subprocess.run(...,
  capture_output=True)``, ``Popen(..., stderr=PIPE)``), where the real ``configure_logging``
  writes. stdout is not a log: ``token create`` prints its token there on purpose.

A line is a leak when it contains a known secret (the bind passwords of the test directory,
anything given to :meth:`LogScan.add_secret`) or any full API token (``scs_`` + 43 base64url
characters, whoever made it). At the end of the session every leak is printed with the test
that was running, and the run fails.

``tests/conftest.py`` registers :class:`LogScanPlugin` (as ``PLUGIN_NAME``); tests get the
session's scanner from its ``logscan`` fixture.
"""

from __future__ import annotations

import contextlib
import logging
import re
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Final

import pytest
import structlog

from syncsvc.redact import MASK, is_secret_key, mask_url_password, redact_tree

__all__ = ["PLUGIN_NAME", "TOKEN_SHAPE", "Leak", "LogScan", "LogScanPlugin", "capturing"]

PLUGIN_NAME: Final = "syncsvc-logscan"

TOKEN_SHAPE: Final = re.compile(r"scs_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
"""A full syncsvc API token (see syncsvc.auth.tokens); a shorter ``scs_...`` is no secret."""

_MIN_SECRET: Final = 6  # shorter "secrets" would match ordinary words in ordinary lines


@dataclass(frozen=True, slots=True)
class Leak:
    source: str  # structlog | logging | subprocess:<argv0>
    test: str  # the test that was running (nodeid), or "" outside tests
    secret: str  # masked: first characters only
    line: str  # the offending line, the secret masked


def _mask(secret: str) -> str:
    return secret[:6] + "…"


@dataclass
class LogScan:
    """Scans log lines for secrets; collects :class:`Leak` records (lines are not kept)."""

    secrets: set[str] = field(default_factory=set)
    allowed: set[str] = field(default_factory=set)
    leaks: list[Leak] = field(default_factory=list)
    lines: int = 0
    current_test: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_secret(self, secret: str) -> None:
        """Treat ``secret`` as one that must never appear in a log line."""
        if len(secret) >= _MIN_SECRET:
            self.secrets.add(secret)

    def allow(self, value: str) -> None:
        """Do not report ``value``: a secret a test plants on purpose to check a scanner."""
        self.allowed.add(value)

    def scan(self, text: str, source: str) -> None:
        """Record a leak for each secret (or full token) in ``text``; ``text`` may be many lines."""
        if not text:
            return
        with self._lock:
            for line in text.splitlines() or [text]:
                self.lines += 1
                found = {s for s in self.secrets if s in line}
                found.update(TOKEN_SHAPE.findall(line))
                for secret in sorted(found - self.allowed):
                    shown = line.replace(secret, _mask(secret))
                    leak = Leak(source, self.current_test, _mask(secret), shown[:300])
                    if leak not in self.leaks[-20:]:  # the same line seen by two taps
                        self.leaks.append(leak)

    def merge(self, lines: int, leaks: Iterable[Leak]) -> None:
        """Add what another process's scanner saw (a pytest-xdist worker's)."""
        with self._lock:
            self.lines += lines
            self.leaks.extend(leaks)

    def report(self) -> str:
        rows = [f"{leak.test or '<outside tests>'} [{leak.source}] {leak.secret}: {leak.line}"
                for leak in self.leaks]
        return "\n".join(rows)


# --- the taps: installed once per process; each hands lines to every active scanner ---------

_ACTIVE: list[LogScan] = []
_TAPPED = False


def _emit(text: str, source: str) -> None:
    for scan in list(_ACTIVE):
        scan.scan(text, source)


def _mask_keys(value: Any, depth: int = 0) -> Any:
    """redact_tree minus its last resort (tokens masked inside any string): syncsvc's own
    events must not carry a token at all, only under a secret-named key (masked in production)."""
    if depth > 8:
        return value
    if isinstance(value, dict):
        return {k: MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "")
                else _mask_keys(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_keys(v, depth + 1) for v in value]
    if isinstance(value, str) and "://" in value:
        return mask_url_password(value)
    return value


def _event_text(event_dict: Any) -> str:
    """An event as production would write it: redacted, traceback included."""
    if not isinstance(event_dict, dict):
        return str(event_dict)
    event = dict(event_dict)
    exc_info = event.pop("exc_info", None)
    text = repr(_mask_keys(event))
    if exc_info:
        if exc_info is True:  # the renderer looks the exception up itself, as we do here
            exc_info = sys.exc_info()
        if isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if isinstance(exc_info, tuple) and len(exc_info) == 3 and exc_info[0] is not None:
            # The JSON chain renders the traceback before redacting: so do we.
            text += "\n" + redact_tree("".join(traceback.format_exception(*exc_info)))
    return text


def _tap_processor(cls: type, source: str = "structlog") -> None:
    original = cls.__call__

    def __call__(self: Any, logger: Any, method_name: str, event_dict: Any) -> Any:
        with contextlib.suppress(Exception):  # the scanner must never break logging itself
            _emit(_event_text(event_dict), source)
        return original(self, logger, method_name, event_dict)

    cls.__call__ = __call__  # type: ignore[method-assign]


class _RootTap(logging.Handler):
    """Sees every stdlib record that reaches the root logger (any level it lets through)."""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            text = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            # configure_logging sends these records through the same redaction step.
            _emit(redact_tree(text), f"logging:{record.name}")


def _is_syncsvc(args: Any) -> bool:
    argv = [args] if isinstance(args, str | bytes) else list(args or ())
    return any("syncsvc" in (a.decode() if isinstance(a, bytes) else str(a)) or
               "entrypoint" in str(a) for a in argv)


def _as_text(data: Any) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data if isinstance(data, str) else ""


class _TeeReader:
    """Wraps a subprocess's stderr pipe: what the test reads is scanned on the way."""

    def __init__(self, raw: IO[Any], source: str) -> None:
        self._raw = raw
        self._source = source
        self.consumed = False  # read through here (else communicate() read it past us)

    def _seen(self, data: Any) -> Any:
        self.consumed = True
        _emit(_as_text(data), self._source)
        return data

    def read(self, *args: Any) -> Any:
        return self._seen(self._raw.read(*args))

    def readline(self, *args: Any) -> Any:
        return self._seen(self._raw.readline(*args))

    def readlines(self, *args: Any) -> Any:
        lines = self._raw.readlines(*args)
        for line in lines:
            self._seen(line)
        return lines

    def __iter__(self) -> Iterator[Any]:
        for line in self._raw:
            yield self._seen(line)

    def __getattr__(self, name: str) -> Any:  # fileno, close, closed... for communicate()
        return getattr(self._raw, name)

    def __enter__(self) -> _TeeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._raw.close()


def _tap_subprocess() -> None:
    popen = subprocess.Popen
    original_init: Callable[..., None] = popen.__init__
    original_communicate = popen.communicate

    def __init__(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self.stderr is not None and _is_syncsvc(self.args):
            self.stderr = _TeeReader(self.stderr, f"subprocess:{_argv0(self.args)}")  # type: ignore[assignment]

    def communicate(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> Any:
        # communicate() reads the pipe with os.read, past the tee: scan what it returns.
        out, err = original_communicate(self, *args, **kwargs)
        tee = self.stderr if isinstance(self.stderr, _TeeReader) else None
        if err is not None and _is_syncsvc(self.args) and not (tee and tee.consumed):
            _emit(_as_text(err), f"subprocess:{_argv0(self.args)}")
        return out, err

    popen.__init__ = __init__  # type: ignore[method-assign]
    popen.communicate = communicate  # type: ignore[method-assign]


def _argv0(args: Any) -> str:
    argv = [args] if isinstance(args, str | bytes) else list(args or ())
    return " ".join(str(a) for a in argv[:3])


def _install_taps() -> None:
    """Tap structlog, stdlib logging and subprocess pipes, once per process."""
    global _TAPPED
    if _TAPPED:
        return
    _TAPPED = True
    for cls in (structlog.dev.ConsoleRenderer, structlog.processors.JSONRenderer,
                structlog.processors.KeyValueRenderer, structlog.processors.LogfmtRenderer):
        _tap_processor(cls)
    _tap_processor(structlog.testing.LogCapture)
    logging.getLogger().addHandler(_RootTap(level=logging.NOTSET))
    _tap_subprocess()


@contextlib.contextmanager
def capturing(scan: LogScan) -> Iterator[LogScan]:
    """Feed every log line to ``scan`` while the block runs."""
    _install_taps()
    _ACTIVE.append(scan)
    try:
        yield scan
    finally:
        _ACTIVE.remove(scan)


def _fixture_secrets() -> Iterable[str]:
    """The secrets the test fixtures use: the test directory's bind passwords."""
    from tests.support.slapd import Slapd

    fields = Slapd.__dataclass_fields__
    for name in ("admin_password", "service_password"):
        default = fields[name].default
        if isinstance(default, str):
            yield default


class LogScanPlugin:
    """Scans the whole session; fails it at the end when a secret was logged."""

    def __init__(self) -> None:
        self.scan = LogScan()
        for secret in _fixture_secrets():
            self.scan.add_secret(secret)
        self._capture = capturing(self.scan)

    def pytest_configure(self, config: pytest.Config) -> None:
        self._capture.__enter__()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        self.scan.current_test = item.nodeid
        try:
            return (yield)
        finally:
            self.scan.current_test = ""

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._capture.__exit__(None, None, None)
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # a pytest-xdist worker: the controller reports for all
            workeroutput[PLUGIN_NAME] = {
                "lines": self.scan.lines,
                "leaks": [asdict(leak) for leak in self.scan.leaks],
            }
        if self.scan.leaks:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """pytest-xdist's controller: add a finished worker's lines and leaks to its own scan,
        which runs no test itself (its sessionfinish comes after every worker is down)."""
        found = getattr(node, "workeroutput", {}).get(PLUGIN_NAME)
        if found is not None:
            self.scan.merge(found["lines"], [Leak(**leak) for leak in found["leaks"]])

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        scan = self.scan
        if scan.leaks:
            terminalreporter.section("secrets in log lines", red=True, bold=True)
            terminalreporter.line(scan.report())
            terminalreporter.line(f"{len(scan.leaks)} leak(s) in {scan.lines} log lines: "
                                  "the run fails")
        else:
            terminalreporter.write_line(f"logscan: {scan.lines} log lines, no secret")
