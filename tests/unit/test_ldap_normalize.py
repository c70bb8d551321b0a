"""Raw attribute decoding, anchors and AD range retrieval of the LDAP source."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import pytest

from syncsvc.domain import LdapEntry
from syncsvc.errors import DirectoryError
from syncsvc.ldap.normalize import (
    RangedValues,
    anchor_value,
    complete_ranges,
    decode_attributes,
    has_ranges,
    next_range_request,
    parse_range_option,
    to_entry,
)

GUID = uuid.UUID("3f2504e0-4f89-11d3-9a0c-0305e82c3301")


class TestDecodeAttributes:
    def test_text_is_decoded_and_names_lower_cased(self) -> None:
        """Text values become str (UTF-8) and attribute names are lower-cased."""
        raw = {"displayName": [b"Zo\xc3\xab M\xc3\xbcller"], "MAIL": [b"a@ex", b"b@ex"]}
        assert {"displayname": ("Zoë Müller",), "mail": ("a@ex", "b@ex")} == decode_attributes(raw)

    def test_binary_attributes_stay_bytes(self) -> None:
        """objectGUID and jpegPhoto values are never decoded, even when they happen to be ASCII."""
        raw = {"objectGUID": [b"0123456789abcdef"], "jpegPhoto": [b"\xff\xd8\xff"]}
        decoded = decode_attributes(raw)
        assert (b"0123456789abcdef",) == decoded["objectguid"]
        assert (b"\xff\xd8\xff",) == decoded["jpegphoto"]

    def test_non_utf8_text_stays_bytes(self) -> None:
        """A value of a text attribute that is not UTF-8 is kept as bytes rather than mangled."""
        assert {"description": (b"caf\xe9",)} == decode_attributes({"description": [b"caf\xe9"]})

    def test_binary_option_is_dropped(self) -> None:
        """userCertificate;binary is stored as usercertificate, as bytes."""
        assert {"usercertificate": (b"0\x82",)} == decode_attributes({"userCertificate;binary": [b"0\x82"]})

    def test_language_options_are_kept(self) -> None:
        """Other attribute options (language tags) stay part of the name."""
        assert {"cn;lang-de": ("Anna",)} == decode_attributes({"cn;lang-de": [b"Anna"]})

    def test_empty_attributes_are_left_out(self) -> None:
        """An attribute with no values does not appear."""
        assert {} == decode_attributes({"member": []})


class TestAnchor:
    def test_object_guid_is_little_endian(self) -> None:
        """16 objectGUID bytes render as UUID(bytes_le=...), AD's own text form."""
        assert str(GUID) == anchor_value("objectGUID", [GUID.bytes_le])
        assert str(GUID) != anchor_value("objectGUID", [GUID.bytes])

    def test_entry_uuid_text_is_lower_cased(self) -> None:
        """entryUUID text is used as-is, lower-cased and stripped."""
        assert "038f3e54-7e7f-1041-81ad-85b38ae84d35" == anchor_value(
            "entryUUID", [" 038F3E54-7E7F-1041-81AD-85B38AE84D35"]
        )

    def test_missing_anchor_is_none(self) -> None:
        """No value, no anchor."""
        assert None is anchor_value("entryUUID", [])

    def test_to_entry_skips_entries_without_anchor(self) -> None:
        """to_entry returns None for an entry that lacks the anchor attribute."""
        assert None is to_entry("cn=x,dc=ex", {"cn": ("x",)}, "entryUUID")

    def test_to_entry_builds_entry(self) -> None:
        """to_entry keeps dn and attributes and reads the anchor case-insensitively."""
        attrs = {"objectguid": (GUID.bytes_le,), "cn": ("x",)}
        assert LdapEntry("cn=x,dc=ex", str(GUID), attrs) == to_entry("cn=x,dc=ex", attrs, "objectGUID")


class TestRangeParsing:
    def test_parse_bounded_range(self) -> None:
        """member;range=0-1499 parses to its attribute, start and end."""
        assert RangedValues("member", 0, 1499) == parse_range_option("member;range=0-1499")

    def test_parse_last_range(self) -> None:
        """An end of * marks the last chunk."""
        assert RangedValues("member", 1500, None) == parse_range_option("Member;Range=1500-*")

    def test_plain_name_is_not_ranged(self) -> None:
        """A name without the range option is not a chunk."""
        assert None is parse_range_option("member")
        assert not has_ranges(["member", "cn"])
        assert has_ranges(["cn", "member;range=0-1499"])

    def test_next_request(self) -> None:
        """The next request starts right after the chunk's end and runs to *."""
        assert "member;range=1500-*" == next_range_request(RangedValues("member", 0, 1499))

    def test_last_chunk_has_no_next_request(self) -> None:
        """Asking for the chunk after the last one is a programming error."""
        with pytest.raises(ValueError, match="last range"):
            next_range_request(RangedValues("member", 1500, None))


def _members(start: int, stop: int) -> list[bytes]:
    return [f"cn=u{i},dc=ex".encode() for i in range(start, stop)]


class TestCompleteRanges:
    def test_chunks_are_fetched_until_star_and_merged(self) -> None:
        """member;range=0-1499 is followed by base reads 1500-* and 3000-* until the end is *."""
        server = {
            "member;range=1500-*": {"member;range=1500-2999": _members(1500, 3000)},
            "member;range=3000-*": {"member;range=3000-*": _members(3000, 3200)},
        }
        asked: list[tuple[str, str]] = []

        def fetch(dn: str, attribute: str) -> Mapping[str, Sequence[bytes]]:
            asked.append((dn, attribute))
            return server[attribute]

        raw = {"cn": [b"big"], "member": [], "member;range=0-1499": _members(0, 1500)}
        merged = complete_ranges("cn=big,dc=ex", raw, fetch)
        assert _members(0, 3200) == merged["member"]
        assert [b"big"] == merged["cn"]
        assert [("cn=big,dc=ex", "member;range=1500-*"), ("cn=big,dc=ex", "member;range=3000-*")] == asked
        assert not has_ranges(merged)

    def test_single_last_chunk_needs_no_fetch(self) -> None:
        """A first chunk already ending in * is merged without any further read."""

        def fetch(dn: str, attribute: str) -> Mapping[str, Sequence[bytes]]:
            raise AssertionError("no fetch expected")

        merged = complete_ranges("cn=g,dc=ex", {"member;range=0-*": _members(0, 3)}, fetch)
        assert {"member": _members(0, 3)} == merged

    def test_server_dropping_the_range_is_an_error(self) -> None:
        """A follow-up read without the ranged attribute is a short read: DirectoryError."""
        with pytest.raises(DirectoryError, match="stopped at 1499"):
            complete_ranges("cn=g,dc=ex", {"member;range=0-1499": _members(0, 1500)}, lambda dn, a: {})

    def test_gap_in_ranges_is_an_error(self) -> None:
        """A chunk that does not start right after the previous one is refused."""

        def fetch(dn: str, attribute: str) -> Mapping[str, Sequence[bytes]]:
            return {"member;range=1600-*": _members(1600, 1700)}

        with pytest.raises(DirectoryError, match="expected start 1500"):
            complete_ranges("cn=g,dc=ex", {"member;range=0-1499": _members(0, 1500)}, fetch)

    def test_decoded_after_merge(self) -> None:
        """After the merge, decoding yields one member attribute with every DN as text."""
        merged = complete_ranges("cn=g,dc=ex", {"member;range=0-*": _members(0, 2)}, lambda dn, a: {})
        assert {"member": ("cn=u0,dc=ex", "cn=u1,dc=ex")} == decode_attributes(merged)
