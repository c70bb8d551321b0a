"""The LDAP source against a real slapd: paging, binds, TLS, failover, drops, content sync."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from syncsvc.domain import LdapEntry
from syncsvc.errors import DirectoryError, DirectoryUnavailable
from syncsvc.ldap import (
    Ldap3Directory,
    SearchQuery,
    changed_since,
    flavor_for,
    generalized_time,
    group_query,
    open_directory,
    user_query,
)
from syncsvc.settings import LdapSettings
from tests.support.slapd import Slapd

ENG = "ou=engineering,ou=people,dc=example,dc=com"
SALES = "ou=sales,ou=people,dc=example,dc=com"
ALL = ("*", "entryUUID", "modifyTimestamp")


def _settings(slapd: Slapd, **overrides: object) -> LdapSettings:
    base = LdapSettings(
        url=(slapd.url,),
        bind_dn=slapd.service_dn,
        bind_password=slapd.service_password,
        base_dn=slapd.base_dn,
        ca_file=str(slapd.ca_file),
        page_size=7,
        connect_timeout=2.0,
        read_timeout=10.0,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def _directory(settings: LdapSettings) -> Ldap3Directory:
    directory = open_directory(settings, flavor_for(settings))
    assert isinstance(directory, Ldap3Directory)
    return directory


async def _read_all(directory: Ldap3Directory, query: SearchQuery) -> list[list[LdapEntry]]:
    return [page async for page in directory.search(query)]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _everything(slapd: Slapd) -> SearchQuery:
    return SearchQuery(slapd.base_dn, "(objectClass=*)", ALL)


class TestPagedSearch:
    async def test_service_account_reads_every_entry_across_pages(self, slapd: Slapd) -> None:
        """page_size 7 over 44 entries gives six full pages and a last one of 2, anchors unique."""
        directory = _directory(_settings(slapd))
        pages = await _read_all(directory, _everything(slapd))
        assert [7, 7, 7, 7, 7, 7, 2] == [len(p) for p in pages]
        anchors = {e.anchor for p in pages for e in p}
        assert 44 == len(anchors)
        await directory.aclose()

    async def test_users_decoded_text_and_binary(self, slapd: Slapd) -> None:
        """The user query returns 31 inetOrgPersons; UTF-8 text is str, jpegPhoto stays bytes."""
        settings = _settings(slapd)
        directory = _directory(settings)
        entries = {e.dn: e for p in await _read_all(directory, user_query(settings, flavor_for(settings))) for e in p}
        assert 31 == len(entries)
        ada = entries[f"uid=ada.lovelace,{ENG}"]
        photo = ada.get("jpegPhoto")
        assert 1 == len(photo) and isinstance(photo[0], bytes) and photo[0].startswith(b"\xff\xd8")
        assert ("José Núñez",) == entries[f"uid=jose.nunez,{ENG}"].get("cn")
        assert ada.anchor == ada.get("entryUUID")[0]
        assert ada.get("modifyTimestamp")[0].endswith("Z")  # type: ignore[union-attr]

    async def test_users_and_groups_read_concurrently(self, slapd: Slapd) -> None:
        """Users and groups are read at the same time, each search on its own connection."""
        settings = _settings(slapd)
        directory = _directory(settings)
        flavor = flavor_for(settings)
        users, groups = await asyncio.gather(
            _read_all(directory, user_query(settings, flavor)),
            _read_all(directory, group_query(settings, flavor)),
        )
        assert (31, 6) == (sum(map(len, users)), sum(map(len, groups)))

    async def test_stopping_early_releases_the_connection(self, slapd: Slapd) -> None:
        """A consumer that stops after one page and closes the iterator leaves no connection open."""
        directory = _directory(_settings(slapd))
        pages = directory.search(_everything(slapd))
        first = await anext(pages)
        await pages.aclose()
        assert 7 == len(first)
        assert not directory._connections  # noqa: SLF001 - the behaviour is "nothing left open"

    async def test_missing_base_is_directory_error(self, slapd: Slapd) -> None:
        """A base DN that does not exist is a DirectoryError naming noSuchObject."""
        directory = _directory(_settings(slapd))
        with pytest.raises(DirectoryError, match="noSuchObject"):
            await _read_all(directory, SearchQuery("ou=nowhere,dc=example,dc=com", "(objectClass=*)", ALL))

    async def test_server_info(self, slapd: Slapd) -> None:
        """OpenLDAP with syncprov advertises content sync and is not AD."""
        info = await _directory(_settings(slapd)).server_info()
        assert (True, None, None, slapd.url) == (
            info.content_sync, info.ad_service_name, info.ad_highest_usn, info.url
        )


class TestBind:
    async def test_anonymous_bind_reads(self, slapd: Slapd) -> None:
        """An empty bind DN binds anonymously and can read the users."""
        settings = _settings(slapd, bind_dn="", bind_password="")
        pages = await _read_all(_directory(settings), user_query(settings, flavor_for(settings)))
        assert 31 == sum(map(len, pages))

    async def test_wrong_password_names_the_dn(self, slapd: Slapd) -> None:
        """Bad credentials are a DirectoryError naming the bind DN, not an unreachable server."""
        directory = _directory(_settings(slapd, bind_password="wrong"))
        with pytest.raises(DirectoryError, match=f"bind as {slapd.service_dn} failed: invalidCredentials") as info:
            await directory.server_info()
        assert not isinstance(info.value, DirectoryUnavailable)
        assert "wrong" not in str(info.value)


class TestTls:
    async def test_ldaps_with_ca_file(self, slapd: Slapd) -> None:
        """ldaps:// verifies the server certificate against ca_file and reads."""
        directory = _directory(_settings(slapd, url=(slapd.ldaps_url,)))
        assert 44 == sum(map(len, await _read_all(directory, _everything(slapd))))

    async def test_ldaps_without_ca_fails_on_the_certificate(self, slapd: Slapd) -> None:
        """With verification on and only the system store, ldaps:// is DirectoryUnavailable (certificate)."""
        directory = _directory(_settings(slapd, url=(slapd.ldaps_url,), ca_file=""))
        with pytest.raises(DirectoryUnavailable, match="TLS certificate verification failed") as info:
            await directory.server_info()
        assert slapd.ldaps_url in str(info.value)

    async def test_ldaps_without_verification(self, slapd: Slapd) -> None:
        """tls_verify off accepts the unknown certificate."""
        directory = _directory(_settings(slapd, url=(slapd.ldaps_url,), ca_file="", tls_verify=False))
        assert (await directory.server_info()).content_sync

    async def test_start_tls_with_ca_file(self, slapd: Slapd) -> None:
        """StartTLS on the plain port verifies against ca_file and reads."""
        directory = _directory(_settings(slapd, start_tls=True))
        assert 44 == sum(map(len, await _read_all(directory, _everything(slapd))))

    async def test_start_tls_without_ca_fails_on_the_certificate(self, slapd: Slapd) -> None:
        """StartTLS without a trusted CA is DirectoryUnavailable mentioning the certificate."""
        directory = _directory(_settings(slapd, start_tls=True, ca_file=""))
        with pytest.raises(DirectoryUnavailable, match="certificate"):
            await directory.server_info()


