"""RFC 4533 (LDAP Content Synchronization) refreshOnly: the BER the client sends and decodes.

ldap3 passes the pieces through untouched: the Sync Request control goes out as a raw
``(oid, criticality, value)`` triple, per-entry Sync State controls and the Sync Done control
come back as raw bytes under their OID, and the syncInfo intermediate response arrives as a
response of type ``intermediateResponse`` with ``responseName``/``responseValue``.
:class:`RefreshStream` turns that stream into pages of entries and a :class:`ContentSyncResult`.
"""

from __future__ import annotations

import enum
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, namedval, tag, univ

from syncsvc.domain import LdapEntry
from syncsvc.errors import DirectoryError

__all__ = [
    "SYNC_DONE_OID",
    "SYNC_INFO_OID",
    "SYNC_REQUEST_OID",
    "SYNC_STATE_OID",
    "ContentSyncResult",
    "RefreshCollector",
    "RefreshStream",
    "SyncDone",
    "SyncInfo",
    "SyncState",
    "SyncStateValue",
    "decode_sync_done",
    "decode_sync_info",
    "decode_sync_state",
    "encode_sync_done",
    "encode_sync_info",
    "encode_sync_request",
    "encode_sync_state",
    "sync_request_control",
]

SYNC_REQUEST_OID: Final = "1.3.6.1.4.1.4203.1.9.1.1"
SYNC_STATE_OID: Final = "1.3.6.1.4.1.4203.1.9.1.2"
SYNC_DONE_OID: Final = "1.3.6.1.4.1.4203.1.9.1.3"
SYNC_INFO_OID: Final = "1.3.6.1.4.1.4203.1.9.1.4"


# --- ASN.1 (RFC 4533 section 2) -------------------------------------------------------------


class _SyncRequestMode(univ.Enumerated):
    namedValues = namedval.NamedValues(("refreshOnly", 1), ("refreshAndPersist", 3))


class _SyncRequestValue(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("mode", _SyncRequestMode()),
        namedtype.OptionalNamedType("cookie", univ.OctetString()),
        namedtype.DefaultedNamedType("reloadHint", univ.Boolean(False)),
    )


class _SyncStateMode(univ.Enumerated):
    namedValues = namedval.NamedValues(("present", 0), ("add", 1), ("modify", 2), ("delete", 3))


class _SyncStateValue(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("state", _SyncStateMode()),
        namedtype.NamedType("entryUUID", univ.OctetString()),
        namedtype.OptionalNamedType("cookie", univ.OctetString()),
    )


class _SyncDoneValue(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.OptionalNamedType("cookie", univ.OctetString()),
        namedtype.DefaultedNamedType("refreshDeletes", univ.Boolean(False)),
    )


def _ctx(number: int, constructed: bool) -> tag.Tag:
    fmt = tag.tagFormatConstructed if constructed else tag.tagFormatSimple
    return tag.Tag(tag.tagClassContext, fmt, number)


class _RefreshPhase(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.OptionalNamedType("cookie", univ.OctetString()),
        namedtype.DefaultedNamedType("refreshDone", univ.Boolean(True)),
    )


class _SyncIdSet(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.OptionalNamedType("cookie", univ.OctetString()),
        namedtype.DefaultedNamedType("refreshDeletes", univ.Boolean(False)),
        namedtype.NamedType("syncUUIDs", univ.SetOf(componentType=univ.OctetString())),
    )


class _SyncInfoValue(univ.Choice):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("newcookie", univ.OctetString().subtype(implicitTag=_ctx(0, False))),
        namedtype.NamedType("refreshDelete", _RefreshPhase().subtype(implicitTag=_ctx(1, True))),
        namedtype.NamedType("refreshPresent", _RefreshPhase().subtype(implicitTag=_ctx(2, True))),
        namedtype.NamedType("syncIdSet", _SyncIdSet().subtype(implicitTag=_ctx(3, True))),
    )


# --- plain values ---------------------------------------------------------------------------


class SyncState(enum.IntEnum):
    """The state a Sync State control gives an entry."""

    PRESENT = 0
    ADD = 1
    MODIFY = 2
    DELETE = 3


