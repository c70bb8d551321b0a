"""Resource ids: time-ordered version 7 UUIDs (RFC 9562)."""

from __future__ import annotations

import re
import uuid

from syncsvc.store.ids import new_id, uuid7

# 2026-11-27T18:00:00.000Z in milliseconds, and two instants within that millisecond.
MILLIS = 1_795_802_400_000
NS = MILLIS * 1_000_000


class TestUuid7:
    def test_fields_follow_rfc_9562(self) -> None:
        """Version 7, the RFC variant, and the Unix milliseconds in the first 48 bits."""
        value = uuid7(NS + 500_000)
        assert 7 == value.version
        assert uuid.RFC_4122 == value.variant
        assert MILLIS == value.int >> 80

    def test_ids_made_later_sort_after(self) -> None:
        """Within one millisecond and across milliseconds, a later id sorts after, as text too:
        a bulk load appends at the end of the id indexes."""
        instants = [NS, NS + 300_000, NS + 900_000, NS + 1_000_000, NS + 86_400_000_000_000]
        ids = [str(uuid7(ns)) for ns in instants]
        assert sorted(ids) == ids
        assert len(set(ids)) == len(ids)

    def test_same_instant_gives_distinct_ids(self) -> None:
        """62 random bits: ids minted at the same instant still differ."""
        assert 1000 == len({uuid7(NS) for _ in range(1000)})


class TestNewId:
    def test_stored_form(self) -> None:
        """36 characters, lower-case and hyphenated, as the id columns and SCIM filters expect."""
        value = new_id()
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                            value)
        assert value == str(uuid.UUID(value))
