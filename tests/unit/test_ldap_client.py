"""Error translation, URL handling, directory selection and fast decoding of the LDAP source."""

from __future__ import annotations

from typing import Any

import pytest
from ldap3 import SYNC, Connection, Server
from ldap3.core.exceptions import (
    LDAPInvalidFilterError,
    LDAPSessionTerminatedByServerError,
    LDAPSocketReceiveError,
)
from ldap3.strategy.base import SESSION_TERMINATED_BY_SERVER
from ldap3.utils.asn1 import decode_message_fast

import syncsvc.ldap
from syncsvc.errors import (
    ConfigError,
    ContentSyncRefreshRequired,
    DirectoryError,
    DirectoryUnavailable,
)
from syncsvc.ldap import FLAVORS, Ldap3Directory, open_directory
from syncsvc.ldap.client import _check, _install_raw_entry_decoder, ldap_errors, redact_url
from syncsvc.ldap.contentsync import SYNC_STATE_OID
from syncsvc.settings import LdapSettings

OPENLDAP = FLAVORS["openldap"]


def test_public_names_are_sorted_and_importable() -> None:
    """syncsvc.ldap.__all__ is sorted and every name in it exists."""
    assert sorted(syncsvc.ldap.__all__) == syncsvc.ldap.__all__
    assert all(hasattr(syncsvc.ldap, name) for name in syncsvc.ldap.__all__)


class TestOpenDirectory:
    def test_ldap_urls_give_ldap3_directory_with_safe_description(self) -> None:
        """ldap(s):// URLs give an Ldap3Directory whose description lists the URLs, no password."""
        settings = LdapSettings(
            url=("ldap://a.example:389", "ldaps://b.example"), bind_dn="cn=svc", bind_password="s3cret"
        )
        directory = open_directory(settings, OPENLDAP)
        assert isinstance(directory, Ldap3Directory)
        assert "ldap://a.example:389, ldaps://b.example" == directory.description
        assert "s3cret" not in directory.description

    def test_no_url_is_a_config_error(self) -> None:
        """Without any URL there is nothing to read: ConfigError."""
        with pytest.raises(ConfigError, match="ldap.url"):
            open_directory(LdapSettings(), OPENLDAP)

    def test_ldif_mixed_with_ldap_is_a_config_error(self) -> None:
        """An ldif:// URL cannot be a failover partner of a server."""
        with pytest.raises(ConfigError, match="ldif"):
            open_directory(LdapSettings(url=("ldap://a", "ldif:///x.ldif")), OPENLDAP)

    def test_unknown_scheme_is_a_config_error(self) -> None:
        """http:// is not a directory URL."""
        with pytest.raises(ConfigError, match="not an ldap"):
            open_directory(LdapSettings(url=("http://a",)), OPENLDAP)


class TestRedactUrl:
    def test_user_info_is_removed(self) -> None:
        """Credentials embedded in a URL never reach a description or a log line."""
        assert "ldap://host:389/dc=ex" == redact_url("ldap://cn=x:pw@host:389/dc=ex")

    def test_plain_url_is_unchanged(self) -> None:
        """A URL without user information is kept as written."""
        assert "ldaps://host" == redact_url("ldaps://host")


class TestLdapErrors:
    def test_lost_connection_is_unavailable(self) -> None:
        """A session terminated by the server becomes DirectoryUnavailable."""
        with pytest.raises(DirectoryUnavailable, match="connection lost") as info:
            with ldap_errors("ldap://h", "search"):
                raise LDAPSessionTerminatedByServerError("session terminated by server")
        assert isinstance(info.value.__cause__, LDAPSessionTerminatedByServerError)

    def test_socket_errors_are_unavailable(self) -> None:
        """Receive errors and plain OSErrors (timeouts) become DirectoryUnavailable."""
        for exc in (LDAPSocketReceiveError("error receiving data"), TimeoutError("timed out")):
            with pytest.raises(DirectoryUnavailable):
                with ldap_errors("ldap://h", "search"):
                    raise exc

    def test_other_ldap3_errors_are_directory_errors(self) -> None:
        """Any other ldap3 exception becomes a DirectoryError that is not Unavailable."""
        with pytest.raises(DirectoryError, match="search on ldap://h failed") as info:
            with ldap_errors("ldap://h", "search"):
                raise LDAPInvalidFilterError("bad filter")
        assert not isinstance(info.value, DirectoryUnavailable)

    def test_own_errors_pass_through(self) -> None:
        """A DirectoryError raised inside is not wrapped again."""
        with pytest.raises(DirectoryError, match="^mine$"):
            with ldap_errors("ldap://h", "search"):
                raise DirectoryError("mine")


