"""Row values of mapped records: the content hash every earlier version stored must not move."""

from __future__ import annotations

import enum
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from syncsvc.domain import GroupRecord, UserRecord
from syncsvc.store.rows import content_hash, group_values, user_columns, user_values


def _stored_digest(*parts: Any) -> str:
    """The content hash as syncsvc has always defined it (and stored it in every row)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class _Color(enum.Enum):
    RED = "red"


class _Kind(enum.StrEnum):
    USER = "User"


_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "zoë.o'brien",
    "name": {"formatted": "Zoë \"Zo\" O'Brien", "givenName": "Zoë"},
    "emails": [{"value": "zoe@example.com", "type": "work", "primary": True}],
    "active": False,
    "x-count": 7,
}


class TestContentHash:
    @pytest.mark.parametrize(
        "parts",
        [
            ("uid=a,dc=ex", _USER, "uid=boss,dc=ex", None),
            ("cn=g,dc=ex", {"displayName": "G"}, {"dns": ["uid=a,dc=ex"] * 3, "uids": []}, "ext"),
            # escapes and characters JSON writers are known to differ on
            ("dn", {"z": "tab\there\nnew\x00nul\x1f\x7f del \u2028\u2029 \ufeff 😀 \\ \" /"}, None, None),
            ("dn", {"é": 1, "e": 2, "E": 3, "😀": 4, "\u00ff": 5, "": 6}, None, None),
            ("dn", {"big": 2**63 - 1, "neg": -(2**63), "u64": 2**64 - 1, "t": (1, [True, None])}, None, None),
        ],
    )
    def test_plain_values_hash_as_stored_before(self, parts: tuple[Any, ...]) -> None:
        """Text, integers, booleans, lists and dicts give the digest rows already carry."""
        assert _stored_digest(*parts) == content_hash(*parts)

    @pytest.mark.parametrize(
        "value",
        [1e-07, 0.1, float("nan"), 2**64, -(2**63) - 1, datetime(2024, 5, 1, tzinfo=UTC),
         _Color.RED, _Kind.USER, b"\x00\xff", {1: "int key"}, {_Kind.USER: "str-enum key"}],
    )
    def test_other_values_hash_as_stored_before(self, value: Any) -> None:
        """Floats, big integers, enums, datetimes, bytes and odd keys keep their digest too."""
        parts = ("dn", {"value": value, "list": [value]}, None, None)
        assert _stored_digest(*parts) == content_hash(*parts)

    def test_deep_nesting_keeps_its_digest(self) -> None:
        """A body nested deeper than a fast encoder goes still hashes as before."""
        body: Any = "leaf"
        for _ in range(300):
            body = {"n": [body]}
        assert _stored_digest("dn", body) == content_hash("dn", body)


class TestRowValues:
    def test_user_values_hash_and_columns(self) -> None:
        """A user row carries the stored digest of DN, body, manager and externalId."""
        record = UserRecord(anchor="a-1", dn="UID=Zoe,DC=Ex", user_name=_USER["userName"],
                            resource=_USER, manager_dn="uid=Boss, dc=ex")
        values = user_values(record)
        assert _stored_digest("UID=Zoe,DC=Ex", _USER, "uid=boss,dc=ex", None) == values["content_hash"]
        assert "uid=zoe,dc=ex" == values["dn_norm"]
        assert "uid=boss,dc=ex" == values["manager_dn_norm"]
        assert "zoe@example.com" == values["primary_email"]
        assert _USER == values["resource"]
        assert values["resource"] is not _USER  # the row owns its body
        assert {k: v for k, v in user_columns(_USER).items()} == {
            k: values[k] for k in user_columns(_USER)
        }

    def test_group_values_normalize_member_dns(self) -> None:
        """Member DNs are stored normalized, and hashed as such."""
        record = GroupRecord(anchor="g-1", dn="cn=G,dc=ex", display_name="G",
                             resource={"displayName": "G"},
                             member_dns=("UID=A, DC=Ex", "uid=b,dc=ex"), member_user_names=("Zed",))
        values = group_values(record)
        members = {"dns": ["uid=a,dc=ex", "uid=b,dc=ex"], "uids": ["zed"]}
        assert members == values["source_members"]
        assert _stored_digest("cn=G,dc=ex", {"displayName": "G"}, members, None) == values["content_hash"]
