"""Turn mapped records into row values: the content hash and the hot columns."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from syncsvc.domain import GroupRecord, UserRecord, normalize_dn

__all__ = ["content_hash", "emails_of", "group_values", "user_columns", "user_values"]


def content_hash(*parts: Any) -> str:
    """A stable digest of what the directory said: equal input, equal hash, nothing written.

    The digest is of ``json.dumps(parts, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False, default=str)`` in UTF-8, as stored by every earlier version: a new
    digest would rewrite (and push) every row once. orjson writes the same bytes for plain
    JSON values (``str``, 64-bit ``int``, ``bool``, ``None``, lists, tuples, dicts with ``str``
    keys) about ten times faster, so those take it; anything else (floats, whose exponents
    orjson writes differently, enums, datetimes, subclasses) takes ``json.dumps``.
    """
    try:
        plain = _plain(parts)
    except RecursionError:
        plain = False
    if plain:
        try:
            return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()
        except orjson.JSONEncodeError:  # e.g. nested deeper than orjson goes
            pass
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _plain(value: Any) -> bool:
    """Whether orjson writes ``value`` byte for byte as :func:`content_hash`'s json.dumps does."""
    cls = value.__class__
    if cls is str or value is None or cls is bool:
        return True
    if cls is int:
        return -(1 << 63) <= value < (1 << 64)  # type: ignore[no-any-return]
    if cls is dict:
        for key, item in value.items():
            if key.__class__ is not str:
                return False
            if item.__class__ is not str and not _plain(item):  # str inline: most values are
                return False
        return True
    if cls is list or cls is tuple:
        for item in value:
            if item.__class__ is not str and not _plain(item):
                return False
        return True
    return False


def emails_of(resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The e-mail rows of a user resource, in order, for the emails table."""
    rows = []
    for position, email in enumerate(resource.get("emails") or ()):
        value = str(email.get("value") or "")
        if value:
            rows.append(
                {
                    "position": position,
                    "value": value,
                    "value_lower": value.lower(),
                    "type": email.get("type"),
                    "primary": bool(email.get("primary", False)),
                }
            )
    return rows


def _primary_email(emails: Sequence[Mapping[str, Any]]) -> str | None:
    for email in emails:
        if email["primary"]:
            return str(email["value_lower"])
    return str(emails[0]["value_lower"]) if emails else None


def user_columns(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The hot columns every user row derives from its SCIM body, whatever its origin."""
    return _user_columns(resource, dict(resource))


def _user_columns(resource: Mapping[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    user_name = str(resource["userName"])
    return {
        "user_name": user_name,
        "user_name_lower": user_name.lower(),
        "display_name": resource.get("displayName"),
        "primary_email": _primary_email(emails_of(resource)),
        "active": bool(resource.get("active", True)),
        "resource": body,
    }


def user_values(record: UserRecord) -> dict[str, Any]:
    """Column values for a directory user (without id, version and timestamps)."""
    resource = dict(record.resource)
    manager = normalize_dn(record.manager_dn) if record.manager_dn else None
    return {
        "origin": "ldap",
        "anchor": record.anchor,
        "dn": record.dn,
        "dn_norm": normalize_dn(record.dn),
        "external_id": record.external_id if record.external_id is not None else record.anchor,
        "manager_dn_norm": manager,
        "content_hash": content_hash(record.dn, resource, manager, record.external_id),
        **_user_columns(resource, resource),  # resource is this row's own copy already
    }


def group_values(record: GroupRecord) -> dict[str, Any]:
    """Column values for a directory group (without id, version and timestamps)."""
    resource = dict(record.resource)
    members = {
        "dns": [normalize_dn(dn) for dn in record.member_dns],
        "uids": [uid.lower() for uid in record.member_user_names],
    }
    return {
        "origin": "ldap",
        "anchor": record.anchor,
        "dn": record.dn,
        "dn_norm": normalize_dn(record.dn),
        "display_name": record.display_name,
        "display_name_lower": record.display_name.lower(),
        "external_id": record.external_id if record.external_id is not None else record.anchor,
        "resource": resource,
        "source_members": members,
        "content_hash": content_hash(record.dn, resource, members, record.external_id),
    }