@dataclass(frozen=True, slots=True)
class SyncStateValue:
    """A decoded Sync State control; ``entry_uuid`` is the UUID string."""

    state: SyncState
    entry_uuid: str
    cookie: bytes | None = None


@dataclass(frozen=True, slots=True)
class SyncInfo:
    """A decoded syncInfoMessage; ``kind`` names the CHOICE arm.

    ``newcookie`` carries only ``cookie``; ``refreshDelete``/``refreshPresent`` carry
    ``refresh_done``; ``syncIdSet`` carries ``refresh_deletes`` and ``uuids``.
    """

    kind: str
    cookie: bytes | None = None
    refresh_done: bool = True
    refresh_deletes: bool = False
    uuids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncDone:
    """A decoded Sync Done control."""

    cookie: bytes | None = None
    refresh_deletes: bool = False


@dataclass(frozen=True, slots=True)
class ContentSyncResult:
    """The outcome of one refreshOnly content sync.

    ``entries`` were added or changed since the cookie (all entries without a cookie); empty
    when the refresh was handed over page by page as it was read. ``deleted`` are anchors the
    server reported gone. ``present`` is ``None`` unless the server used a present phase: then
    it is the complete set of live anchors in scope, and anything the client holds outside it
    is gone. ``cookie`` is what to send next time.
    """

    entries: list[LdapEntry] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    present: list[str] | None = None
    refresh_deletes: bool = False
    cookie: bytes | None = None


# --- encode / decode ------------------------------------------------------------------------


def _uuid_text(raw: bytes) -> str:
    if len(raw) != 16:
        raise DirectoryError(f"content sync: entryUUID of {len(raw)} bytes, expected 16")
    return str(uuid.UUID(bytes=raw))


def _optional_bytes(component: Any) -> bytes | None:
    return bytes(component) if component.isValue else None


def _decode(value: bytes, spec: Any, what: str) -> Any:
    try:
        decoded, rest = decoder.decode(value, asn1Spec=spec)
    except PyAsn1Error as exc:
        raise DirectoryError(f"content sync: cannot decode {what}: {exc}") from exc
    if rest:
        raise DirectoryError(f"content sync: {len(rest)} trailing bytes after {what}")
    return decoded


def encode_sync_request(cookie: bytes | None = None, *, persist: bool = False) -> bytes:
    """BER of a syncRequestValue: refreshOnly (or refreshAndPersist), optional cookie, reloadHint FALSE."""
    value = _SyncRequestValue()
    value["mode"] = 3 if persist else 1
    if cookie:
        value["cookie"] = cookie
    return bytes(encoder.encode(value))


def sync_request_control(cookie: bytes | None = None) -> tuple[str, bool, bytes]:
    """The critical Sync Request control as the ``(oid, criticality, value)`` ldap3 sends raw."""
    return (SYNC_REQUEST_OID, True, encode_sync_request(cookie))


def _fast_sync_state(value: bytes) -> SyncStateValue | None:
    """The common encodings read by hand: pyasn1 costs ~0.3 ms per entry, too much at 100k.

    SEQUENCE { ENUMERATED (1 byte), OCTET STRING (16), [OCTET STRING cookie < 128 bytes] },
    all short-form lengths; anything else returns None and goes through pyasn1.
    """
    if len(value) < 23 or value[0] != 0x30 or value[1] != len(value) - 2:
        return None
    if value[2:4] != b"\x0a\x01" or value[4] > 3 or value[5:7] != b"\x04\x10":
        return None
    entry_uuid = str(uuid.UUID(bytes=bytes(value[7:23])))
    if len(value) == 23:
        return SyncStateValue(SyncState(value[4]), entry_uuid, None)
    if value[23] != 0x04 or value[24] >= 0x80 or 25 + value[24] != len(value):
        return None
    return SyncStateValue(SyncState(value[4]), entry_uuid, bytes(value[25:]))