class TestFailover:
    async def test_closed_first_url_falls_over_to_the_second(self, slapd: Slapd) -> None:
        """A refused first URL is logged as ldap.failover and the second server is used."""
        dead = f"ldap://127.0.0.1:{_closed_port()}"
        directory = _directory(_settings(slapd, url=(dead, slapd.url)))
        with capture_logs() as logs:
            pages = await _read_all(directory, _everything(slapd))
        assert 44 == sum(map(len, pages))
        assert [dead] == [e["url"] for e in logs if e["event"] == "ldap.failover"]
        assert [slapd.url] == [e["url"] for e in logs if e["event"] == "ldap.connected"]

    async def test_all_closed_lists_every_url(self) -> None:
        """When every URL fails, DirectoryUnavailable names each URL and why."""
        urls = tuple(f"ldap://127.0.0.1:{_closed_port()}" for _ in range(2))
        settings = LdapSettings(url=urls, base_dn="dc=example,dc=com", connect_timeout=1.0)
        directory = _directory(settings)
        started = time.monotonic()
        with pytest.raises(DirectoryUnavailable) as info:
            await directory.server_info()
        message = str(info.value)
        assert all(f"{url}:" in message for url in urls)
        assert "refused" in message.lower()
        assert time.monotonic() - started < 5


