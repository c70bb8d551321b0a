"""LDIF parsing, the RFC 4515 filter evaluator and the LDIF directory of the LDAP source."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncsvc.errors import DirectoryError, DirectoryUnavailable
from syncsvc.ldap import FLAVORS, SearchQuery, open_directory
from syncsvc.ldap.ldapfilter import (
    And,
    Compare,
    Equal,
    FilterSyntaxError,
    Not,
    Or,
    Present,
    Substrings,
    matches,
    parse_filter,
)
from syncsvc.ldap.ldif import (
    LdifDirectory,
    LdifSyntaxError,
    ldif_path,
    parse_ldif,
    read_ldif_records,
)
from syncsvc.settings import LdapSettings

OPENLDAP = FLAVORS["openldap"]


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def _person(i: int, *, ou: str = "people", extra: str = "") -> str:
    return (
        f"dn: uid=u{i:02d},ou={ou},dc=ex\n"
        "objectClass: inetOrgPerson\n"
        f"uid: u{i:02d}\ncn: User {i}\nsn: {i}\n"
        f"entryUUID: {uuid.UUID(int=i)}\n"
        f"modifyTimestamp: 202401{i % 28 + 1:02d}120000Z\n"
        f"employeeNumber: {1000 + i}\n{extra}\n"
    )


class TestReadLdif:
    def test_folding_comments_base64_and_multiple_values(self) -> None:
        """Folded lines join, comments vanish, :: is base64, repeated attributes accumulate."""
        text = (
            "version: 1\n"
            "# a comment\n"
            "#  folded comment\n"
            " continuation of the comment\n"
            "dn: uid=jose,ou=peo\n"
            " ple,dc=ex\n"
            f"cn:: {_b64('José Núñez')}\n"
            "mail: jose@ex\n"
            "mail: j@ex\n"
            "description: a long\n"
            "  text\n"
            "\n"
            f"dn:: {_b64('cn=Zoë,dc=ex')}\n"
            "cn: Zoë\n"
        )
        records = list(read_ldif_records(text.splitlines()))
        assert ["uid=jose,ou=people,dc=ex", "cn=Zoë,dc=ex"] == [r.dn for r in records]
        assert {
            "cn": ["José Núñez".encode()],
            "mail": [b"jose@ex", b"j@ex"],
            "description": [b"a long text"],
        } == records[0].attributes

    def test_change_records_are_refused(self) -> None:
        """A changetype line is an error naming its line."""
        with pytest.raises(LdifSyntaxError, match="line 2"):
            list(read_ldif_records(["dn: cn=x", "changetype: delete"]))

    def test_url_values_are_refused(self) -> None:
        """':<' file references are not supported."""
        with pytest.raises(LdifSyntaxError, match="URL"):
            list(read_ldif_records(["dn: cn=x", "jpegPhoto:< file:///x.jpg"]))

    def test_missing_dn_is_an_error(self) -> None:
        """A record must start with dn:."""
        with pytest.raises(LdifSyntaxError, match="dn:"):
            list(read_ldif_records(["cn: x"]))

    def test_bad_base64_is_an_error(self) -> None:
        """Invalid base64 after :: is reported."""
        with pytest.raises(LdifSyntaxError, match="base64"):
            list(read_ldif_records(["dn: cn=x", "cn:: !!!"]))


class TestParseLdif:
    def test_entries_get_anchor_and_decoded_values(self) -> None:
        """Entries carry the entryUUID anchor; binary base64 values stay bytes."""
        photo = _b64(b"\xff\xd8\xff\xe0")
        text = _person(1, extra=f"jpegPhoto:: {photo}")
        (entry,) = parse_ldif(text)
        assert (str(uuid.UUID(int=1)), (b"\xff\xd8\xff\xe0",)) == (entry.anchor, entry.get("jpegPhoto"))
        assert ("User 1",) == entry.get("cn")

    def test_object_guid_anchor_from_ldif(self) -> None:
        """An AD-style export with base64 objectGUID anchors on the little-endian GUID."""
        guid = uuid.uuid4()
        (entry,) = parse_ldif(f"dn: cn=x,dc=ex\ncn: x\nobjectGUID:: {_b64(guid.bytes_le)}\n", "objectGUID")
        assert str(guid) == entry.anchor

    def test_entry_without_anchor_is_skipped_with_warning(self) -> None:
        """A record without entryUUID is left out and logged as ldap.entry_without_anchor."""
        with capture_logs() as logs:
            entries = parse_ldif("dn: cn=x,dc=ex\ncn: x\n\n" + _person(2))
        assert 1 == len(entries)
        assert [("ldap.entry_without_anchor", "cn=x,dc=ex")] == [
            (e["event"], e["dn"]) for e in logs if e["event"] == "ldap.entry_without_anchor"
        ]


class TestParseFilter:
    def test_nested_structure(self) -> None:
        """&, |, ! and items parse into nodes with lower-cased attribute names."""
        node = parse_filter("(&(objectClass=person)(|(uid=a*)(!(mail=*)))(modifyTimestamp>=20240101000000Z))")
        assert And((
            Equal("objectclass", b"person"),
            Or((Substrings("uid", b"a", (), None), Not(Present("mail")))),
            Compare("modifytimestamp", ">=", b"20240101000000Z"),
        )) == node  # fmt: skip

    def test_escapes_are_decoded(self) -> None:
        """\\2a and \\28 in a value mean literal * and (."""
        assert Equal("cn", b"a*(b") == parse_filter(r"(cn=a\2a\28b)")

    def test_substring_pieces(self) -> None:
        """initial*any*final pieces are split."""
        assert Substrings("cn", None, (b"b", b"c"), b"d") == parse_filter("(cn=*b*c*d)")

    def test_bare_item_is_accepted(self) -> None:
        """A filter without outer parentheses is one item."""
        assert Present("uid") == parse_filter("uid=*")

    @pytest.mark.parametrize("text", ["(uid=a", "(&(uid=a)", "(uid)", "(cn:dn:=x)", "(cn=\\zz)", "(uid=a))"])
    def test_bad_filters_are_refused(self, text: str) -> None:
        """Unbalanced, operator-less, extensible or badly escaped filters raise FilterSyntaxError."""
        with pytest.raises(FilterSyntaxError):
            parse_filter(text)


class TestMatches:
    ATTRS = {
        "objectclass": ("top", "inetOrgPerson"),
        "uid": ("Ada.Lovelace",),
        "cn": ("Ada Lovelace",),
        "employeenumber": ("1010",),
        "modifytimestamp": ("20240131120000Z",),
        "jpegphoto": (b"\xff\xd8",),
    }

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("(objectClass=inetorgperson)", True),
            ("(uid=ada.lovelace)", True),
            ("(uid=grace)", False),
            ("(mail=*)", False),
            ("(cn=*)", True),
            ("(cn=ada*)", True),
            ("(cn=*love*)", True),
            ("(cn=*lace)", True),
            ("(cn=a*x*e)", False),
            ("(cn=Ada Lovelace*Lovelace)", False),
            ("(employeeNumber>=999)", True),  # integers compare numerically, not as text
            ("(employeeNumber<=999)", False),
            ("(modifyTimestamp>=20240131120000Z)", True),
            ("(modifyTimestamp>=20240131120001Z)", False),
            ("(modifyTimestamp>=20240131130000+0100)", True),  # same instant in another zone
            ("(modifyTimestamp<=20240101000000Z)", False),
            ("(&(uid=ada.lovelace)(!(cn=grace*)))", True),
            ("(|(uid=x)(uid=y))", False),
            ("(jpegPhoto=\\ff\\d8)", True),
            ("(cn~=ADA LOVELACE)", True),
        ],
    )
    def test_forms(self, text: str, expected: bool) -> None:
        """Each supported filter form evaluates as an LDAP server would for these syntaxes."""
        assert expected == matches(parse_filter(text), self.ATTRS)


class TestLdifPath:
    def test_absolute_and_relative(self) -> None:
        """ldif:///abs is absolute; ldif://rel is relative; %20 is decoded."""
        assert Path("/srv/demo dir/x.ldif") == ldif_path("ldif:///srv/demo%20dir/x.ldif")
        assert Path("demo/x.ldif") == ldif_path("ldif://demo/x.ldif")


@pytest.fixture
def ldif_file(tmp_path: Path) -> Path:
    path = tmp_path / "dir.ldif"
    text = "dn: dc=ex\nobjectClass: domain\ndc: ex\nentryUUID: " + str(uuid.UUID(int=999)) + "\n\n"
    text += "".join(_person(i) for i in range(1, 18))
    text += "".join(_person(i, ou="others") for i in range(50, 53))
    text += (
        f"dn: cn=g,ou=groups,dc=ex\nobjectClass: groupOfNames\ncn: g\n"
        f"entryUUID: {uuid.UUID(int=500)}\nmember: uid=u01,ou=people,dc=ex\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


class TestLdifDirectory:
    async def test_pages_of_page_size_scoped_and_filtered(self, ldif_file: Path) -> None:
        """search() yields pages of page_size for matching entries under the base only."""
        directory = LdifDirectory(f"ldif://{ldif_file}", OPENLDAP, page_size=7)
        query = SearchQuery("ou=People,dc=ex", "(objectClass=inetOrgPerson)", ("*",))
        sizes = [len(page) async for page in directory.search(query)]
        assert [7, 7, 3] == sizes

    async def test_attributes_are_projected(self, ldif_file: Path) -> None:
        """Only the requested attributes come back (anchor included when asked)."""
        directory = LdifDirectory(f"ldif://{ldif_file}", OPENLDAP)
        query = SearchQuery("dc=ex", "(uid=u01)", ("uid", "entryUUID"))
        pages = [page async for page in directory.search(query)]
        assert [{"uid", "entryuuid"}] == [set(e.attributes) for e in pages[0]]

    async def test_changed_since_style_filter(self, ldif_file: Path) -> None:
        """A modifyTimestamp>= condition selects only the later entries."""
        directory = LdifDirectory(f"ldif://{ldif_file}", OPENLDAP)
        query = SearchQuery("dc=ex", "(&(objectClass=inetOrgPerson)(modifyTimestamp>=20240115000000Z))", ("*",))
        uids = sorted([e.get("uid")[0] async for page in directory.search(query) for e in page])
        assert ["u14", "u15", "u16", "u17", "u50", "u51", "u52"] == uids

    async def test_no_match_yields_one_empty_page(self, ldif_file: Path) -> None:
        """An empty result is one empty page, as from a server."""
        directory = LdifDirectory(f"ldif://{ldif_file}", OPENLDAP)
        pages = [page async for page in directory.search(SearchQuery("dc=ex", "(uid=nobody)", ()))]
        assert [[]] == pages

    async def test_server_info_and_content_sync(self, ldif_file: Path) -> None:
        """An LDIF directory offers no content sync; asking for it is a DirectoryError."""
        directory = LdifDirectory(f"ldif://{ldif_file}", OPENLDAP)
        info = await directory.server_info()
        assert (False, None, f"ldif://{ldif_file}") == (info.content_sync, info.ad_highest_usn, info.url)
        with pytest.raises(DirectoryError, match="not supported"):
            await directory.content_sync(SearchQuery("dc=ex", "(uid=*)", ()), None)

    async def test_missing_file_is_unavailable(self, tmp_path: Path) -> None:
        """A missing file is DirectoryUnavailable: the run fails and nothing is deleted."""
        directory = LdifDirectory(f"ldif://{tmp_path}/nope.ldif", OPENLDAP)
        with pytest.raises(DirectoryUnavailable):
            await directory.server_info()

    async def test_bad_filter_is_directory_error(self, ldif_file: Path) -> None:
        """A filter the evaluator cannot parse is a DirectoryError (filterError)."""
        directory = LdifDirectory(f"ldif://{ldif_file}", OPENLDAP)
        with pytest.raises(DirectoryError, match="filterError"):
            async for _ in directory.search(SearchQuery("dc=ex", "(uid=a", ())):
                pass

    async def test_file_changes_are_picked_up(self, ldif_file: Path) -> None:
        """Editing the file is seen by the next search."""
        directory = LdifDirectory(f"ldif://{ldif_file}", OPENLDAP)
        query = SearchQuery("dc=ex", "(uid=u99)", ())
        assert [[]] == [p async for p in directory.search(query)]
        ldif_file.write_text(ldif_file.read_text() + "\n" + _person(99), encoding="utf-8")
        assert [1] == [len(p) async for p in directory.search(query)]

    def test_open_directory_picks_ldif(self, ldif_file: Path) -> None:
        """open_directory returns an LdifDirectory for an ldif:// URL."""
        directory = open_directory(LdapSettings(url=(f"ldif://{ldif_file}",)), OPENLDAP)
        assert isinstance(directory, LdifDirectory)
        assert f"ldif://{ldif_file}" == directory.description
