"""RFC 4533 BER encoding/decoding and the refreshOnly collector of the LDAP source."""

from __future__ import annotations

import uuid

import pytest

from syncsvc.domain import LdapEntry
from syncsvc.errors import DirectoryError
from syncsvc.ldap.contentsync import (
    SYNC_DONE_OID,
    SYNC_REQUEST_OID,
    SYNC_STATE_OID,
    ContentSyncResult,
    RefreshCollector,
    SyncDone,
    SyncInfo,
    SyncState,
    SyncStateValue,
    decode_sync_done,
    decode_sync_info,
    decode_sync_state,
    encode_sync_done,
    encode_sync_info,
    encode_sync_request,
    encode_sync_state,
    sync_done_of,
    sync_request_control,
    sync_state_of,
)

U1, U2, U3 = (str(uuid.UUID(int=i)) for i in (1, 2, 3))
COOKIE = b"rid=000,csn=20240131120000.000000Z#000000#000#000000"


def _entry(anchor: str) -> LdapEntry:
    return LdapEntry(f"uid={anchor[-1]},dc=ex", anchor, {"uid": (anchor[-1],)})


class TestSyncRequest:
    def test_refresh_only_without_cookie(self) -> None:
        """No cookie: SEQUENCE { ENUMERATED 1 }, reloadHint left at its default."""
        assert bytes.fromhex("30030a0101") == encode_sync_request()

    def test_refresh_only_with_cookie(self) -> None:
        """A cookie follows the mode as an OCTET STRING."""
        assert bytes.fromhex("30080a01010403") + b"abc" == encode_sync_request(b"abc")

    def test_control_is_critical_raw_triple(self) -> None:
        """The control goes to ldap3 as (oid, True, ber)."""
        assert (SYNC_REQUEST_OID, True, encode_sync_request(COOKIE)) == sync_request_control(COOKIE)


class TestSyncState:
    @pytest.mark.parametrize("state", list(SyncState))
    def test_round_trip(self, state: SyncState) -> None:
        """Every state with a UUID and cookie survives encode/decode."""
        assert SyncStateValue(state, U1, COOKIE) == decode_sync_state(encode_sync_state(state, U1, COOKIE))

    def test_without_cookie(self) -> None:
        """The cookie is optional."""
        assert SyncStateValue(SyncState.ADD, U2, None) == decode_sync_state(encode_sync_state(SyncState.ADD, U2))

    def test_openldap_bytes(self) -> None:
        """A value as slapd sends it (state add, 16-byte UUID) decodes to the UUID string."""
        raw = bytes.fromhex("30150a010104") + b"\x10" + uuid.UUID(U3).bytes
        assert SyncStateValue(SyncState.ADD, U3, None) == decode_sync_state(raw)

    def test_bad_uuid_length_is_an_error(self) -> None:
        """An entryUUID that is not 16 bytes is a DirectoryError."""
        raw = bytes.fromhex("30080a01010403123456")  # state add, entryUUID of 3 bytes
        with pytest.raises(DirectoryError, match="16"):
            decode_sync_state(raw)

    def test_garbage_is_an_error(self) -> None:
        """Undecodable BER is a DirectoryError, not a pyasn1 exception."""
        with pytest.raises(DirectoryError, match="cannot decode"):
            decode_sync_state(b"\x04\x02ab")


class TestSyncDone:
    def test_round_trip(self) -> None:
        """Cookie and refreshDeletes TRUE survive encode/decode."""
        assert SyncDone(COOKIE, True) == decode_sync_done(encode_sync_done(COOKIE, True))

    def test_defaults(self) -> None:
        """An empty SEQUENCE means no cookie and refreshDeletes FALSE."""
        assert bytes.fromhex("3000") == encode_sync_done()
        assert SyncDone(None, False) == decode_sync_done(bytes.fromhex("3000"))

    def test_missing_value(self) -> None:
        """A Sync Done control without a value decodes to the defaults."""
        assert SyncDone() == decode_sync_done(None)

    def test_boolean_true_as_ff(self) -> None:
        """BER TRUE as 0xFF (what slapd writes) decodes as True."""
        assert SyncDone(b"c", True) == decode_sync_done(bytes.fromhex("3006040163" + "0101ff"))


