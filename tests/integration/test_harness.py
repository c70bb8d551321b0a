"""The harness itself: slapd set-up (limits, TLS, syncprov, ACLs), stores, seeds, gen_ldif."""

from __future__ import annotations

import base64
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import ldap3
import pytest
from ldap3.core.exceptions import LDAPSocketOpenError, LDAPStartTLSError
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from syncsvc.settings import DEMO_LDIF, StoreSettings
from syncsvc.store import create_engine, current_revision, head_revision
from tests.support.slapd import Slapd

REPO = Path(__file__).resolve().parents[2]
GEN_LDIF = REPO / "bench" / "gen_ldif.py"
SYNC_REQUEST_OID = "1.3.6.1.4.1.4203.1.9.1.1"
PEOPLE = "ou=people,dc=example,dc=com"


def gen_ldif(*args: str) -> str:
    """Run bench/gen_ldif.py with *args* and return its LDIF output."""
    proc = subprocess.run(
        [sys.executable, str(GEN_LDIF), *args], capture_output=True, text=True, check=True
    )
    return proc.stdout


@contextmanager
def connect(
    url: str,
    user: str | None = None,
    password: str | None = None,
    tls: ldap3.Tls | None = None,
    *,
    start_tls: bool = False,
) -> Iterator[ldap3.Connection]:
    """A bound ldap3 connection (anonymous when *user* is None), unbound on exit."""
    server = ldap3.Server(url, use_ssl=url.startswith("ldaps:"), tls=tls, get_info=ldap3.NONE)
    # Not ldap3's own context manager: it leaves a connection bound before `with` open.
    conn = ldap3.Connection(server, user=user, password=password)
    try:
        conn.open()
        if start_tls:
            assert conn.start_tls(), conn.result
        assert conn.bind(), conn.result
        yield conn
    finally:
        if conn.bound:
            conn.unbind()
        if conn.socket is not None:
            conn.socket.close()  # ldap3 2.9.1 leaves it open when the connect is refused


def service(slapd: Slapd, tls: ldap3.Tls | None = None, url: str | None = None,
            *, start_tls: bool = False) -> AbstractContextManager[ldap3.Connection]:  # fmt: skip
    """A connection bound as the sync service account."""
    return connect(url or slapd.url, slapd.service_dn, slapd.service_password, tls,
                   start_tls=start_tls)  # fmt: skip


def verifying_tls(ca_file: Path | None) -> ldap3.Tls:
    """TLS settings that require a valid certificate (against *ca_file*, else the system CAs)."""
    return ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(ca_file) if ca_file else None)


def paged_count(conn: ldap3.Connection, base: str, search_filter: str, page_size: int) -> int:
    """The number of entries a paged search returns, following the cookie to the end."""
    cookie: bytes | None = None
    total = 0
    while True:
        conn.search(base, search_filter, attributes=["uid"], paged_size=page_size,
                    paged_cookie=cookie)  # fmt: skip
        assert conn.result["result"] == 0, conn.result
        total += len(conn.entries)
        cookie = conn.result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
        if not cookie:
            return total


