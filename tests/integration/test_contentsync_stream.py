"""The RFC 4533 refresh read as a stream, against a real slapd: pages while it is read, a
reader that stops cleanly, and a change-feed run that writes page by page."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from typing import Any

import pytest

from syncsvc.domain import EntryKind, LdapEntry, RunMode, RunStatus
from syncsvc.errors import DirectoryUnavailable
from syncsvc.ldap import Ldap3Directory, SearchQuery, flavor_for, open_directory
from syncsvc.ldap.client import CONTENT_SYNC_THREAD
from syncsvc.settings import LdapSettings
from syncsvc.store import state
from syncsvc.sync import SyncOptions, run_sync
from tests.integration.syncenv import groups_by_name, pipeline, settings_for, sync_once, users_by_name
from tests.support.faults import stopped
from tests.support.slapd import Slapd

BASE = "dc=example,dc=com"
ENG = f"ou=engineering,ou=people,{BASE}"
SALES = f"ou=sales,ou=people,{BASE}"
ENTRIES = 44  # in the seed LDIF under the base, the base included


def _directory(slapd: Slapd, **overrides: Any) -> Ldap3Directory:
    settings = replace(
        LdapSettings(url=(slapd.url,), bind_dn=slapd.service_dn,
                     bind_password=slapd.service_password, base_dn=slapd.base_dn,
                     ca_file=str(slapd.ca_file), page_size=7, read_timeout=10.0),
        **overrides,
    )
    directory = open_directory(settings, flavor_for(settings))
    assert isinstance(directory, Ldap3Directory)
    return directory


def _everything(slapd: Slapd) -> SearchQuery:
    return SearchQuery(slapd.base_dn, "(objectClass=*)", ("*", "entryUUID", "modifyTimestamp"))


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == CONTENT_SYNC_THREAD]


class _Boom(Exception):
    pass


class TestRefreshInPages:
    @pytest.mark.parametrize("tls", [False, True])
    async def test_pages_arrive_while_the_refresh_is_read(self, slapd: Slapd, tls: bool) -> None:
        """44 entries at page size 7: six pages of 7 and one of 2, handed over while the reader
        is still reading (it cannot be done: at most two pages wait), with the same entries
        and cookie as a collected read; afterwards no reader and no connection is left."""
        directory = _directory(slapd, url=(slapd.ldaps_url if tls else slapd.url,))
        pages: list[list[LdapEntry]] = []
        reading_during_first_page: list[bool] = []

        async def on_page(page: list[LdapEntry]) -> None:
            if not pages:
                reading_during_first_page.append(bool(_readers()))
            pages.append(page)

        streamed = await directory.content_sync(_everything(slapd), None, on_page)
        collected = await directory.content_sync(_everything(slapd), None)

        assert [7, 7, 7, 7, 7, 7, 2] == [len(p) for p in pages]
        assert [True] == reading_during_first_page
        assert [] == streamed.entries
        assert sorted(e.anchor for e in collected.entries) == sorted(e.anchor for p in pages for e in p)
        assert ENTRIES == len({e.anchor for p in pages for e in p})
        assert streamed.cookie and set(streamed.present or ()) == set(collected.present or ())
        assert ([], set()) == (_readers(), directory._connections)  # noqa: SLF001

    async def test_refresh_with_a_cookie_streams_changes_and_reports_the_deletion(
        self, slapd: Slapd
    ) -> None:
        """With a cookie, the 3 changed entries come in pages of the page size (2) and the
        deleted one is reported (in ``deleted``, or missing from the present set)."""
        directory = _directory(slapd, page_size=2)
        first = await directory.content_sync(_everything(slapd), None, _ignore)
        anchors = {e.dn: e.anchor for e in (await directory.content_sync(_everything(slapd), None)).entries}
        changed = [f"uid=ada.lovelace,{ENG}", f"uid=grace.hopper,{ENG}", f"uid=maria.garcia,{SALES}"]
        for dn in changed:
            slapd.modify(f"dn: {dn}\nchangetype: modify\nreplace: title\ntitle: Streamed\n")
        gone = f"uid=noah.jones,{SALES}"
        slapd.delete(gone)
        pages: list[list[LdapEntry]] = []

        async def on_page(page: list[LdapEntry]) -> None:
            pages.append(page)

        second = await directory.content_sync(_everything(slapd), first.cookie, on_page)

        assert len(pages) >= 2 and all(0 < len(p) <= 2 for p in pages)
        assert sorted(changed) == sorted(e.dn for p in pages for e in p if e.dn.startswith("uid="))
        if second.present is None:
            assert [anchors[gone]] == second.deleted
        else:
            assert anchors[gone] not in set(second.present)
        assert second.cookie and second.cookie != first.cookie


async def _ignore(page: list[LdapEntry]) -> None:
    pass


class TestReaderStops:
    async def test_writer_failure_stops_the_reader_and_closes_its_connection(self, slapd: Slapd) -> None:
        """A page writer that fails on the second page: its error comes out, no further page is
        asked for, the reader thread has ended and its connection is closed."""
        directory = _directory(slapd)
        seen: list[int] = []

        async def on_page(page: list[LdapEntry]) -> None:
            seen.append(len(page))
            if len(seen) == 2:
                raise _Boom("disk full")

        with pytest.raises(_Boom):
            await directory.content_sync(_everything(slapd), None, on_page)
        assert [7, 7] == seen
        assert ([], set()) == (_readers(), directory._connections)  # noqa: SLF001
        again = await directory.content_sync(_everything(slapd), None)  # the directory still works
        assert ENTRIES == len(again.entries)

    async def test_cancelled_consumer_stops_the_reader(self, slapd: Slapd) -> None:
        """A run cancelled while it writes the first page (a shutdown): no reader, no connection."""
        directory = _directory(slapd)
        writing = asyncio.Event()

        async def on_page(page: list[LdapEntry]) -> None:
            writing.set()
            await asyncio.Event().wait()  # a write that never ends

        task = asyncio.create_task(directory.content_sync(_everything(slapd), None, on_page))
        await writing.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert ([], set()) == (_readers(), directory._connections)  # noqa: SLF001

    async def test_frozen_server_is_a_timeout_not_a_hang(self, slapd: Slapd) -> None:
        """slapd SIGSTOPped (sockets open, no answer): the reader's failure reaches the caller
        as DirectoryUnavailable (timed out) within the read timeout; nothing is left open."""
        directory = _directory(slapd, read_timeout=1.0, connect_timeout=1.0)
        with stopped(slapd.pid), pytest.raises(DirectoryUnavailable, match="timed out"):
            await directory.content_sync(_everything(slapd), None, _ignore)
        assert ([], set()) == (_readers(), directory._connections)  # noqa: SLF001


class _Pages:
    """A Progress that records each written page; optionally stops the run after ``stop_after``
    user pages, as a shutdown would (the next page write refuses)."""

    def __init__(self, stopping: asyncio.Event | None = None, stop_after: int = 0) -> None:
        self.users: list[int] = []
        self._stopping = stopping
        self._stop_after = stop_after

    def phase(self, name: str) -> None:
        pass

    def advance(self, kind: EntryKind, entries: int) -> None:
        if kind is EntryKind.USER:
            self.users.append(entries)
            if self._stopping is not None and len(self.users) == self._stop_after:
                self._stopping.set()


async def _store(service: Any) -> dict[str, Any]:
    users = {n: (u.resource, u.version, u.active) for n, u in (await users_by_name(service)).items()}
    groups = {n: (g.resource, g.version) for n, g in (await groups_by_name(service)).items()}
    return {"users": users, "groups": groups}


class TestChangeFeedRun:
    async def test_priming_run_writes_page_by_page_and_keeps_the_store(self, slapd, store_url) -> None:
        """The first change-feed run reads the whole directory in one refresh: its 31 users are
        written in pages of 7 (+3); the 3 users changed since the full run are updated, the
        one deleted is deactivated by the present-phase sweep, and nothing else changes."""
        settings = settings_for(slapd, store_url, ldap_change_feed="syncrepl")
        await sync_once(settings)
        for uid in ("ada.lovelace", "grace.hopper", "alan.turing"):
            slapd.modify(f"dn: uid={uid},{ENG}\nchangetype: modify\nreplace: title\ntitle: Paged\n")
        slapd.delete(f"uid=noah.jones,{SALES}")
        async with pipeline(settings) as service:
            before = await _store(service)
        progress = _Pages()

        report = await sync_once(settings, RunMode.INCREMENTAL, progress=progress)

        assert (RunStatus.SUCCESS, "contentsync") == (report.status, report.method)
        assert [7, 7, 7, 7, 2] == progress.users  # 30 users left in LDAP
        assert (0, 3, 1) == (report.created, report.updated, report.deactivated)
        async with pipeline(settings) as service:
            after = await _store(service)
        changed = {"ada.lovelace", "grace.hopper", "alan.turing", "noah.jones"}
        assert {n: v for n, v in before["users"].items() if n not in changed} == {
            n: v for n, v in after["users"].items() if n not in changed}
        assert "Paged" == after["users"]["ada.lovelace"][0]["title"]
        assert after["users"]["noah.jones"][2] is False

    async def test_run_stopped_mid_refresh_stores_no_cookie_and_the_next_run_succeeds(
        self, slapd, store_url
    ) -> None:
        """A run stopped after 2 of its 5 user pages (a shutdown) fails, stores no cookie and
        leaves no reader thread or connection; the next run reads everything and succeeds."""
        settings = settings_for(slapd, store_url, ldap_change_feed="syncrepl")
        await sync_once(settings)
        async with pipeline(settings) as service:
            progress = _Pages(service.sync.stopping, stop_after=2)
            failed = await run_sync(service.sync, SyncOptions(mode=RunMode.INCREMENTAL, progress=progress))
            async with service.engine.connect() as conn:
                cookies = [await state.get_state(conn, f"{k}.cookie") for k in ("users", "groups")]
            assert (RunStatus.FAILED, [7, 7]) == (failed.status, progress.users)
            assert [None, None] == cookies
            assert ([], set()) == (_readers(), service.sync.directory._connections)  # noqa: SLF001

        again = await sync_once(settings, RunMode.INCREMENTAL)
        assert (RunStatus.SUCCESS, "contentsync", 0) == (again.status, again.method, again.deactivated)
        async with pipeline(settings) as service, service.engine.connect() as conn:
            assert await state.get_state(conn, "users.cookie")
