"""The specialised searchResultEntry BER reader of the LDAP source, checked against ldap3's."""

from __future__ import annotations

import pytest
from ldap3.utils.asn1 import decode_message_fast

from syncsvc.ldap.fastber import AttributeNames, parse_search_entry, read_entry
from syncsvc.ldap.normalize import decode_attributes


def _tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _message(message_id: int, dn: bytes, attributes: list[tuple[bytes, list[bytes]]], controls: bytes = b"") -> bytes:
    body = b"".join(
        _tlv(0x30, _tlv(0x04, name) + _tlv(0x31, b"".join(_tlv(0x04, v) for v in values)))
        for name, values in attributes
    )
    entry = _tlv(0x64, _tlv(0x04, dn) + _tlv(0x30, body))
    id_bytes = message_id.to_bytes((message_id.bit_length() + 8) // 8 or 1, "big")
    return _tlv(0x30, _tlv(0x02, id_bytes) + entry + (_tlv(0xA0, controls) if controls else b""))


def _ldap3_view(data: bytes) -> tuple[int, str, dict[str, list[bytes]]]:
    message = decode_message_fast(data)
    payload = message["payload"]
    raw: dict[str, list[bytes]] = {}
    for attribute in payload[1][3]:
        raw.setdefault(attribute[3][0][3].decode().lower(), []).extend(v[3] for v in attribute[3][1][3])
    return message["messageID"], payload[0][3].decode(), raw


class TestParseSearchEntry:
    @pytest.mark.parametrize("message_id", [1, 127, 128, 300, 70000])
    def test_short_and_long_lengths_agree_with_ldap3(self, message_id: int) -> None:
        """Values of 0, 1, 127, 128, 300 and 70,000 bytes (short and long BER lengths) read as ldap3 reads them."""
        attributes = [
            (b"objectClass", [b"top", b"inetOrgPerson"]),
            (b"CN", [b"x" * 127, b""]),
            (b"description", [b"d" * 128, b"e" * 300]),
            (b"jpegPhoto", [bytes(range(256)) * 274]),
            (b"member", [f"uid=u{i},dc=ex".encode() for i in range(500)]),
        ]
        data = _message(message_id, "cn=Zoë,dc=ex".encode(), attributes)
        parsed = parse_search_entry(data)
        assert parsed is not None
        assert _ldap3_view(data) == parsed[:3]
        assert None is parsed[3]

    def test_controls_region_is_located(self) -> None:
        """A trailing [0] controls element is returned as its (start, stop) span."""
        control = _tlv(0x30, _tlv(0x04, b"1.3.6.1.4.1.4203.1.9.1.2") + _tlv(0x04, b"\x30\x00"))
        data = _message(5, b"cn=a", [(b"cn", [b"a"])], control)
        parsed = parse_search_entry(data)
        assert parsed is not None
        start, stop = parsed[3]  # type: ignore[misc]
        assert control == data[start:stop]

    def test_other_messages_are_not_entries(self) -> None:
        """A searchResultDone is not parsed here (None): ldap3 handles it."""
        done = _tlv(0x30, _tlv(0x02, b"\x03") + _tlv(0x65, _tlv(0x0A, b"\x00") + _tlv(0x04, b"") + _tlv(0x04, b"")))
        assert None is parse_search_entry(done)

    def test_truncated_or_malformed_input_is_none(self) -> None:
        """Cut or corrupted messages return None (the caller falls back), never raise."""
        data = _message(2, b"cn=a", [(b"cn", [b"a" * 200])])
        assert None is parse_search_entry(data[:-5])
        assert None is parse_search_entry(b"\x30\x80" + data[2:])  # indefinite length
        assert None is parse_search_entry(b"")


_BINARY = frozenset({"jpegphoto", "objectguid", "usercertificate"})


def _decoded_view(data: bytes) -> tuple[int, str, dict[str, tuple[object, ...]], tuple[int, int] | None]:
    """What the raw reader followed by decode_attributes makes of ``data``."""
    parsed = parse_search_entry(data)
    assert parsed is not None
    return parsed[0], parsed[1], decode_attributes(parsed[2], _BINARY), parsed[3]


class TestReadEntry:
    @pytest.mark.parametrize("message_id", [1, 300])
    def test_decodes_as_the_raw_reader_and_decode_attributes_do(self, message_id: int) -> None:
        """Text, binary, non-UTF-8, ``;binary``, language options, empty sets and values of 0 to
        70,000 bytes (128 bytes: a one-value set whose length byte looks like its value's)."""
        attributes = [
            (b"objectClass", [b"top", b"inetOrgPerson"]),
            (b"CN", ["Zoë".encode()]),
            (b"sn", [b""]),
            (b"description", [b"d" * 128]),
            (b"title", [b"t" * 127, b"e" * 300]),
            (b"jpegPhoto", [bytes(range(256)) * 274]),
            (b"objectGUID", [bytes(range(16))]),
            (b"userCertificate;binary", [b"\x30\x82cert"]),
            (b"displayName;lang-de", [b"Zoe"]),
            (b"street", [b"\xff\xfe not utf-8"]),
            (b"seeAlso", []),
            (b"member", [f"uid=u{i},dc=ex".encode() for i in range(500)]),
        ]
        data = _message(message_id, "cn=Zoë,dc=ex".encode(), attributes)
        names: AttributeNames = {}
        assert _decoded_view(data) == read_entry(data, _BINARY, names)
        assert _decoded_view(data) == read_entry(data, _BINARY, names)  # names cached now
        decoded = read_entry(data, _BINARY, names)
        assert decoded is not None
        assert ("d" * 128,) == decoded[2]["description"]
        assert (b"\xff\xfe not utf-8",) == decoded[2]["street"]
        assert "seealso" not in decoded[2]

    def test_controls_region_is_located(self) -> None:
        """A trailing [0] controls element is returned as its (start, stop) span."""
        control = _tlv(0x30, _tlv(0x04, b"1.3.6.1.4.1.4203.1.9.1.2") + _tlv(0x04, b"\x30\x00"))
        data = _message(5, b"cn=a", [(b"cn", [b"a"])], control)
        decoded = read_entry(data, _BINARY, {})
        assert decoded is not None
        start, stop = decoded[3]  # type: ignore[misc]
        assert control == data[start:stop]

    def test_ranged_entries_are_left_to_the_raw_reader(self) -> None:
        """AD range retrieval (``member;range=0-1``) is merged in raw form: None here."""
        data = _message(2, b"cn=g", [(b"cn", [b"g"]), (b"member;range=0-1", [b"cn=a", b"cn=b"])])
        assert None is read_entry(data, _BINARY, {})

    def test_other_and_malformed_messages_are_none(self) -> None:
        """A searchResultDone, cut or corrupted messages: None (the caller falls back)."""
        done = _tlv(0x30, _tlv(0x02, b"\x03") + _tlv(0x65, _tlv(0x0A, b"\x00") + _tlv(0x04, b"") + _tlv(0x04, b"")))
        data = _message(2, b"cn=a", [(b"cn", [b"a" * 200])])
        assert None is read_entry(done, _BINARY, {})
        assert None is read_entry(data[:-5], _BINARY, {})
        assert None is read_entry(b"\x30\x80" + data[2:], _BINARY, {})
        assert None is read_entry(b"", _BINARY, {})