class TestCheckResult:
    def test_success_passes(self) -> None:
        """Result 0 is not an error."""
        _check({"result": 0, "description": "success"}, "search", "ldap://h")

    def test_size_limit_is_an_error(self) -> None:
        """sizeLimitExceeded is a DirectoryError, never a silently short read."""
        with pytest.raises(DirectoryError, match="sizeLimitExceeded"):
            _check({"result": 4, "description": "sizeLimitExceeded", "message": ""}, "search", "ldap://h")

    def test_diagnostic_message_is_included(self) -> None:
        """The server's diagnostic message is part of the error."""
        with pytest.raises(DirectoryError, match=r"noSuchObject \(no such base\)"):
            _check({"result": 32, "description": "noSuchObject", "message": "no such base"}, "s", "u")

    def test_busy_is_unavailable(self) -> None:
        """busy/unavailable mean the server cannot serve now: DirectoryUnavailable."""
        with pytest.raises(DirectoryUnavailable):
            _check({"result": 51, "description": "busy"}, "search", "ldap://h")

    def test_sync_refresh_required(self) -> None:
        """e-syncRefreshRequired (4096) raises ContentSyncRefreshRequired."""
        with pytest.raises(ContentSyncRefreshRequired):
            _check({"result": 4096, "description": "e-syncRefreshRequired"}, "content sync", "ldap://h")

    def test_missing_result_is_unavailable(self) -> None:
        """No result at all (connection gone) is DirectoryUnavailable."""
        with pytest.raises(DirectoryUnavailable):
            _check(None, "search", "ldap://h")


def _tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _search_entry_message(controls: bool) -> bytes:
    attributes = b"".join(
        _tlv(0x30, _tlv(0x04, name) + _tlv(0x31, b"".join(_tlv(0x04, v) for v in values)))
        for name, values in [
            (b"CN", [b"Ada", b"Ada L"]),
            (b"objectGUID", [bytes(range(16))]),
            (b"member;range=0-1", [b"cn=a", b"cn=b"]),
        ]
    )
    entry = _tlv(0x64, _tlv(0x04, b"uid=ada,dc=ex") + _tlv(0x30, attributes))
    body = _tlv(0x02, b"\x03") + entry
    if controls:
        control = _tlv(0x30, _tlv(0x04, SYNC_STATE_OID.encode()) + _tlv(0x04, b"\x30\x00"))
        body += _tlv(0xA0, control)
    return _tlv(0x30, body)


class TestRawEntryDecoder:
    @pytest.mark.parametrize("controls", [False, True])
    def test_matches_ldap3_raw_attributes(self, controls: bool) -> None:
        """The per-connection fast decoder yields ldap3's raw values, names lower-cased, controls kept."""
        conn = Connection(Server("127.0.0.1"), client_strategy=SYNC)
        message = decode_message_fast(_search_entry_message(controls))
        expected: dict[str, Any] = conn.strategy.decode_response_fast(message)
        _install_raw_entry_decoder(conn)
        actual: dict[str, Any] = conn.strategy.decode_response_fast(decode_message_fast(_search_entry_message(controls)))
        assert ("searchResEntry", "uid=ada,dc=ex") == (actual["type"], actual["dn"])
        assert {k.lower(): v for k, v in expected["raw_attributes"].items()} == actual["raw_attributes"]
        assert expected.get("controls") == actual.get("controls")

    def test_other_messages_use_ldap3(self) -> None:
        """A searchResDone goes through ldap3's own decoder."""
        conn = Connection(Server("127.0.0.1"), client_strategy=SYNC)
        _install_raw_entry_decoder(conn)
        done = _tlv(0x30, _tlv(0x02, b"\x03") + _tlv(0x65, _tlv(0x0A, b"\x04") + _tlv(0x04, b"") + _tlv(0x04, b"")))
        decoded = conn.strategy.decode_response_fast(decode_message_fast(done))
        assert ("searchResDone", 4, "sizeLimitExceeded") == (decoded["type"], decoded["result"], decoded["description"])