def decode_sync_state(value: bytes) -> SyncStateValue:
    """Decode a Sync State control value (attached to each searchResultEntry)."""
    fast = _fast_sync_state(value)
    if fast is not None:
        return fast
    decoded = _decode(value, _SyncStateValue(), "Sync State control")
    return SyncStateValue(
        state=SyncState(int(decoded["state"])),
        entry_uuid=_uuid_text(bytes(decoded["entryUUID"])),
        cookie=_optional_bytes(decoded["cookie"]),
    )


def encode_sync_state(state: SyncState, entry_uuid: str, cookie: bytes | None = None) -> bytes:
    """What a server sends as a Sync State control value (for tests and fakes)."""
    value = _SyncStateValue()
    value["state"] = int(state)
    value["entryUUID"] = uuid.UUID(entry_uuid).bytes
    if cookie is not None:
        value["cookie"] = cookie
    return bytes(encoder.encode(value))


def decode_sync_done(value: bytes | None) -> SyncDone:
    """Decode a Sync Done control value (attached to searchResultDone)."""
    if not value:
        return SyncDone()
    decoded = _decode(value, _SyncDoneValue(), "Sync Done control")
    return SyncDone(
        cookie=_optional_bytes(decoded["cookie"]),
        refresh_deletes=bool(decoded["refreshDeletes"]),
    )


def encode_sync_done(cookie: bytes | None = None, refresh_deletes: bool = False) -> bytes:
    """What a server sends as a Sync Done control value (for tests and fakes)."""
    value = _SyncDoneValue()
    if cookie is not None:
        value["cookie"] = cookie
    if refresh_deletes:
        value["refreshDeletes"] = True
    return bytes(encoder.encode(value))


def decode_sync_info(value: bytes) -> SyncInfo:
    """Decode the value of a syncInfoMessage intermediate response."""
    decoded = _decode(value, _SyncInfoValue(), "syncInfo message")
    kind = decoded.getName()
    arm = decoded.getComponent()
    if kind == "newcookie":
        return SyncInfo(kind=kind, cookie=bytes(arm))
    if kind in ("refreshDelete", "refreshPresent"):
        return SyncInfo(
            kind=kind,
            cookie=_optional_bytes(arm["cookie"]),
            refresh_done=bool(arm["refreshDone"]),
        )
    return SyncInfo(
        kind=kind,
        cookie=_optional_bytes(arm["cookie"]),
        refresh_deletes=bool(arm["refreshDeletes"]),
        uuids=tuple(_uuid_text(bytes(u)) for u in arm["syncUUIDs"]),
    )


def encode_sync_info(info: SyncInfo) -> bytes:
    """What a server sends as a syncInfoMessage value (for tests and fakes)."""
    value = _SyncInfoValue()
    if info.kind == "newcookie":
        value["newcookie"] = info.cookie or b""
        return bytes(encoder.encode(value))
    arm = value.componentType.getTypeByPosition(value.componentType.getPositionByName(info.kind))
    component = arm.clone()
    if info.cookie is not None:
        component["cookie"] = info.cookie
    if info.kind == "syncIdSet":
        if info.refresh_deletes:
            component["refreshDeletes"] = True
        uuids = component["syncUUIDs"]
        for i, text in enumerate(info.uuids):
            uuids[i] = uuid.UUID(text).bytes
    elif not info.refresh_done:
        component["refreshDone"] = False
    value[info.kind] = component
    return bytes(encoder.encode(value))


# --- the refresh stream ---------------------------------------------------------------------


