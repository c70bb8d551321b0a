"""A directory read from an LDIF file (``ldif:///path/file.ldif``): the bundled demo.

It goes through the same :class:`~syncsvc.ldap.client.Directory` interface as a live server, so
the demo exercises the real pipeline. ldap3's ``MOCK_SYNC`` strategy was not used: it needs a
schema to match filters, its paging does not behave like a server's, and it would tie the
demo to ldap3 internals; an LDIF reader and the small evaluator in
:mod:`syncsvc.ldap.ldapfilter` are a few hundred lines we control.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import structlog

from syncsvc.domain import AttrValue, LdapEntry, normalize_dn
from syncsvc.errors import DirectoryError, DirectoryUnavailable
from syncsvc.ldap.contentsync import ContentSyncResult
from syncsvc.ldap.flavors import BINARY_ATTRIBUTES, Flavor
from syncsvc.ldap.ldapfilter import FilterSyntaxError, matches, parse_filter
from syncsvc.ldap.normalize import decode_attributes, to_entry
from syncsvc.ldap.protocol import ServerInfo
from syncsvc.ldap.queries import SearchQuery

__all__ = ["LdifDirectory", "LdifSyntaxError", "ldif_path", "parse_ldif", "read_ldif_records"]

log = structlog.get_logger(__name__)


class LdifSyntaxError(DirectoryError):
    """The LDIF file cannot be parsed; the message names the line."""


@dataclass(frozen=True, slots=True)
class LdifRecord:
    """One content record: its DN and raw values by attribute name as written."""

    dn: str
    attributes: dict[str, list[bytes]]


def ldif_path(url: str) -> Path:
    """``ldif:///srv/demo.ldif`` -> ``/srv/demo.ldif``; ``ldif://rel/x.ldif`` -> ``rel/x.ldif``."""
    if not url.lower().startswith("ldif:"):
        raise ValueError(f"not an ldif URL: {url}")
    rest = url[len("ldif:") :]
    if rest.startswith("//"):
        rest = rest[2:]
    return Path(unquote(rest))


