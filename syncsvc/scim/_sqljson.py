"""Reading SCIM values out of JSON columns, in SQL, on SQLite and PostgreSQL.

The two engines spell JSON access differently; this module is the one place that branches:

- SQLite (JSON text): ``json_extract(doc, path)`` / ``json_type(doc, path)`` with a JSONPath
  string (keys quoted: the enterprise URN key holds dots and colons), arrays via ``json_each``.
- PostgreSQL (JSONB): ``jsonb_extract_path[_text](doc, k1, k2, ...)`` / ``jsonb_typeof``, arrays
  via ``jsonb_array_elements``.

Explicit functions rather than SQLAlchemy's ``col[path]`` operators: the same accessor must also
work on an array element (``json_each.fullkey`` on SQLite, ``jsonb_array_elements.value`` on
PostgreSQL) and on a path with a column in it (an e-mail's position), which the operators do not
express. Every key is a bound parameter; nothing is formatted into SQL text.

Each accessor answers three questions with *two-valued* SQL (never NULL, so ``NOT`` is exact):
is the value there with JSON type T, what is its text, what is its number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    FromClause,
    Numeric,
    String,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    true,
)

__all__ = ["JsonKind", "JsonValue", "array_elements", "not_blank"]

JsonKind = Literal["string", "number", "boolean", "object", "array"]

# json_type() names (SQLite) and jsonb_typeof() names (PostgreSQL) of each JSON kind.
_SQLITE_KINDS: dict[str, tuple[str, ...]] = {
    "string": ("text",),
    "number": ("integer", "real"),
    "boolean": ("true", "false"),
    "object": ("object",),
    "array": ("array",),
}

Key = str | ColumnElement[Any]


def _sqlite_path(base: ColumnElement[str] | str, keys: Sequence[Key]) -> ColumnElement[str]:
    """A JSONPath: ``$."a"."b"`` or ``<element fullkey>."b"``; column keys become ``[n]``.

    Keys come from the schema (never a ``"``); runs of them are one bound string.
    """
    parts: list[ColumnElement[str] | str] = [base]
    for key in keys:
        if isinstance(key, str):
            if isinstance(parts[-1], str):
                parts[-1] += f'."{key}"'
            else:
                parts.append(f'."{key}"')
        else:
            if isinstance(parts[-1], str):
                parts[-1] += "["
            else:
                parts.append("[")
            parts += [cast(key, String), "]"]
    expr: ColumnElement[str] | None = None
    for part in parts:
        piece = literal(part, String) if isinstance(part, str) else part
        expr = piece if expr is None else expr + piece
    assert expr is not None
    return expr


@dataclass(frozen=True, slots=True)
class JsonValue:
    """The JSON value at ``keys`` below ``doc`` (or below an array element's path on SQLite)."""

    dialect: str
    doc: ColumnElement[Any]
    keys: tuple[Key, ...] = ()
    # SQLite only: the JSONPath of the starting node ("$" or a json_each fullkey).
    base: ColumnElement[str] | str = "$"

    def _pg_node(self) -> ColumnElement[Any]:
        if not self.keys:
            return self.doc
        return func.jsonb_extract_path(self.doc, *self._pg_keys())

    def _pg_keys(self) -> list[ColumnElement[Any]]:
        return [literal(k, Text) if isinstance(k, str) else cast(k, Text) for k in self.keys]

    def _sqlite_path(self) -> ColumnElement[str]:
        return _sqlite_path(self.base, self.keys)

    def is_kind(self, *kinds: JsonKind) -> ColumnElement[bool]:
        """The value is present and of one of ``kinds`` (JSON null counts as absent)."""
        # Each name its own plain bound value, not one expanding IN parameter: a list page's
        # statement is compiled once and run on the driver's connection (syncsvc.store.rawreads),
        # which binds plain parameters only.
        if self.dialect == "postgresql":
            typ = func.coalesce(func.jsonb_typeof(self._pg_node()), "")
            return typ.in_([literal(k, String) for k in kinds])
        typ = func.coalesce(func.json_type(self.doc, self._sqlite_path()), "")
        return typ.in_([literal(name, String) for k in kinds for name in _SQLITE_KINDS[k]])

    def text(self) -> ColumnElement[str]:
        """The value as SQL text; meaningful where ``is_kind("string")`` holds."""
        if self.dialect == "postgresql":
            if not self.keys:
                empty_path = cast(literal("{}", Text), ARRAY(Text))
                return self.doc.op("#>>", return_type=Text)(empty_path)
            return func.jsonb_extract_path_text(self.doc, *self._pg_keys(), type_=Text)
        return func.json_extract(self.doc, self._sqlite_path(), type_=Text)

    def number(self) -> ColumnElement[Any]:
        """The value as an SQL number; NULL unless ``is_kind("number")``."""
        if self.dialect == "postgresql":
            return case((self.is_kind("number"), cast(self.text(), Numeric)), else_=None)
        return func.json_extract(self.doc, self._sqlite_path(), type_=Numeric)

    def is_bool(self, value: bool) -> ColumnElement[bool]:
        """The value is the JSON boolean ``value`` (two-valued)."""
        if self.dialect == "postgresql":
            return and_(self.is_kind("boolean"), self.text() == ("true" if value else "false"))
        typ = func.coalesce(func.json_type(self.doc, self._sqlite_path()), "")
        return typ == ("true" if value else "false")

    def at(self, *keys: Key) -> JsonValue:
        """The value further down at ``keys``."""
        return JsonValue(self.dialect, self.doc, (*self.keys, *keys), self.base)


def array_elements(array: JsonValue) -> tuple[FromClause, JsonValue, ColumnElement[bool]]:
    """``(from_clause, element, where)`` to range over the elements of a JSON array.

    Use as ``exists().select_from(from_clause).where(where, <predicate on element>)``. A missing
    value, JSON null or a non-array yields no elements (PostgreSQL's ``jsonb_array_elements``
    would raise on a scalar, so the array is guarded by its type).
    """
    if array.dialect == "postgresql":
        node = array._pg_node()
        guarded = case((func.jsonb_typeof(node) == "array", node), else_=None)
        elements = func.jsonb_array_elements(guarded).table_valued("value").alias()
        element = JsonValue("postgresql", elements.c.value)
        return elements, element, true()
    path = array._sqlite_path()
    each = func.json_each(array.doc, path).table_valued("fullkey").alias()
    element = JsonValue("sqlite", array.doc, (), each.c.fullkey)
    is_array = func.coalesce(func.json_type(array.doc, path), "") == "array"
    return each, element, is_array


def not_blank(value: JsonValue) -> ColumnElement[bool]:
    """Present per RFC 7644 ``pr``: a non-empty string, or any number, boolean or container."""
    return or_(
        and_(value.is_kind("string"), value.text() != ""),
        value.is_kind("number", "boolean", "object", "array"),
    )
