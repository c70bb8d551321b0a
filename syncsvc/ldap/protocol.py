"""The interface the sync engine reads a directory through, and what a server says about itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from syncsvc.domain import LdapEntry
from syncsvc.ldap.contentsync import ContentSyncResult
from syncsvc.ldap.queries import SearchQuery

__all__ = ["Directory", "ServerInfo"]


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """From the root DSE of the server that answered.

    ``content_sync``: the server offers RFC 4533 (supportedControl 1.3.6.1.4.1.4203.1.9.1.1).
    ``ad_service_name``/``ad_highest_usn``: AD's dsServiceName and highestCommittedUSN; a
    uSNChanged watermark is only valid against the same DC. ``url``: the server that answered.
    """

    content_sync: bool
    ad_service_name: str | None
    ad_highest_usn: int | None
    url: str


class Directory(Protocol):
    """A source of directory entries: a live LDAP server, or an LDIF file for the demo."""

    description: str
    """Where the entries come from, e.g. ``ldap://127.0.0.1:3890``; never credentials."""

    async def server_info(self) -> ServerInfo:
        """Read the root DSE (or its equivalent)."""
        ...

    def search(self, query: SearchQuery) -> AsyncIterator[list[LdapEntry]]:
        """Entries matching ``query``, one list per page; a failed read raises, never stops short."""
        ...

    async def content_sync(
        self,
        query: SearchQuery,
        cookie: bytes | None,
        on_page: Callable[[list[LdapEntry]], Awaitable[None]] | None = None,
    ) -> ContentSyncResult:
        """An RFC 4533 refreshOnly read: what changed since ``cookie`` (everything without one).

        With ``on_page``, the changed entries go to it page by page while the refresh is still
        read (a refresh is one search that cannot be paged, and may hold the whole directory),
        and the result carries no entries; without it they are collected into the result. The
        result (deletions, present set, cookie) comes after the last page was handed over; if
        ``on_page`` raises, the read stops and its connection is released before the error
        propagates.
        """
        ...

    async def aclose(self) -> None:
        """Release connections still open."""
        ...
