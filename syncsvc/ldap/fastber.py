"""A specialised BER reader for searchResultEntry messages, the bulk of every read.

ldap3's generic ``decode_sequence`` walks every TLV recursively into tuples and took ~60% of a
paged read's CPU (profiled on 10k users). An entry has a fixed shape (RFC 4511 section 4.5.2),
so it is read here with straight-line code into ``(message_id, dn, raw_attributes, controls)``.
Anything unexpected returns ``None`` and the caller falls back to ldap3's decoder.

:func:`read_entry` goes one step further for the paged search: it decodes the values as it
reads them (what :func:`~syncsvc.ldap.normalize.decode_attributes` does to the raw form), so
no list of raw values is built only to be decoded and dropped.
"""

from __future__ import annotations

from syncsvc.domain import AttrValue

__all__ = ["AttributeNames", "DecodedEntry", "SearchEntry", "parse_search_entry", "read_entry"]

SearchEntry = tuple[int, str, dict[str, list[bytes]], tuple[int, int] | None]
"""message id, DN, raw values by lower-cased attribute name, (start, stop) of the controls."""

DecodedEntry = tuple[int, str, dict[str, tuple[AttrValue, ...]], tuple[int, int] | None]
"""message id, DN, decoded values by attribute name (as ``decode_attributes`` gives them),
(start, stop) of the controls."""

AttributeNames = dict[bytes, tuple[str, bool]]
"""The caller's cache of attribute names as sent -> (key, binary?); :func:`read_entry` fills it."""

# A connection sees a few dozen attribute names; a bound keeps a hostile server from growing it.
_MAX_NAMES = 4096

_SEQUENCE = 0x30
_SET = 0x31
_INTEGER = 0x02
_OCTET_STRING = 0x04
_SEARCH_RESULT_ENTRY = 0x64  # [APPLICATION 4] constructed
_CONTROLS = 0xA0  # [0] constructed