class TestConnectionLoss:
    async def test_server_stopped_between_pages(self, slapd: Slapd) -> None:
        """slapd going away mid-read raises DirectoryUnavailable, never a short successful read."""
        directory = _directory(_settings(slapd))
        pages = directory.search(_everything(slapd))
        await anext(pages)
        slapd.stop()
        with pytest.raises(DirectoryUnavailable, match="connection lost"):
            async for _ in pages:
                pass
        assert not directory._connections  # noqa: SLF001

    async def test_server_down_at_start(self, slapd: Slapd) -> None:
        """A stopped server is DirectoryUnavailable before any page."""
        slapd.stop()
        with pytest.raises(DirectoryUnavailable, match=slapd.url):
            await _read_all(_directory(_settings(slapd)), _everything(slapd))


class TestContentSync:
    async def test_initial_then_incremental_refresh(self, slapd: Slapd) -> None:
        """No cookie: every entry and a cookie; after 3 modifies and 1 delete, exactly those."""
        directory = _directory(_settings(slapd))
        query = _everything(slapd)
        first = await directory.content_sync(query, None)
        assert 44 == len(first.entries)
        assert first.cookie
        anchors = {e.dn: e.anchor for e in first.entries}

        changed = [f"uid=ada.lovelace,{ENG}", f"uid=grace.hopper,{ENG}", f"uid=maria.garcia,{SALES}"]
        for dn in changed:
            slapd.modify(f"dn: {dn}\nchangetype: modify\nreplace: title\ntitle: Changed\n")
        gone = f"uid=sam.taylor,{SALES}"
        slapd.modify(
            "dn: cn=on-call,ou=groups,dc=example,dc=com\nchangetype: modify\n"
            f"delete: member\nmember: {gone}\n"
        )
        slapd.delete(gone)
        changed.append("cn=on-call,ou=groups,dc=example,dc=com")

        second = await directory.content_sync(query, first.cookie)
        assert sorted(changed) == sorted(e.dn for e in second.entries)
        assert all(("Changed",) == e.get("title") for e in second.entries if e.dn.startswith("uid="))
        if second.present is None:
            assert [anchors[gone]] == second.deleted
        else:  # a present phase: the deleted anchor is the one missing from the live set
            assert set(anchors.values()) - set(second.present) == {anchors[gone]}
        assert second.cookie and second.cookie != first.cookie

    async def test_users_query_scope_and_filter(self, slapd: Slapd) -> None:
        """Content sync honours the query's base and filter."""
        settings = _settings(slapd)
        directory = _directory(settings)
        result = await directory.content_sync(user_query(settings, flavor_for(settings)), None)
        assert 31 == len(result.entries)


class TestChangedSince:
    async def test_only_entries_modified_after_the_mark(self, slapd: Slapd) -> None:
        """(modifyTimestamp>=mark) returns the two entries modified after the mark, nothing else."""
        settings = _settings(slapd)
        flavor = flavor_for(settings)
        directory = _directory(settings)
        query = user_query(settings, flavor)
        stamps = [str(e.get("modifyTimestamp")[0]) for p in await _read_all(directory, query) for e in p]
        newest = datetime.strptime(max(stamps), "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
        mark = newest + timedelta(seconds=1)
        while datetime.now(UTC) < mark:  # timestamps have one-second resolution
            await asyncio.sleep(0.05)
        for dn in (f"uid=alan.turing,{ENG}", f"uid=priya.patel,{SALES}"):
            slapd.modify(f"dn: {dn}\nchangetype: modify\nreplace: title\ntitle: Later\n")

        changed = changed_since(query, flavor, generalized_time(mark))
        dns = sorted(e.dn for p in await _read_all(directory, changed) for e in p)
        assert [f"uid=alan.turing,{ENG}", f"uid=priya.patel,{SALES}"] == dns
