"""A SELECT compiled once by SQLAlchemy, run on the driver's own connection.

A GET of one user through SQLAlchemy's execution spent most of its read outside the database:
the execution context, the result's metadata and the row processing cost about 130 us against
35 us of SQLite work (bench/RESULTS.md). The statement here is the same Core select, compiled
once per dialect with bound parameters (no value is ever formatted into the SQL), and a row
comes back as a named tuple with the names and values SQLAlchemy's row would have: each column
goes through the dialect's own result processor, and JSON that the driver hands over as text
(asyncpg without SQLAlchemy's codecs) is decoded with :func:`syncsvc.jsoncodec.loads`.

Only plain bound parameters: a statement with an expanding (``IN``) or computed parameter is
refused when prepared, so a caller finds out at once rather than reading wrong rows.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.types import JSON

from syncsvc import jsoncodec

__all__ = ["RawStatement", "StatementCache"]

_REQUIRED = object()  # a parameter the caller must give


class RawStatement:
    """``statement`` compiled for ``dialect``: its SQL, its arguments in order, and its rows.

    Raises:
        ValueError: the statement has a parameter this cannot bind (expanding, computed), or
            the dialect's parameters are not positional.
    """

    __slots__ = ("sql", "_binds", "_decoders", "_row")

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if compiled.positiontup is None:
            raise ValueError(f"{dialect.name}: positional parameters expected")
        binds: list[tuple[str, Any, Callable[[Any], Any] | None]] = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            if bind.expanding or bind.callable is not None or bind.literal_execute:
                raise ValueError(f"parameter {name!r}: only plain bound parameters")
            fixed = _REQUIRED if bind.required else bind.value
            binds.append((name, fixed, bind.type.dialect_impl(dialect).bind_processor(dialect)))
        self.sql: str = compiled.string
        self._binds = tuple(binds)
        columns = statement.selected_columns
        decoders = []
        for index, column in enumerate(columns):
            impl = column.type.dialect_impl(dialect)
            decode = impl.result_processor(dialect, None)
            if decode is None and isinstance(impl, JSON):
                decode = jsoncodec.loads  # the driver connection has no JSON codec: text
            if decode is not None:
                decoders.append((index, decode))
        self._decoders = tuple(decoders)
        # Field access as on SQLAlchemy's Row (row.id, getattr(row, "manager_name", None)).
        self._row: Callable[[Iterable[Any]], Any] = namedtuple(  # type: ignore[misc]
            "RawRow", list(columns.keys()))._make

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The driver's arguments, in the order of the SQL's placeholders."""
        out = []
        for name, fixed, process in self._binds:
            value = params.get(name, fixed)
            if value is _REQUIRED:
                raise InvalidRequestError(f"A value is required for bind parameter {name!r}")
            out.append(process(value) if process is not None else value)
        return tuple(out)

    def rows(self, raw: Iterable[Sequence[Any]]) -> list[Any]:
        """Driver rows as named tuples holding what SQLAlchemy's rows would hold."""
        make, decoders = self._row, self._decoders
        if not decoders:
            return list(map(make, raw))
        out = []
        for values in raw:
            values = list(values)
            for index, decode in decoders:
                value = values[index]
                if value is not None:
                    values[index] = decode(value)
            out.append(make(values))
        return out


class StatementCache:
    """:class:`RawStatement` by statement object: callers build their selects once and pass
    the same object each time (building one costs more than running it). Bounded: a caller
    that builds a new select per read only compiles each time."""

    def __init__(self, dialect: Callable[[], Dialect], max_entries: int = 64) -> None:
        self._dialect = dialect  # asked at the first compile: connecting initialises it
        self._max_entries = max_entries
        self._compiled: dict[Select[Any], RawStatement] = {}

    def get(self, statement: Select[Any]) -> RawStatement:
        raw = self._compiled.get(statement)
        if raw is None:
            raw = RawStatement(statement, self._dialect())
            if len(self._compiled) >= self._max_entries:
                self._compiled.pop(next(iter(self._compiled)))
            self._compiled[statement] = raw
        return raw
