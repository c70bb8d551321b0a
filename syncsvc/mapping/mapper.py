"""Map one LDAP entry to a SCIM user or group record: pure, deterministic, never raises.

A value a rule cannot convert, or a required target with no value, makes the whole entry a
:class:`~syncsvc.domain.Problem`: the run records it and goes on. Rules come sorted in resource
order, so equal entries give dicts with equal content *and* key order (the store hashes them).
"""

from __future__ import annotations

from typing import Any

from syncsvc.domain import GroupRecord, LdapEntry, Problem, UserRecord
from syncsvc.mapping.rules import CompiledMapping, Rule, Step
from syncsvc.mapping.targets import CORE_GROUP, CORE_USER, ENTERPRISE_USER, Slot
from syncsvc.mapping.transforms import TransformFailed

__all__ = ["map_group", "map_user"]

_TOP, _NAME, _MULTI, _ADDRESS = Slot.TOP, Slot.NAME, Slot.MULTI, Slot.ADDRESS
_ENTERPRISE, _MANAGER, _EXTERNAL_ID = Slot.ENTERPRISE, Slot.MANAGER, Slot.EXTERNAL_ID


def map_user(entry: LdapEntry, mapping: CompiledMapping) -> UserRecord | Problem:
    """The SCIM User body (core + enterprise extension) of ``entry``, or why there is none.

    ``externalId`` and the manager's DN go to the record, not the body: the store owns both.
    ``externalId`` is the anchor unless the mapping has an ``externalId`` rule.
    """
    attributes = entry.attributes
    resource: dict[str, Any] = {"schemas": None}  # placeholder: keeps "schemas" the first key
    external_id: str | None = entry.anchor
    manager_dn: str | None = None
    name: dict[str, Any] | None = None
    addresses: dict[str, dict[str, Any]] | None = None
    enterprise: dict[str, Any] | None = None
    step: Step
    try:
        for step in mapping.user_plan:
            probe, plain, extract, slot, key, type_, multi, primary, required, rule = step
            if probe is not None and not (values := attributes.get(probe)):
                value = None
            elif plain and (value := values[0]).__class__ is str:
                value = value or None  # the hot path: first text value, nothing to transform
            else:
                value = extract(attributes)
            if value is None:
                if required:
                    return _missing(entry, rule)
                if slot is _EXTERNAL_ID:
                    external_id = None
                continue
            if slot is _TOP:
                resource[key] = value
            elif slot is _MULTI:
                items = resource.setdefault(key, [])
                for n, item in enumerate(value if multi else (value,)):
                    if primary and n == 0:
                        items.append({"value": item, "type": type_, "primary": True})
                    else:
                        items.append({"value": item, "type": type_})
            elif slot is _NAME:
                if name is None:
                    name = resource["name"] = {}
                name[key] = value
            elif slot is _ADDRESS:
                if addresses is None:
                    addresses = {}
                    resource["addresses"] = []
                address = addresses.get(type_)
                if address is None:
                    address = addresses[type_] = {"type": type_}
                    resource["addresses"].append(address)
                address[key] = value
            elif slot is _ENTERPRISE:
                if enterprise is None:
                    enterprise = resource[ENTERPRISE_USER] = {}
                enterprise[key] = value
            elif slot is _MANAGER:
                manager_dn = value
            elif slot is _EXTERNAL_ID:
                external_id = value
    except TransformFailed as exc:
        return Problem(entry.dn, exc.reason())
    # The store turns manager_dn into the extension's manager.value, so it counts as a value.
    has_extension = enterprise is not None or manager_dn is not None
    resource["schemas"] = [CORE_USER, ENTERPRISE_USER] if has_extension else [CORE_USER]
    return UserRecord(
        anchor=entry.anchor,
        dn=entry.dn,
        user_name=resource["userName"],
        resource=resource,
        manager_dn=manager_dn,
        external_id=external_id,
    )


def map_group(entry: LdapEntry, mapping: CompiledMapping) -> GroupRecord | Problem:
    """The SCIM Group body of ``entry`` and its members, or why there is none.

    Members are not in the body: member DNs (and posixGroup memberUid names) go to the record,
    de-duplicated in directory order, for the store to resolve to SCIM ids.
    """
    resource: dict[str, Any] = {"schemas": [CORE_GROUP]}
    external_id: str | None = entry.anchor
    member_dns: tuple[str, ...] = ()
    member_user_names: tuple[str, ...] = ()
    for step in mapping.group_plan:
        _probe, _plain, extract, slot, key, _type, multi, _primary, required, rule = step
        try:
            value = extract(entry.attributes)
        except TransformFailed as exc:
            return Problem(entry.dn, exc.reason())
        if value is None:
            if required:
                return _missing(entry, rule)
            if slot is _EXTERNAL_ID:
                external_id = None
            continue
        if slot is _TOP:
            resource[key] = value
        elif slot is _EXTERNAL_ID:
            external_id = value
        elif slot is Slot.MEMBER_DNS:
            member_dns = _unique(value if multi else [value])
        elif slot is Slot.MEMBER_NAMES:
            member_user_names = _unique(value if multi else [value])
    return GroupRecord(
        anchor=entry.anchor,
        dn=entry.dn,
        display_name=resource["displayName"],
        resource=resource,
        member_dns=member_dns,
        member_user_names=member_user_names,
        external_id=external_id,
    )


def _missing(entry: LdapEntry, rule: Rule) -> Problem:
    return Problem(entry.dn, f"missing {rule.target.path} ({rule.describe_source()})")


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