class RefreshStream:
    """Folds one refreshOnly response stream into pages of entries and a closing summary.

    Feed it each entry (with its Sync State control value), each syncInfo message, then the
    Sync Done control. Entries leave in pages of ``page_size`` while the refresh is still
    being read (:meth:`entry` returns a full page, :meth:`take_page` the rest); only anchors
    are kept for :meth:`result`, so a refresh of the whole directory never sits in memory.
    In a present phase (Sync Done with refreshDeletes FALSE), entries sent in full count as
    present too. An entry the server deletes later in the same refresh is taken out of the
    page still being filled, and reported in ``deleted`` (also when an earlier page held it).
    """

    def __init__(self, page_size: int) -> None:
        self._page_size = max(1, page_size)
        self._page: dict[str, LdapEntry] = {}
        self._changed: dict[str, None] = {}  # anchors sent in full and live so far
        self._deleted: dict[str, None] = {}
        self._present: dict[str, None] = {}
        self._cookie: bytes | None = None
        self._done: SyncDone | None = None
        self.sent = 0
        """Entries handed out in pages so far."""

    def _remember_cookie(self, cookie: bytes | None) -> None:
        if cookie:
            self._cookie = cookie

    def entry(self, state: SyncStateValue, entry: LdapEntry | None) -> list[LdapEntry] | None:
        """One searchResultEntry; ``entry`` is ``None`` for present/delete (DN-only) states.

        Returns a page when this entry filled one, else ``None``.
        """
        self._remember_cookie(state.cookie)
        anchor = entry.anchor if entry is not None else state.entry_uuid
        if state.state is SyncState.DELETE:
            self._page.pop(anchor, None)
            self._changed.pop(anchor, None)
            self._present.pop(anchor, None)
            self._deleted[anchor] = None
        elif state.state is SyncState.PRESENT:
            self._present[anchor] = None
        elif entry is not None:
            self._page[anchor] = entry
            self._changed[anchor] = None
            self._deleted.pop(anchor, None)
            if len(self._page) >= self._page_size:
                return self.take_page()
        return None

    def take_page(self) -> list[LdapEntry]:
        """The entries collected since the last page (possibly none)."""
        page = list(self._page.values())
        self._page = {}
        self.sent += len(page)
        return page

    def info(self, message: SyncInfo) -> None:
        """One syncInfo intermediate response."""
        self._remember_cookie(message.cookie)
        if message.kind != "syncIdSet":
            return
        target = self._deleted if message.refresh_deletes else self._present
        for anchor in message.uuids:
            target[anchor] = None
            if message.refresh_deletes:
                self._page.pop(anchor, None)
                self._changed.pop(anchor, None)

    def done(self, message: SyncDone) -> None:
        """The Sync Done control of the searchResultDone."""
        self._remember_cookie(message.cookie)
        self._done = message

    def result(self) -> ContentSyncResult:
        """The summary without entries (call after :meth:`done` and the last :meth:`take_page`)."""
        done = self._done or SyncDone()
        present: list[str] | None = None
        deleted = list(self._deleted)
        if not done.refresh_deletes:
            live = dict(self._present)
            live.update(self._changed)
            present = list(live)
            deleted = [anchor for anchor in deleted if anchor not in live]
        return ContentSyncResult(
            entries=[],
            deleted=deleted,
            present=present,
            refresh_deletes=done.refresh_deletes,
            cookie=self._cookie,
        )


class RefreshCollector(RefreshStream):
    """A :class:`RefreshStream` that keeps every entry: :meth:`result` holds them all.

    For small reads and tests; the sync reads a refresh page by page.
    """

    def __init__(self) -> None:
        super().__init__(page_size=sys.maxsize)

    def result(self) -> ContentSyncResult:
        """The collected outcome (call after :meth:`done`)."""
        return replace(super().result(), entries=list(self._page.values()))


def sync_state_of(controls: Mapping[str, Mapping[str, Any]] | None) -> SyncStateValue | None:
    """The Sync State control in an ldap3 response's ``controls`` dict, decoded, if any."""
    if not controls or SYNC_STATE_OID not in controls:
        return None
    return decode_sync_state(_control_bytes(controls[SYNC_STATE_OID]))


def sync_done_of(controls: Mapping[str, Mapping[str, Any]] | None) -> SyncDone | None:
    """The Sync Done control in an ldap3 result's ``controls`` dict, decoded, if any."""
    if not controls or SYNC_DONE_OID not in controls:
        return None
    return decode_sync_done(_control_bytes(controls[SYNC_DONE_OID]))


def _control_bytes(control: Mapping[str, Any]) -> bytes:
    value = control.get("value")
    return bytes(value) if value else b""


def uuids_of(values: Sequence[bytes]) -> list[str]:
    """16-byte UUIDs to strings."""
    return [_uuid_text(v) for v in values]