class _ChunkedSocket:
    """A socket whose peer sends ``data`` in chunks of ``size`` bytes, then closes."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data = data
        self._size = size

    def recv(self, bufsize: int) -> bytes:
        sent, self._data = self._data[: min(bufsize, self._size)], self._data[min(bufsize, self._size) :]
        return sent


def _done(message_id: int) -> bytes:
    return _tlv(0x30, _tlv(0x02, bytes([message_id])) + _tlv(0x65, _tlv(0x0A, b"\x00") + _tlv(0x04, b"") + _tlv(0x04, b"")))


def _entry(message_id: int, dn: bytes, attributes: list[tuple[bytes, list[bytes]]]) -> bytes:
    body = b"".join(
        _tlv(0x30, _tlv(0x04, name) + _tlv(0x31, b"".join(_tlv(0x04, v) for v in values)))
        for name, values in attributes
    )
    return _tlv(0x30, _tlv(0x02, bytes([message_id])) + _tlv(0x64, _tlv(0x04, dn) + _tlv(0x30, body)))


class TestTextEntryDecoder:
    @pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
    def test_a_search_answer_is_read_whatever_the_chunks(self, chunk: int) -> None:
        """Entries arrive decoded (a 100k-value group among them), ranged ones raw, then the
        result, however the socket splits the bytes."""
        members = [f"uid=user{i},ou=people,dc=ex".encode() for i in range(100 if chunk == 1 else 5000)]
        wire = b"".join([
            _entry(3, b"cn=Big,dc=ex", [(b"cn", [b"Big"]), (b"member", members)]),
            _entry(3, b"uid=ada,dc=ex", [(b"UID", [b"ada"]), (b"jpegPhoto", [b"\xff\xd8"])]),
            _entry(3, b"cn=ad,dc=ex", [(b"member;range=0-0", [b"cn=a"])]),
            _done(3),
        ])  # fmt: skip
        conn = Connection(Server("127.0.0.1"), client_strategy=SYNC)
        _install_raw_entry_decoder(conn)
        _install_raw_entry_decoder(conn, OPENLDAP.binary_attributes)  # replaces, never stacks
        conn.socket = _ChunkedSocket(wire, chunk)
        responses = conn.strategy._get_response(3, None)  # noqa: SLF001
        big, ada, ranged, done = responses[:4]
        assert tuple(m.decode() for m in members) == big["decoded_attributes"]["member"]
        assert {"uid": ("ada",), "jpegphoto": (b"\xff\xd8",)} == ada["decoded_attributes"]
        assert {"member;range=0-0": [b"cn=a"]} == ranged["raw_attributes"]
        assert ("searchResDone", 0) == (done["type"], done["result"])

    def test_a_closed_connection_ends_the_session(self) -> None:
        """The server closing the socket mid-answer is a terminated session, not a hang."""
        conn = Connection(Server("127.0.0.1"), client_strategy=SYNC)
        _install_raw_entry_decoder(conn, OPENLDAP.binary_attributes)
        conn.socket = _ChunkedSocket(_entry(3, b"cn=a", [(b"cn", [b"a"])])[:-2], 5)
        assert SESSION_TERMINATED_BY_SERVER == conn.strategy._get_response(3, None)  # noqa: SLF001
