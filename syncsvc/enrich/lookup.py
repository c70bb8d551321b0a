"""``lookup``: values from a CSV or JSON file keyed by an attribute (an HR export).

The file is read once when the config is compiled and again at the start of a run when its
modification time or size changed; the rule itself only reads the table in memory. A key the
file does not have changes nothing. A file that cannot be read at the start of a run fails the
run (:class:`~syncsvc.enrich.EnrichmentError`) instead of stripping every looked-up value.

Formats, by file suffix:

- ``.csv``: a header row; UTF-8 (a BOM, as Excel writes, is fine); ``delimiter`` configurable.
- ``.json``: a list of objects (the key is the object's ``column``), or one object mapping each
  key to an object of values.

Keys are compared as trimmed text, case-sensitively unless ``ignore_case``; JSON numbers count
as text (``1001`` matches ``"1001"``). Empty cells set nothing. A key listed twice: the last
row wins (and the load logs it).
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from syncsvc.domain import LdapEntry
from syncsvc.enrich._base import NO_UPDATE, EnrichmentError, Update
from syncsvc.enrich._paths import PathSetter
from syncsvc.enrich.defaults import is_empty

__all__ = ["LookupRule", "LookupTable", "load_rows"]

log = structlog.get_logger(__name__)

Row = Mapping[str, str]


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


def load_rows(path: Path, key_column: str, *, delimiter: str = ",",
              ignore_case: bool = False) -> tuple[dict[str, Row], tuple[str, ...]]:
    """Parse ``path`` into ``{key: {column: text}}`` and the columns it has.

    Raises:
        EnrichmentError: unreadable file, bad CSV/JSON, or no ``key_column``.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EnrichmentError(f"lookup file {path}: cannot read it: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EnrichmentError(f"lookup file {path}: not UTF-8 ({exc.reason})") from exc
    records: list[Mapping[str, Any]]
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EnrichmentError(f"lookup file {path}: not valid JSON: {exc}") from exc
        if isinstance(data, dict):
            records = [{key_column: key, **value} for key, value in data.items()
                       if isinstance(value, dict)]
        elif isinstance(data, list) and all(isinstance(item, dict) for item in data):
            records = data
        else:
            raise EnrichmentError(f"lookup file {path}: expected a list of objects or an object "
                                  "of objects")
        columns = tuple(dict.fromkeys(name for record in records for name in record))
    else:
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
            records = list(reader)
        except csv.Error as exc:
            raise EnrichmentError(f"lookup file {path}: bad CSV: {exc}") from exc
        columns = tuple(name.strip() for name in reader.fieldnames or ())
        records = [{(k or "").strip(): v for k, v in record.items()} for record in records]
    if key_column not in columns:
        raise EnrichmentError(f"lookup file {path}: no column {key_column!r} "
                              f"(it has {', '.join(map(repr, columns)) or 'none'})")
    table: dict[str, Row] = {}
    duplicates = 0
    for record in records:
        key = _text(record.get(key_column))
        if key is None:
            continue
        if ignore_case:
            key = key.casefold()
        values = {name: cell for name, value in record.items()
                  if name and (cell := _text(value)) is not None}
        duplicates += key in table
        table[key] = values
    if duplicates:
        log.warning("enrich.lookup_duplicate_keys", file=str(path), duplicates=duplicates)
    return table, columns


class LookupTable:
    """One lookup file in memory, re-read by :meth:`refresh` when it changed on disk.

    Shared by the rules that name the same file and key column.
    """

    def __init__(self, path: Path, key_column: str, *, delimiter: str = ",",
                 ignore_case: bool = False) -> None:
        self.path = path
        self.key_column = key_column
        self.ignore_case = ignore_case
        self._delimiter = delimiter
        self._stamp: tuple[int, int] | None = None
        self._rows: dict[str, Row] = {}
        self.columns: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Load the file if it changed since the last load (mtime or size); blocking I/O."""
        with self._lock:
            try:
                st = os.stat(self.path)
            except OSError as exc:
                raise EnrichmentError(
                    f"lookup file {self.path}: cannot read it: {exc.strerror}") from exc
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp == self._stamp:
                return
            self._rows, self.columns = load_rows(
                self.path, self.key_column, delimiter=self._delimiter,
                ignore_case=self.ignore_case)
            if self._stamp is not None:  # the first load is at config time: quiet (check-config)
                log.info("enrich.lookup_reloaded", file=str(self.path), rows=len(self._rows))
            self._stamp = stamp

    def get(self, key: str) -> Row | None:
        key = key.strip()
        return self._rows.get(key.casefold() if self.ignore_case else key)


class LookupRule:
    """Set targets from the row of ``table`` whose key is the entry's value.

    Args:
        table: the loaded file.
        key: where the key comes from: an LDAP attribute of the entry (``employeeNumber``), or
            a SCIM path of the resource (a :class:`PathSetter`).
        sets: ``(target, column)`` pairs.
        overwrite: replace values the targets already have (default: the export is the
            authority); false only fills gaps.
    """

    __slots__ = ("_key", "_overwrite", "_sets", "_table")

    def __init__(self, table: LookupTable, key: str | PathSetter,
                 sets: tuple[tuple[PathSetter, str], ...], *, overwrite: bool = True) -> None:
        self._table = table
        self._key = key.lower() if isinstance(key, str) else key
        self._sets = sets
        self._overwrite = overwrite

    @property
    def label(self) -> str:
        return f"lookup {self._table.path.name}"

    def _key_of(self, resource: Mapping[str, Any], entry: LdapEntry) -> str | None:
        if isinstance(self._key, str):
            values = entry.attributes.get(self._key)
            if not values:
                return None
            value = values[0]
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            return value
        value = self._key.get(resource)
        return _text(value)

    def __call__(self, resource: Mapping[str, Any], entry: LdapEntry) -> Update:
        key = self._key_of(resource, entry)
        row = self._table.get(key) if key else None
        if row is None:
            return NO_UPDATE
        sets = []
        for setter, column in self._sets:
            value = row.get(column)
            if value is None:
                continue
            if self._overwrite or is_empty(setter.get(resource)):
                sets.append((setter, value))
        return Update(sets=tuple(sets))
