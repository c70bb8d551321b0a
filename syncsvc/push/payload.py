"""Our stored resource -> the body one target gets. Pure: rows and id maps in, JSON out.

What goes out, and why:

- The resource as our SCIM API would serve it, without what the target owns or cannot use:
  no ``id`` (the target mints its own; ours is never sent as the remote id), no ``meta``, no
  ``groups`` (readOnly on Users, RFC 7643 §4.1.2: membership is pushed through the Groups), no
  ``$ref`` (they point at our server).
- ``externalId`` is **our SCIM id**. It is always there (local resources have no directory
  anchor), never changes (a rename or a move keeps it), is unique across users and groups, and
  lets a reconcile or a re-link after lost state find the remote copy of exactly this resource.
  Our own ``externalId`` (the directory anchor) is not sent.
- References are translated to the target's ids: group ``members`` and the enterprise
  ``manager``. A reference to something the target does not have yet (not pushed, or failed) is
  left out and reported in :attr:`Payload.deferred`, so the worker sends the body again once it
  exists; members out of the target's scope are left out for good.
- Per target: the profile extension only with ``profile_extension``; ``attributes`` (an
  allow-list of paths; ``userName``, ``displayName``, ``active``, ``externalId`` and group
  ``members`` always go: the target needs them to identify, deactivate and group), then
  ``drop``, then ``rename``. Paths are
  ``attr``, ``attr.sub`` or ``urn:...:attr[.sub]``, case-insensitive as SCIM names are.
- ``hash`` is over the canonical JSON of the body: the worker skips a resource whose body the
  target already got (``pushed_hash``), which makes a re-drain after a crash idempotent.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncsvc.scim.schema import CORE_GROUP, CORE_USER, ENTERPRISE_USER, PROFILE_USER
from syncsvc.scim.serialize import group_resource, user_resource
from syncsvc.settings import TargetSettings

__all__ = ["Payload", "body_hash", "group_payload", "user_payload"]

_ALWAYS = frozenset({"schemas", "externalid", "username", "displayname", "active", "members"})
_NEVER = ("id", "meta", "groups")


@dataclass(frozen=True, slots=True)
class Payload:
    """The body for the target, its hash, and our ids it could not reference yet."""

    body: dict[str, Any]
    hash: str
    deferred: tuple[str, ...] = field(default=())


def body_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def _key(obj: Mapping[str, Any], name: str) -> str | None:
    """The key of ``obj`` equal to ``name`` ignoring case (SCIM names are case-insensitive)."""
    if name in obj:
        return name
    lower = name.lower()
    return next((k for k in obj if k.lower() == lower), None)


def _split(path: str) -> tuple[str | None, list[str]]:
    """``urn:...:User:manager.value`` -> (urn, [manager, value]);
    ``name.givenName`` -> (None, [name, givenName])."""
    if path.lower().startswith("urn:"):
        urn, _, attr = path.rpartition(":")
        return urn, attr.split(".") if attr else []
    return None, path.split(".")


def _container(body: dict[str, Any], urn: str | None, *, create: bool) -> dict[str, Any] | None:
    if urn is None:
        return body
    key = _key(body, urn)
    if key is None:
        if not create:
            return None
        body[urn] = {}
        key = urn
    value = body[key]
    return value if isinstance(value, dict) else None


def _pop(body: dict[str, Any], path: str) -> tuple[bool, Any]:
    """Remove the value at ``path``; (found, value)."""
    urn, parts = _split(path)
    if not parts:  # a whole extension
        key = _key(body, path)
        return (True, body.pop(key)) if key else (False, None)
    node = _container(body, urn, create=False)
    for part in parts[:-1]:
        if node is None:
            return False, None
        key = _key(node, part)
        child = node.get(key) if key else None
        node = child if isinstance(child, dict) else None
    if node is None:
        return False, None
    key = _key(node, parts[-1])
    return (True, node.pop(key)) if key else (False, None)


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    urn, parts = _split(path)
    if not parts:
        body[path] = value
        return
    node = _container(body, urn, create=True)
    assert node is not None
    for part in parts[:-1]:
        key = _key(node, part) or part
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[_key(node, parts[-1]) or parts[-1]] = value


def _allow(body: dict[str, Any], allowed: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in body.items() if k.lower() in _ALWAYS}
    for path in allowed:
        found, value = _pop(copy.deepcopy(body), path)
        if found:
            _put(out, path, value)
    return out


def _shape(body: dict[str, Any], target: TargetSettings, core: str) -> dict[str, Any]:
    """Allow-list, drop, rename; then drop empty extensions and set ``schemas`` to match."""
    if target.attributes:
        body = _allow(body, target.attributes)
    for path in target.drop:
        _pop(body, path)
    for ours, theirs in target.rename.items():
        found, value = _pop(body, ours)
        if found:
            _put(body, theirs, value)
    for key in [k for k in body if k.lower().startswith("urn:")]:
        if not body[key]:
            del body[key]
    body["schemas"] = [core, *sorted(k for k in body if k.lower().startswith("urn:"))]
    return body


def _without_refs(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_refs(v) for k, v in value.items() if k != "$ref"}
    if isinstance(value, list):
        return [_without_refs(v) for v in value]
    return value


def user_payload(row: Any, target: TargetSettings, remote_users: Mapping[str, str]) -> Payload:
    """The body of one user (a ``scim_user`` row) for ``target``.

    ``remote_users`` maps our user ids to the target's, for the manager reference.
    """
    full = user_resource(row, base_url="", groups=None, manager_name=None)
    body: dict[str, Any] = {k: _without_refs(v) for k, v in full.items()
                            if k not in _NEVER and k != "externalId"}
    body["externalId"] = row.id
    if not target.profile_extension:
        body.pop(PROFILE_USER, None)
    deferred: list[str] = []
    enterprise = body.get(ENTERPRISE_USER)
    if isinstance(enterprise, dict) and isinstance(enterprise.get("manager"), dict):
        ours = str(enterprise["manager"].get("value") or "")
        remote = remote_users.get(ours)
        if remote:
            enterprise["manager"] = {"value": remote}
        else:
            del enterprise["manager"]
            if ours:
                deferred.append(ours)
    body = _shape(body, target, CORE_USER)
    return Payload(body=body, hash=body_hash(body), deferred=tuple(deferred))


def group_payload(
    row: Any,
    members: Sequence[Any],
    target: TargetSettings,
    remote: Mapping[tuple[str, str], str],
    in_scope: Mapping[str, bool],
) -> Payload:
    """The body of one group for ``target``, members translated to the target's ids.

    ``members`` are rows with ``member_id`` and ``member_type``; ``remote`` maps (kind, our id)
    to the target's id; ``in_scope`` says for each member id whether it goes to this target at
    all (a member out of scope is left out, even if it was pushed before and deactivated
    since; one in scope without a remote id is deferred).
    """
    full = group_resource(row, base_url="", members=None)
    body: dict[str, Any] = {k: _without_refs(v) for k, v in full.items()
                            if k not in _NEVER and k != "externalId"}
    body["externalId"] = row.id
    deferred: list[str] = []
    values: list[str] = []
    for member in members:
        if not in_scope.get(member.member_id, False):
            continue
        theirs = remote.get((member.member_type, member.member_id))
        if theirs:
            values.append(theirs)
        else:
            deferred.append(member.member_id)
    body["members"] = [{"value": v} for v in sorted(set(values))]
    body = _shape(body, target, CORE_GROUP)
    return Payload(body=body, hash=body_hash(body), deferred=tuple(deferred))