def _length(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 4:  # indefinite length is not allowed in LDAP
        raise ValueError("unsupported BER length")
    return int.from_bytes(data[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def _header(data: bytes) -> tuple[int, str, int, int, int, int] | None:
    """Message id, DN, and the positions: attributes start and end, entry end, message end."""
    if data[0] != _SEQUENCE:
        return None
    size, pos = _length(data, 1)
    end = pos + size
    if end != len(data) or data[pos] != _INTEGER:
        return None
    size, pos = _length(data, pos + 1)
    message_id = int.from_bytes(data[pos : pos + size], "big")
    pos += size
    if data[pos] != _SEARCH_RESULT_ENTRY:
        return None
    size, pos = _length(data, pos + 1)
    entry_end = pos + size
    if data[pos] != _OCTET_STRING:
        return None
    size, pos = _length(data, pos + 1)
    dn = data[pos : pos + size].decode("utf-8")
    pos += size
    if data[pos] != _SEQUENCE:
        return None
    size, pos = _length(data, pos + 1)
    return message_id, dn, pos, pos + size, entry_end, end


def _controls(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """The (start, stop) of the controls after the entry, or None without any.

    Raises:
        ValueError: something else follows the entry.
    """
    if pos == end:
        return None
    if data[pos] != _CONTROLS:
        raise ValueError("not a controls element")
    size, pos = _length(data, pos + 1)
    if pos + size != end:
        raise ValueError("controls do not end the message")
    return (pos, end)


def parse_search_entry(data: bytes) -> SearchEntry | None:
    """Read one LDAPMessage holding a searchResultEntry, or ``None`` for anything else."""
    try:
        header = _header(data)
        if header is None:
            return None
        message_id, dn, pos, attributes_end, entry_end, end = header
        raw: dict[str, list[bytes]] = {}
        while pos < attributes_end:
            if data[pos] != _SEQUENCE:
                return None
            size, pos = _length(data, pos + 1)
            if data[pos] != _OCTET_STRING:
                return None
            size, pos = _length(data, pos + 1)
            name = data[pos : pos + size].decode("utf-8").lower()
            pos += size
            if data[pos] != _SET:
                return None
            size, pos = _length(data, pos + 1)
            values_end = pos + size
            values = raw.setdefault(name, [])
            while pos < values_end:
                if data[pos] != _OCTET_STRING:
                    return None
                size = data[pos + 1]
                if size < 0x80:  # short form, inlined: most values are short
                    pos += 2
                else:
                    size, pos = _length(data, pos + 1)
                values.append(data[pos : pos + size])
                pos += size
        if pos != entry_end or attributes_end != entry_end:
            return None
        return message_id, dn, raw, _controls(data, pos, end)
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


def read_entry(data: bytes, binary: frozenset[str], names: AttributeNames) -> DecodedEntry | None:
    """Read and decode one searchResultEntry, or ``None`` for anything else.

    The attributes equal ``decode_attributes(parse_search_entry(data)[2], binary)``: names
    lower-cased without ``;binary``, text values decoded from UTF-8, binary ones (and non-UTF-8
    text) kept as bytes, attributes without values left out. An entry carrying AD range
    retrieval (``member;range=0-1499``) is ``None`` too: its chunks are merged in raw form.
    ``names`` caches each attribute name as sent: per connection, so each is read once.
    """
    try:
        header = _header(data)
        if header is None:
            return None
        message_id, dn, pos, attributes_end, entry_end, end = header
        out: dict[str, tuple[AttrValue, ...]] = {}
        # Straight-line and short-form first: this loop runs for every value of a full read.
        while pos < attributes_end:
            if data[pos] != 0x30:  # SEQUENCE: one attribute
                return None
            size = data[pos + 1]
            pos += 2 if size < 0x80 else 2 + (size & 0x7F)
            if data[pos] != 0x04:  # OCTET STRING: its name
                return None
            size = data[pos + 1]
            if size < 0x80:
                pos += 2
            else:
                size, pos = _length(data, pos + 1)
            sent = data[pos : pos + size]
            pos += size
            known = names.get(sent)
            if known is None:
                name = sent.decode("utf-8").lower()
                if ";range=" in name:
                    return None
                key = name.removesuffix(";binary")
                known = (key, key.partition(";")[0] in binary)
                if len(names) < _MAX_NAMES:
                    names[sent] = known
            key, is_binary = known
            if data[pos] != 0x31:  # SET of values
                return None
            size = data[pos + 1]
            if size < 0x80:
                pos += 2
            else:
                size, pos = _length(data, pos + 1)
            values_end = pos + size
            first = data[pos + 1] if pos < values_end else 0x80
            if first < 0x80 and first == size - 2 and data[pos] == 0x04:  # one short value: the common case
                raw = data[pos + 2 : values_end]
                pos = values_end
                if is_binary:
                    decoded: tuple[AttrValue, ...] = (raw,)
                else:
                    try:
                        decoded = (raw.decode("utf-8"),)
                    except UnicodeDecodeError:
                        decoded = (raw,)
            else:
                values: list[bytes] = []
                while pos < values_end:
                    if data[pos] != 0x04:
                        return None
                    size = data[pos + 1]
                    if size < 0x80:
                        pos += 2
                    else:
                        size, pos = _length(data, pos + 1)
                    values.append(data[pos : pos + size])
                    pos += size
                if not values:
                    continue
                if is_binary:
                    decoded = tuple(values)
                else:
                    try:
                        decoded = tuple([v.decode("utf-8") for v in values])
                    except UnicodeDecodeError:
                        decoded = tuple([_text(v) for v in values])
            out[key] = out[key] + decoded if key in out else decoded
        if pos != entry_end or attributes_end != entry_end:
            return None
        return message_id, dn, out, _controls(data, pos, end)
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


def _text(value: bytes) -> AttrValue:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value