class TestSlapd:
    def test_seed_is_loaded(self, slapd: Slapd) -> None:
        """The base seed's 30 users, broken entry and 6 groups are there with entryUUIDs."""
        with service(slapd) as conn:
            conn.search(PEOPLE, "(&(objectClass=inetOrgPerson)(uid=*))", attributes=["entryUUID"])
            users = list(conn.entries)
            conn.search(PEOPLE, "(&(objectClass=inetOrgPerson)(!(uid=*)))", attributes=["cn"])
            broken = [entry.entry_dn for entry in conn.entries]
            conn.search("ou=groups,dc=example,dc=com", "(cn=*)", ldap3.LEVEL, attributes=["cn"])
            groups = len(conn.entries)

        assert 30 == len(users)
        assert all(entry.entryUUID.value for entry in users)
        assert ["cn=Broken Entry,ou=people,dc=example,dc=com"] == broken
        assert 6 == groups

    def test_service_account_pages_past_the_size_limit(
        self, make_slapd: Callable[[str | Path], Slapd]
    ) -> None:
        """The service account reads 1200 users through paging despite olcSizeLimit 500."""
        server = make_slapd(gen_ldif("--users", "1200", "--groups", "10", "--seed", "5"))

        with service(server) as conn:
            total = paged_count(conn, PEOPLE, "(objectClass=inetOrgPerson)", page_size=250)

        assert 1200 == total

    def test_anonymous_reads_keep_the_size_limit(
        self, make_slapd: Callable[[str | Path], Slapd]
    ) -> None:
        """Anonymous paged searches stop at the default limit: the service account is exempt."""
        server = make_slapd(gen_ldif("--users", "600", "--groups", "2", "--seed", "5"))

        with connect(server.url) as conn:
            conn.search(PEOPLE, "(objectClass=inetOrgPerson)", attributes=["uid"], paged_size=100)
            first_page = len(conn.entries)
            with pytest.raises(AssertionError, match="sizeLimitExceeded"):
                paged_count(conn, PEOPLE, "(objectClass=inetOrgPerson)", page_size=100)

        assert 100 == first_page

    def test_service_account_cannot_read_passwords(self, slapd: Slapd) -> None:
        """userPassword is hidden from the service account and anonymous, visible to the admin."""
        user = f"uid=ada.lovelace,ou=engineering,{PEOPLE}"
        with service(slapd) as conn:
            conn.search(user, "(objectClass=*)", ldap3.BASE, attributes=["userPassword", "mail"])
            as_service = conn.entries[0].entry_attributes_as_dict
        with connect(slapd.url) as conn:
            conn.search(user, "(objectClass=*)", ldap3.BASE, attributes=["userPassword"])
            as_anonymous = conn.entries[0].entry_attributes_as_dict

        assert ["ada.lovelace@example.com"] == as_service["mail"]
        assert not as_service.get("userPassword")
        assert not as_anonymous.get("userPassword")
        as_admin = slapd.search("(uid=ada.lovelace)", ["userPassword"])
        assert f"userPassword:: {base64.b64encode(b'ada-password').decode()}" in as_admin

    def test_ldaps_verifies_with_the_test_ca(self, slapd: Slapd) -> None:
        """ldaps:// binds when the client trusts the test CA, and fails verification without it."""
        with service(slapd, verifying_tls(slapd.ca_file), slapd.ldaps_url) as conn:
            assert conn.bound
        with pytest.raises(LDAPSocketOpenError, match="CERTIFICATE_VERIFY_FAILED"):
            with service(slapd, verifying_tls(None), slapd.ldaps_url):
                pass

    def test_start_tls_verifies_with_the_test_ca(self, slapd: Slapd) -> None:
        """StartTLS on the plain port succeeds against the test CA and fails without it."""
        with service(slapd, verifying_tls(slapd.ca_file), start_tls=True) as conn:
            assert conn.tls_started
        with pytest.raises(LDAPStartTLSError, match="CERTIFICATE_VERIFY_FAILED"):
            with service(slapd, verifying_tls(None), start_tls=True):
                pass

    def test_syncprov_is_loaded(self, slapd: Slapd) -> None:
        """The root DSE advertises the RFC 4533 sync request control, and paging."""
        with connect(slapd.url) as conn:
            conn.search("", "(objectClass=*)", ldap3.BASE, attributes=["supportedControl"])
            controls = conn.entries[0].supportedControl.values

        assert SYNC_REQUEST_OID in controls
        assert "1.2.840.113556.1.4.319" in controls

    def test_admin_changes_keep_entry_uuid(self, slapd: Slapd) -> None:
        """modify, rename-and-move and delete apply; a moved entry keeps its entryUUID."""
        old = f"uid=sam.taylor,ou=sales,{PEOPLE}"
        before = slapd.search("(uid=sam.taylor)", ["entryUUID"]).splitlines()[1]

        slapd.modify(f"dn: {old}\nchangetype: modify\nreplace: title\ntitle: Staff Engineer\n")
        slapd.rename(old, "uid=sam.taylor2", new_superior=f"ou=engineering,{PEOPLE}")
        moved = slapd.search("(uid=sam.taylor2)", ["entryUUID", "title"])
        slapd.delete(f"uid=sam.taylor2,ou=engineering,{PEOPLE}")

        assert f"dn: uid=sam.taylor2,ou=engineering,{PEOPLE}" in moved
        assert before in moved
        assert "title: Staff Engineer" in moved
        assert "" == slapd.search("(|(uid=sam.taylor)(uid=sam.taylor2))", ["dn"])

    def test_stop_stops_and_start_restarts_on_the_same_port(self, slapd: Slapd) -> None:
        """After stop() nothing listens on the port; start() serves the same data there again."""
        slapd.stop()
        with pytest.raises(LDAPSocketOpenError):
            with connect(slapd.url):
                pass
        slapd.start()

        with service(slapd) as conn:
            conn.search(PEOPLE, "(uid=ada.lovelace)", attributes=["uid"])
            assert 1 == len(conn.entries)


