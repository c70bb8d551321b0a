"""Rows -> SCIM resources (RFC 7643 §3.1 common attributes, meta, ETags) and back.

The store keeps a resource's body in ``resource`` (what the directory or a client said), the
profile extension in ``profile``, the manager as ``manager_id`` and members in their own
table; this module puts a resource together from those and takes a written one apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncsvc.enrich.completeness import completeness
from syncsvc.scim.schema import CORE_GROUP, CORE_USER, ENTERPRISE_USER, PROFILE_USER

__all__ = [
    "LIST_RESPONSE",
    "etag_matches",
    "GroupParts",
    "UserParts",
    "etag",
    "group_parts",
    "group_resource",
    "iso",
    "user_parts",
    "user_resource",
]

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
# Attributes the server owns and never stores in the body (RFC 7643 §3.1); syncsvc keeps no
# passwords (it is not an authentication service), so a sent password is dropped too.
_SERVER_OWNED = ("id", "meta", "groups", "schemas", "externalId", "password")


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC; SQLite hands timestamps back without a zone, and they are UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def etag(version: int) -> str:
    """A weak ETag from the row's version, which moves only on a real change (RFC 7644 §3.14)."""
    return f'W/"{version}"'


def etag_matches(header: str | None, current: str) -> bool:
    """``If-Match`` / ``If-None-Match`` against ``current``: weak comparison (RFC 7232 §2.3.2),
    W/"3" and "3" name the same version; ``*`` matches any."""
    if header is None:
        return False
    tags = [t.strip() for t in header.split(",")]
    bare = current.removeprefix("W/")
    return "*" in tags or any(t.removeprefix("W/") == bare for t in tags)


def _meta(kind: str, row: Any, base_url: str, endpoint: str) -> dict[str, str]:
    return {
        "resourceType": kind,
        "created": iso(row.created),
        "lastModified": iso(row.last_modified),
        "location": f"{base_url}/{endpoint}/{row.id}",
        "version": etag(row.version),
    }


def _with_thumbnail(row: Any, base_url: str) -> dict[str, Any] | None:
    """The stored profile, plus ``photo.thumbnail`` (readOnly) when the sync stored one.

    The URL is the profile route of the service, next to (not under) the SCIM base. A photo
    URL the user set stays ``photo.url``, and the outputs prefer it.
    """
    profile = row.profile
    if not getattr(row, "photo_hash", None):  # narrowed rows (counts) have no such column
        return profile
    root = base_url.removesuffix("/scim/v2")
    photo = {**((profile or {}).get("photo") or {}), "thumbnail": f"{root}/profiles/{row.id}/photo"}
    return {**(profile or {}), "photo": photo}


def user_resource(
    row: Any,
    *,
    base_url: str,
    groups: Sequence[Any] | None,
    manager_name: str | None,
) -> dict[str, Any]:
    """The full User; ``groups=None`` leaves ``groups`` out (not requested, not loaded)."""
    body = {k: v for k, v in row.resource.items() if k not in _SERVER_OWNED}
    out: dict[str, Any] = {"schemas": [CORE_USER], "id": row.id}
    if row.external_id is not None:
        out["externalId"] = row.external_id
    out.update(body)
    if row.manager_id is not None:
        enterprise = dict(out.get(ENTERPRISE_USER) or {})
        manager = {"value": row.manager_id, "$ref": f"{base_url}/Users/{row.manager_id}"}
        if manager_name is not None:
            manager["displayName"] = manager_name
        enterprise["manager"] = manager
        out[ENTERPRISE_USER] = enterprise
    elif ENTERPRISE_USER in out:
        # A directory manager DN that resolved to nobody: no dangling reference goes out.
        enterprise = {k: v for k, v in out[ENTERPRISE_USER].items() if k != "manager"}
        out[ENTERPRISE_USER] = enterprise
    if ENTERPRISE_USER in out and not out[ENTERPRISE_USER]:
        del out[ENTERPRISE_USER]
    profile = _with_thumbnail(row, base_url) or {}
    # readOnly, computed on every read so that it can never go stale (nothing stores it).
    out[PROFILE_USER] = {**profile, "completeness": completeness(
        row.resource, row.profile, manager_id=row.manager_id,
        primary_email=getattr(row, "primary_email", None), photo_hash=getattr(row, "photo_hash", None))}
    out["schemas"] = [CORE_USER, *(urn for urn in (ENTERPRISE_USER, PROFILE_USER) if urn in out)]
    if groups is not None:
        out["groups"] = [
            {"value": g.id, "$ref": f"{base_url}/Groups/{g.id}", "display": g.display_name,
             "type": "direct"}
            for g in groups
        ]
    out["meta"] = _meta("User", row, base_url, "Users")
    return out


def group_resource(row: Any, *, base_url: str, members: Sequence[Any] | None) -> dict[str, Any]:
    """The full Group; ``members=None`` leaves ``members`` out (not requested, not loaded)."""
    body = {k: v for k, v in row.resource.items() if k not in _SERVER_OWNED and k != "members"}
    out: dict[str, Any] = {"schemas": [CORE_GROUP], "id": row.id}
    if row.external_id is not None:
        out["externalId"] = row.external_id
    out.update(body)
    out["displayName"] = row.display_name
    if members is not None:
        out["members"] = [
            {"value": m.member_id, "$ref": f"{base_url}/{m.member_type}s/{m.member_id}",
             "type": m.member_type, **({"display": m.display} if m.display else {})}
            for m in members
        ]
    out["meta"] = _meta("Group", row, base_url, "Groups")
    return out


@dataclass(frozen=True, slots=True)
class UserParts:
    """A written User taken apart the way the store keeps it."""

    resource: dict[str, Any]
    external_id: str | None
    manager_id: str | None
    profile: dict[str, Any] | None


def user_parts(resource: Mapping[str, Any]) -> UserParts:
    body = {k: v for k, v in resource.items() if k not in _SERVER_OWNED and k != PROFILE_USER}
    manager_id = None
    if ENTERPRISE_USER in body:
        enterprise = dict(body[ENTERPRISE_USER])
        manager = enterprise.pop("manager", None)
        if isinstance(manager, Mapping):
            manager_id = manager.get("value") or None
        if enterprise:
            body[ENTERPRISE_USER] = enterprise
        else:
            del body[ENTERPRISE_USER]
    body["schemas"] = [CORE_USER, *([ENTERPRISE_USER] if ENTERPRISE_USER in body else [])]
    profile = resource.get(PROFILE_USER)
    return UserParts(
        resource=body,
        external_id=resource.get("externalId"),
        manager_id=manager_id,
        profile=dict(profile) if profile else None,
    )


@dataclass(frozen=True, slots=True)
class GroupParts:
    resource: dict[str, Any]
    external_id: str | None
    members: list[str] | None  # None: the body did not mention members


def group_parts(resource: Mapping[str, Any]) -> GroupParts:
    body = {k: v for k, v in resource.items() if k not in _SERVER_OWNED and k != "members"}
    body["schemas"] = [CORE_GROUP]
    members = None
    if "members" in resource:
        members = [str(m["value"]) for m in resource.get("members") or () if m.get("value")]
    return GroupParts(resource=body, external_id=resource.get("externalId"), members=members)