def _unfold(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """Logical lines (folding undone, comments dropped) with their first line number."""
    current: str | None = None
    start = 0
    comment = False
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if line.startswith(" "):
            if comment:
                continue
            if current is not None:
                current += line[1:]
                continue
        if current is not None:
            yield start, current
            current = None
        comment = line.startswith("#")
        if not comment:
            current, start = line, number
    if current is not None:
        yield start, current


def read_ldif_records(lines: Iterable[str]) -> Iterator[LdifRecord]:
    """Content records of an LDIF text (RFC 2849): folding, ``::`` base64, comments.

    Raises:
        LdifSyntaxError: a line without ``:``, a record without ``dn``, a change record,
            or a ``:<`` URL value.
    """
    dn: str | None = None
    attrs: dict[str, list[bytes]] = {}
    for number, line in _unfold(lines):
        if not line.strip():
            if dn is not None:
                yield LdifRecord(dn, attrs)
            dn, attrs = None, {}
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise LdifSyntaxError(f"line {number}: expected 'attribute: value'")
        name = name.strip()
        if value.startswith(":"):
            try:
                data = base64.b64decode(value[1:].strip(), validate=True)
            except ValueError as exc:
                raise LdifSyntaxError(f"line {number}: bad base64 for {name}") from exc
        elif value.startswith("<"):
            raise LdifSyntaxError(f"line {number}: URL values (':<') are not supported")
        else:
            data = value.lstrip(" ").encode("utf-8")
        lname = name.lower()
        if dn is None:
            if lname == "version" and not attrs:
                continue
            if lname != "dn":
                raise LdifSyntaxError(f"line {number}: record does not start with dn:")
            dn = data.decode("utf-8")
            continue
        if lname == "changetype":
            raise LdifSyntaxError(f"line {number}: change records are not supported")
        attrs.setdefault(name, []).append(data)
    if dn is not None:
        yield LdifRecord(dn, attrs)


def parse_ldif(
    text: str,
    anchor_attribute: str = "entryUUID",
    binary_attributes: frozenset[str] = BINARY_ATTRIBUTES,
) -> list[LdapEntry]:
    """LDIF text -> entries; records without the anchor attribute are skipped with a warning."""
    entries = []
    for record in read_ldif_records(text.splitlines()):
        attributes = decode_attributes(record.attributes, binary_attributes)
        entry = to_entry(record.dn, attributes, anchor_attribute)
        if entry is None:
            log.warning("ldap.entry_without_anchor", dn=record.dn, anchor_attribute=anchor_attribute)
            continue
        entries.append(entry)
    return entries


def _in_scope(dn: str, base: str) -> bool:
    if not base:
        return True
    return dn == base or dn.endswith("," + base)


def _project(entry: LdapEntry, attributes: tuple[str, ...]) -> LdapEntry:
    names = {a.lower() for a in attributes}
    if not names or "*" in names:
        return entry
    kept: dict[str, tuple[AttrValue, ...]] = {
        k: v for k, v in entry.attributes.items() if k in names or k.partition(";")[0] in names
    }
    return LdapEntry(dn=entry.dn, anchor=entry.anchor, attributes=kept)


class LdifDirectory:
    """A read-only directory backed by one LDIF file, re-read when the file changes."""

    def __init__(self, url: str, flavor: Flavor, *, page_size: int = 500) -> None:
        self.description = url
        self._path = ldif_path(url)
        self._flavor = flavor
        self._page_size = max(1, page_size)
        self._cache: tuple[tuple[int, int], list[tuple[str, LdapEntry]]] | None = None

    def _load(self) -> list[tuple[str, LdapEntry]]:
        try:
            stat = os.stat(self._path)
        except OSError as exc:
            raise DirectoryUnavailable(f"{self.description}: {exc.strerror}") from exc
        key = (stat.st_mtime_ns, stat.st_size)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        try:
            text = self._path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DirectoryUnavailable(f"{self.description}: {exc}") from exc
        entries = parse_ldif(text, self._flavor.anchor_attribute, self._flavor.binary_attributes)
        indexed = [(normalize_dn(e.dn), e) for e in entries]
        self._cache = (key, indexed)
        log.info("ldap.connected", url=self.description, entries=len(indexed))
        return indexed

    async def server_info(self) -> ServerInfo:
        """An LDIF file offers no content sync and no AD watermark."""
        await asyncio.to_thread(self._load)
        return ServerInfo(content_sync=False, ad_service_name=None, ad_highest_usn=None,
                          url=self.description)

    async def search(self, query: SearchQuery) -> AsyncIterator[list[LdapEntry]]:
        """Entries under ``query.base`` matching ``query.filter``, in pages of ``page_size``."""
        try:
            node = parse_filter(query.filter)
        except FilterSyntaxError as exc:
            raise DirectoryError(f"search {query.filter!r} failed: filterError: {exc}") from exc
        indexed = await asyncio.to_thread(self._load)
        base = normalize_dn(query.base)
        page: list[LdapEntry] = []
        page_no = 0
        for ndn, entry in indexed:
            if _in_scope(ndn, base) and matches(node, entry.attributes):
                page.append(_project(entry, query.attributes))
                if len(page) >= self._page_size:
                    page_no += 1
                    log.debug("ldap.page_read", entries=len(page), page_no=page_no)
                    yield page
                    page = []
        if page or page_no == 0:
            log.debug("ldap.page_read", entries=len(page), page_no=page_no + 1)
            yield page

    async def content_sync(
        self,
        query: SearchQuery,
        cookie: bytes | None,
        on_page: Callable[[list[LdapEntry]], Awaitable[None]] | None = None,
    ) -> ContentSyncResult:
        """Not offered by an LDIF file (``server_info().content_sync`` is False)."""
        raise DirectoryError(f"{self.description}: content sync is not supported")

    async def aclose(self) -> None:
        """Nothing to release."""
        self._cache = None