class TestSyncInfo:
    @pytest.mark.parametrize(
        "info",
        [
            SyncInfo("newcookie", COOKIE),
            SyncInfo("refreshDelete", COOKIE, refresh_done=False),
            SyncInfo("refreshPresent", None, refresh_done=True),
            SyncInfo("syncIdSet", COOKIE, refresh_deletes=True, uuids=(U1, U2)),
            SyncInfo("syncIdSet", None, refresh_deletes=False, uuids=(U3,)),
        ],
        ids=["newcookie", "refreshDelete", "refreshPresent", "syncIdSet-deletes", "syncIdSet-present"],
    )
    def test_round_trip(self, info: SyncInfo) -> None:
        """Each CHOICE arm survives encode/decode with its tag."""
        assert info == decode_sync_info(encode_sync_info(info))

    def test_tags(self) -> None:
        """The arms carry context tags [0] primitive, [1] [2] [3] constructed."""
        assert 0x80 == encode_sync_info(SyncInfo("newcookie", b"x"))[0]
        assert 0xA1 == encode_sync_info(SyncInfo("refreshDelete"))[0]
        assert 0xA2 == encode_sync_info(SyncInfo("refreshPresent"))[0]
        assert 0xA3 == encode_sync_info(SyncInfo("syncIdSet", uuids=(U1,)))[0]

    def test_openldap_sync_id_set_bytes(self) -> None:
        """A syncIdSet as slapd sends it (refreshDeletes 0xFF, two UUIDs) decodes."""
        uuids = b"".join(b"\x04\x10" + uuid.UUID(u).bytes for u in (U1, U2))
        body = b"\x01\x01\xff" + b"\x31" + bytes([len(uuids)]) + uuids
        raw = b"\xa3" + bytes([len(body)]) + body
        assert SyncInfo("syncIdSet", None, refresh_deletes=True, uuids=(U1, U2)) == decode_sync_info(raw)


class TestControlsFromLdap3:
    def test_state_and_done_are_read_from_control_dicts(self) -> None:
        """The raw control bytes ldap3 leaves under the OID are decoded."""
        state = {SYNC_STATE_OID: {"value": encode_sync_state(SyncState.MODIFY, U1), "criticality": False}}
        done = {SYNC_DONE_OID: {"value": encode_sync_done(COOKIE), "criticality": False}}
        assert SyncStateValue(SyncState.MODIFY, U1) == sync_state_of(state)
        assert SyncDone(COOKIE) == sync_done_of(done)
        assert None is sync_state_of(None)
        assert None is sync_done_of({})


class TestRefreshCollector:
    def test_initial_refresh_returns_everything_and_cookie(self) -> None:
        """Without a cookie every entry arrives as add; the Sync Done cookie is kept."""
        collector = RefreshCollector()
        for anchor in (U1, U2):
            collector.entry(SyncStateValue(SyncState.ADD, anchor), _entry(anchor))
        collector.done(SyncDone(COOKIE, refresh_deletes=True))
        assert ContentSyncResult([_entry(U1), _entry(U2)], [], None, True, COOKIE) == collector.result()

    def test_delete_phase_collects_deleted_entries_and_id_sets(self) -> None:
        """Delete states and a syncIdSet with refreshDeletes TRUE both count as deleted."""
        collector = RefreshCollector()
        collector.entry(SyncStateValue(SyncState.ADD, U1), _entry(U1))
        collector.entry(SyncStateValue(SyncState.DELETE, U2), None)
        collector.info(SyncInfo("syncIdSet", None, refresh_deletes=True, uuids=(U3,)))
        collector.done(SyncDone(COOKIE, refresh_deletes=True))
        result = collector.result()
        assert ([_entry(U1)], [U2, U3], None) == (result.entries, result.deleted, result.present)

    def test_present_phase_lists_live_anchors(self) -> None:
        """refreshDeletes FALSE: present states, present id sets and full entries form `present`."""
        collector = RefreshCollector()
        collector.entry(SyncStateValue(SyncState.PRESENT, U1), None)
        collector.info(SyncInfo("syncIdSet", b"mid", refresh_deletes=False, uuids=(U2,)))
        collector.entry(SyncStateValue(SyncState.ADD, U3), _entry(U3))
        collector.done(SyncDone(None, refresh_deletes=False))
        result = collector.result()
        assert [_entry(U3)] == result.entries
        assert {U1, U2, U3} == set(result.present or [])
        assert (False, b"mid") == (result.refresh_deletes, result.cookie)

    def test_latest_cookie_wins(self) -> None:
        """Without a Sync Done cookie, the last cookie seen (newcookie, entry) is returned."""
        collector = RefreshCollector()
        collector.info(SyncInfo("newcookie", b"one"))
        collector.entry(SyncStateValue(SyncState.ADD, U1, b"two"), _entry(U1))
        collector.done(SyncDone())
        assert b"two" == collector.result().cookie

    def test_entry_deleted_after_add_is_only_deleted(self) -> None:
        """An anchor added then deleted in the same refresh ends up deleted, not upserted."""
        collector = RefreshCollector()
        collector.entry(SyncStateValue(SyncState.ADD, U1), _entry(U1))
        collector.info(SyncInfo("syncIdSet", None, refresh_deletes=True, uuids=(U1,)))
        collector.done(SyncDone(COOKIE, True))
        assert ([], [U1]) == (collector.result().entries, collector.result().deleted)


class TestSyncStateFastPath:
    @pytest.mark.parametrize("cookie", [None, b"", b"c" * 127, b"c" * 128, b"c" * 400])
    def test_hand_reader_and_pyasn1_agree(self, cookie: bytes | None) -> None:
        """Short cookies take the hand-written reader, long ones pyasn1: both decode the same value."""
        value = encode_sync_state(SyncState.DELETE, U2, cookie)
        assert SyncStateValue(SyncState.DELETE, U2, cookie) == decode_sync_state(value)