class TestStore:
    async def test_store_url_is_a_fresh_store_at_head(self, store_url: str) -> None:
        """By default each backend's store URL opens a store at the newest revision, with no
        rows: a copy of the session's migrated template."""
        engine = create_engine(StoreSettings(url=store_url))
        try:
            assert head_revision() == await current_revision(engine)
            async with engine.connect() as conn:
                assert 0 == await conn.scalar(text("SELECT count(*) FROM scim_user"))
        finally:
            await engine.dispose()

    @pytest.mark.empty_store
    async def test_empty_store_url_is_an_empty_database(self, store_url: str) -> None:
        """Each backend's store URL opens a database without tables, ready for the schema."""
        engine = create_async_engine(store_url)
        try:
            async with engine.connect() as conn:
                tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
                assert 1 == await conn.scalar(text("SELECT 1"))
        finally:
            await engine.dispose()

        assert [] == tables


class TestGeneratedLdif:
    def test_same_arguments_give_the_same_file(self) -> None:
        """gen_ldif is deterministic for a seed, operational attributes included."""
        args = ("--users", "50", "--groups", "8", "--seed", "9", "--with-operational")

        assert gen_ldif(*args) == gen_ldif(*args)
        assert gen_ldif(*args) != gen_ldif("--users", "50", "--groups", "8", "--seed", "10")

    def test_ten_thousand_users_load_with_slapadd(
        self, make_slapd: Callable[[str | Path], Slapd], tmp_path: Path
    ) -> None:
        """A 10k-user directory with operational attributes loads, entryUUIDs included."""
        ldif = tmp_path / "10k.ldif"
        gen_ldif("--users", "10000", "--groups", "300", "--with-operational", "-o", str(ldif))
        content = ldif.read_text()
        server = make_slapd(ldif)

        entries = server.search("(objectClass=*)", ["1.1"]).count("dn: ")
        users = server.search("(objectClass=inetOrgPerson)", ["1.1"], base=PEOPLE).count("dn: ")
        uuid_line = next(x for x in content.splitlines() if x.startswith("entryUUID"))

        assert content.count("\ndn: ") + 1 == entries  # + the service account the harness adds
        assert 10000 == users
        assert uuid_line in server.search("(objectClass=dcObject)", ["entryUUID"])

    def test_demo_directory_is_current_and_loads(
        self, make_slapd: Callable[[str | Path], Slapd]
    ) -> None:
        """syncsvc/demo/directory.ldif is what its header's command writes, and slapadd takes it."""
        header = DEMO_LDIF.read_text().splitlines()[0]
        command = header.removeprefix("# Generated by bench/gen_ldif.py ").split()

        assert DEMO_LDIF.read_text() == gen_ldif(*command)
        server = make_slapd(DEMO_LDIF)
        with service(server) as conn:
            conn.search(PEOPLE, "(objectClass=inetOrgPerson)", attributes=["entryUUID", "manager"])
            assert 200 == len(conn.entries)
