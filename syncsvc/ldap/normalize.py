"""Raw directory data -> :class:`~syncsvc.domain.LdapEntry`.

ldap3 is asked for raw attribute values (``bytes``); decoding here is cheaper than ldap3's
schema-driven formatting and keeps binary values intact. Also: the anchor (entryUUID text,
objectGUID little-endian bytes) and AD range retrieval (``member;range=0-1499``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from syncsvc.domain import AttrValue, LdapEntry
from syncsvc.errors import DirectoryError
from syncsvc.ldap.flavors import BINARY_ATTRIBUTES

__all__ = [
    "RangedValues",
    "anchor_value",
    "complete_ranges",
    "decode_attributes",
    "has_ranges",
    "next_range_request",
    "parse_range_option",
    "to_entry",
]

_RANGE = re.compile(r"^(?P<attr>[^;]+)(?P<opts>(?:;[^;]+)*?);range=(?P<start>\d+)-(?P<end>\d+|\*)$", re.I)


def _decode_value(value: bytes, binary: bool) -> AttrValue:
    if binary:
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


def decode_attributes(
    raw: Mapping[str, Sequence[bytes]],
    binary_attributes: frozenset[str] = BINARY_ATTRIBUTES,
) -> dict[str, tuple[AttrValue, ...]]:
    """Lower-case names; text values decoded from UTF-8, binary ones (and non-UTF-8) left as bytes.

    The ``;binary`` transfer option is dropped from names (``usercertificate;binary`` ->
    ``usercertificate``); other options, such as language tags, stay part of the name.
    Attributes with no values are left out.
    """
    out: dict[str, tuple[AttrValue, ...]] = {}
    for name, values in raw.items():
        if not values:
            continue
        key = name.lower()
        if key.endswith(";binary"):
            key = key[: -len(";binary")]
        decoded: tuple[AttrValue, ...]
        if key.partition(";")[0] in binary_attributes:
            decoded = tuple([bytes(v) for v in values])
        else:
            try:  # the common case: every value is UTF-8 text
                decoded = tuple([v.decode("utf-8") for v in values])
            except UnicodeDecodeError:
                decoded = tuple([_decode_value(bytes(v), binary=False) for v in values])
        out[key] = out[key] + decoded if key in out else decoded
    return out


def anchor_value(attribute: str, values: Sequence[AttrValue]) -> str | None:
    """The anchor string from the anchor attribute's values, or ``None`` when there is none.

    objectGUID (16 bytes, little-endian GUID layout) renders as ``str(UUID(bytes_le=...))``;
    text anchors (entryUUID, nsUniqueId, ipaUniqueID) are stripped and lower-cased.
    """
    if not values:
        return None
    value = values[0]
    if isinstance(value, bytes):
        if attribute.lower() == "objectguid" and len(value) == 16:
            return str(uuid.UUID(bytes_le=value))
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return value.hex()
    text = value.strip().lower()
    return text or None


def to_entry(
    dn: str,
    attributes: Mapping[str, tuple[AttrValue, ...]],
    anchor_attribute: str,
) -> LdapEntry | None:
    """An :class:`LdapEntry`, or ``None`` when the entry carries no anchor value."""
    anchor = anchor_value(anchor_attribute, attributes.get(anchor_attribute.lower(), ()))
    if anchor is None:
        return None
    return LdapEntry(dn=dn, anchor=anchor, attributes=attributes)


@dataclass(frozen=True, slots=True)
class RangedValues:
    """One ``attr;range=start-end`` chunk; ``end`` is ``None`` for the last chunk (``*``)."""

    attribute: str
    start: int
    end: int | None


def parse_range_option(name: str) -> RangedValues | None:
    """``member;range=0-1499`` -> ``RangedValues("member", 0, 1499)``; ``None`` if not ranged."""
    match = _RANGE.match(name)
    if match is None:
        return None
    end = match["end"]
    return RangedValues(
        attribute=(match["attr"] + match["opts"]).lower(),
        start=int(match["start"]),
        end=None if end == "*" else int(end),
    )


def next_range_request(chunk: RangedValues) -> str:
    """The attribute description that asks for the chunk after ``chunk`` (``member;range=1500-*``)."""
    if chunk.end is None:
        raise ValueError(f"{chunk.attribute}: the last range has no successor")
    return f"{chunk.attribute};range={chunk.end + 1}-*"


RangeFetch = Callable[[str, str], Mapping[str, Sequence[bytes]]]
"""``fetch(dn, "member;range=1500-*")`` -> the raw attributes of a base-scope read of ``dn``."""


def complete_ranges(
    dn: str,
    raw: Mapping[str, Sequence[bytes]],
    fetch: RangeFetch,
) -> dict[str, list[bytes]]:
    """Merge AD range-retrieval chunks into plain attributes, fetching the missing chunks.

    ``raw`` holds e.g. ``member: []`` and ``member;range=0-1499: [...]``; the result holds
    ``member`` with every value. Each further chunk is read with ``fetch`` until the server
    answers with an end of ``*``.

    Raises:
        DirectoryError: the server stopped answering a range before its end (a short read).
    """
    merged: dict[str, list[bytes]] = {}
    pending: list[RangedValues] = []
    for name, values in raw.items():
        chunk = parse_range_option(name)
        if chunk is None:
            merged.setdefault(name.lower(), []).extend(values)
            continue
        pending.append(chunk)
        merged.setdefault(chunk.attribute, []).extend(values)
    for chunk in pending:
        current = chunk
        while current.end is not None:
            request = next_range_request(current)
            answer = fetch(dn, request)
            follow = _find_chunk(answer, current.attribute)
            if follow is None:
                raise DirectoryError(
                    f"range retrieval of {current.attribute} on {dn} stopped at {current.end}"
                )
            name, nxt = follow
            if nxt.start != current.end + 1:
                raise DirectoryError(
                    f"range retrieval of {current.attribute} on {dn}: expected start "
                    f"{current.end + 1}, got {nxt.start}"
                )
            merged[current.attribute].extend(answer[name])
            current = nxt
    return merged


def _find_chunk(raw: Mapping[str, Sequence[bytes]], attribute: str) -> tuple[str, RangedValues] | None:
    for name in raw:
        chunk = parse_range_option(name)
        if chunk is not None and chunk.attribute == attribute.lower():
            return name, chunk
    return None


def has_ranges(names: Iterable[str]) -> bool:
    """Whether any attribute name carries a ``;range=`` option."""
    return any(";range=" in name.lower() for name in names)
