"""JSON access in SQL for the two engines: ``json_extract`` on SQLite, ``jsonb_*`` on PostgreSQL.

A narrow sibling of ``syncsvc.scim._sqljson`` (text, non-blank, array length), kept here so the
profile package does not reach into the SCIM package's private modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, Text, case, func, literal

__all__ = ["Json"]


class Json:
    """Dialect-specific JSON access: ``json_extract`` on SQLite, ``jsonb_*`` on PostgreSQL.

    Keys are bound parameters (SQLite gets one bound JSONPath with quoted keys, as the enterprise
    URN holds dots and colons).
    """

    def __init__(self, dialect: str) -> None:
        self._pg = dialect == "postgresql"

    def _node(self, doc: ColumnElement[Any], keys: Sequence[str]) -> ColumnElement[Any]:
        return func.jsonb_extract_path(doc, *(literal(k, Text) for k in keys))

    @staticmethod
    def _path(keys: Sequence[str]) -> ColumnElement[str]:
        return literal("$" + "".join(f'."{k}"' for k in keys), String)

    def text(self, doc: ColumnElement[Any], *keys: str) -> ColumnElement[str]:
        """The value at ``keys`` as text (NULL when absent)."""
        if self._pg:
            return func.jsonb_extract_path_text(doc, *(literal(k, Text) for k in keys), type_=Text)
        return func.json_extract(doc, self._path(keys), type_=Text)

    def filled(self, doc: ColumnElement[Any], *keys: str) -> ColumnElement[bool]:
        """A value other than blank text is there."""
        return func.coalesce(func.trim(self.text(doc, *keys)), "") != ""

    def array_len(self, doc: ColumnElement[Any], *keys: str) -> ColumnElement[int]:
        """The length of the array at ``keys``; 0 when absent or not an array."""
        if self._pg:
            node = self._node(doc, keys)
            return case((func.jsonb_typeof(node) == "array", func.jsonb_array_length(node)),
                        else_=0)
        return func.coalesce(func.json_array_length(doc, self._path(keys)), 0)
