"""Statements compiled once for the raw point reads (syncsvc.store.rawreads, pgreads)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import create_async_engine

from syncsvc import jsoncodec
from syncsvc.store.pgreads import PgReader
from syncsvc.store.rawreads import RawStatement, StatementCache

THINGS = Table("things", MetaData(), Column("id", String, primary_key=True), Column("n", Integer),
               Column("on", Boolean), Column("at", DateTime(timezone=True)), Column("doc", JSON))


def _sqlite() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute('CREATE TABLE things (id TEXT, n INTEGER, "on" BOOLEAN, at DATETIME, doc JSON)')
    conn.execute("INSERT INTO things VALUES ('a', 1, 1, '2026-11-27 15:13:09.123456', ?)",
                 ('{"x": [1]}',))
    conn.execute("INSERT INTO things VALUES ('b', 2, 0, NULL, NULL)")
    return conn


def test_rows_carry_names_and_processed_values() -> None:
    dialect = sqlite.dialect(json_deserializer=jsoncodec.loads)
    raw = RawStatement(select(THINGS).where(THINGS.c.id == bindparam("value")), dialect)
    conn = _sqlite()
    (row,) = raw.rows(conn.execute(raw.sql, raw.args({"value": "a"})))
    assert ("id", "n", "on", "at", "doc") == row._fields
    assert ("a", 1, True, {"x": [1]}) == (row.id, row.n, row.on, row.doc)
    assert (2026, 123456, None) == (row.at.year, row.at.microsecond, row.at.tzinfo)
    (empty,) = raw.rows(conn.execute(raw.sql, raw.args({"value": "b"})))
    assert (False, None, None) == (empty.on, empty.at, empty.doc)


def test_literal_values_are_bound_not_written_into_the_sql() -> None:
    statement = select(THINGS.c.id).where(THINGS.c.n == 2, THINGS.c.id == bindparam("value"))
    raw = RawStatement(statement, sqlite.dialect())
    assert "2" not in raw.sql and "'" not in raw.sql
    assert (2, "b") == raw.args({"value": "b"})
    found = _sqlite().execute(raw.sql, raw.args({"value": "b"}))
    assert [("b",)] == [tuple(r) for r in raw.rows(found)]


def test_a_missing_parameter_is_an_error() -> None:
    raw = RawStatement(select(THINGS).where(THINGS.c.id == bindparam("value")), sqlite.dialect())
    with pytest.raises(InvalidRequestError, match="value"):
        raw.args({})


def test_expanding_parameters_are_refused() -> None:
    statement = select(THINGS).where(THINGS.c.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="plain bound"):
        RawStatement(statement, sqlite.dialect())


def test_postgres_json_text_is_decoded() -> None:
    """asyncpg without SQLAlchemy's codecs hands JSON over as text."""
    raw = RawStatement(select(THINGS.c.doc).where(THINGS.c.id == bindparam("value")),
                       postgresql.asyncpg.dialect())
    assert "$1" in raw.sql
    assert [{"x": 1}] == [r.doc for r in raw.rows([('{"x": 1}',)])]


def test_the_cache_compiles_once_and_stays_bounded() -> None:
    cache = StatementCache(sqlite.dialect, max_entries=2)
    statements = [select(THINGS).where(THINGS.c.n == bindparam("value")) for _ in range(3)]
    first = cache.get(statements[0])
    assert first is cache.get(statements[0])
    cache.get(statements[1])
    cache.get(statements[2])
    assert first is not cache.get(statements[0])  # the oldest went first


def test_pg_reader_connects_as_the_engine_does() -> None:
    engine = create_async_engine(
        "postgresql+asyncpg://u:secret@db.example:5433/store"
        "?prepared_statement_cache_size=0&ssl=require")
    args, kwargs = PgReader(engine)._connect_args
    expected = {"host": "db.example", "port": 5433, "database": "store", "user": "u",
                "password": "secret", "ssl": "require", "statement_cache_size": 0}
    assert ((), expected) == (args, kwargs)
