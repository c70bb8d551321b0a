"""Configure structlog (and route stdlib logging through it) once, at start-up.

One processor chain for everything: context variables first (``request_id``, ``sync_run``),
level, UTC ISO timestamp, then a redaction pass, then JSON (machines, non-terminals) or the
console renderer (a person at a terminal). Libraries that log through :mod:`logging`
(SQLAlchemy, aiohttp, Alembic) go through the same chain at WARNING and above, so their lines
are structured too. Logs go to stderr unless told otherwise: stdout is for CLI output such as
a freshly created token.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any, Final, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, ExcInfo, Processor, WrappedLogger

from syncsvc.redact import redact_tree
from syncsvc.settings import LogSettings

__all__ = ["RedactSecrets", "configure_logging"]

_STDLIB_FLOOR: Final = logging.WARNING  # library chatter below this is noise for operators


class RedactSecrets:
    """Processor: mask values of secret-named keys and URL passwords, at any nesting depth.

    The last line of defence, not the first: code should not log secrets at all. Keys match
    by name (``password``, ``secret``, ``token``, ``authorization``, ``cookie``...,
    case-insensitive; see :func:`syncsvc.redact.is_secret_key`).
    """

    def __call__(
        self, logger: WrappedLogger, method_name: str, event_dict: EventDict
    ) -> EventDict:
        redacted: EventDict = redact_tree(event_dict)
        return redacted


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or exotic streams
        return False


def _redacted_plain_traceback(sio: TextIO, exc_info: ExcInfo) -> None:
    """structlog's plain formatter (no Rich), redacted a line at a time."""
    text = "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    sio.write("\n" + "\n".join(redact_tree(line) for line in text.split("\n")))


def _console_renderer(colors: bool) -> structlog.dev.ConsoleRenderer:
    # Plain tracebacks, redacted line by line: Rich's show local variables (which hold
    # passwords) and wrap long lines, which would split a secret past any redaction. The JSON
    # format redacts the structured traceback; here the formatter must do it itself, since
    # RedactSecrets sees only the exc_info tuple.
    return structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=_redacted_plain_traceback)


def _chain(settings: LogSettings, stream: TextIO) -> tuple[list[Processor], Processor]:
    """The shared processors (without renderer) and the renderer for this format and stream."""
    tty = _is_tty(stream)
    as_json = settings.format == "json" or (settings.format == "auto" and not tty)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,  # first, so every later step sees the context
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if as_json:
        # Structured tracebacks; no locals, for the same reason as the console renderer.
        shared.append(structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False)))
    shared.append(RedactSecrets())
    renderer: Processor = (
        structlog.processors.JSONRenderer() if as_json else _console_renderer(colors=tty))
    return shared, renderer


class _SyncsvcHandler(logging.StreamHandler[TextIO]):
    """Marks the root handler we install, so that configuring again replaces it."""


def configure_logging(settings: LogSettings, *, stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger for ``settings``; call once at start-up.

    ``stream`` defaults to ``sys.stderr`` (looked up at call time). ``format="auto"`` means
    console output on a terminal and JSON otherwise. Calling again replaces the previous setup
    (tests do this) instead of stacking handlers.
    """
    out = stream if stream is not None else sys.stderr
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    shared, renderer = _chain(settings, out)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=True,
    )
    handler = _SyncsvcHandler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SyncsvcHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(level, _STDLIB_FLOOR))
