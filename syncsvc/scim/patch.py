"""RFC 7644 §3.5.2 PATCH, as pure functions over resource dicts.

:func:`parse_patch` checks the PatchOp message; :func:`apply_patch` applies its operations to
a deep copy of a resource, all or nothing (§3.5.2: "each PATCH operation … SHALL be atomic"
for the request as a whole); :func:`changed_paths` tells the HTTP layer which top-level
attributes (and extension URNs) a patch changed.

Choices beyond the RFC's letter, each for a client seen in the wild:

- ``op`` is matched in any case (Entra ID sends ``"Replace"``, ``"Add"``, ``"Remove"``).
- Without a path, the keys of ``value`` may be plain names, ``name.givenName``, URN-qualified
  names, extension URNs holding an object, or value-filter paths (``emails[type eq "work"]
  .value``): Entra ID sends all of these. A ``schemas`` key there (or inside an extension
  object, as scim2-models sends it) is ignored.
- ``add`` **and** ``replace`` on a value-filter path that matches nothing create the element
  the filter describes (``emails[type eq "work"].value`` -> ``{"type": "work", "value": …}``)
  when the filter is a conjunction of ``eq`` terms. The RFC asks for ``noTarget`` on such a
  replace (§3.5.2.3), but Entra ID documents exactly this request for a user that has no
  work email yet, so refusing it would break every such user. Other filters -> NoTarget.
- On a value-filter path with no sub-attribute, matched elements are merged with the given
  sub-attributes (as §3.5.2.3 says for complex attributes), not replaced wholesale.
- ``remove`` of a multi-valued attribute with a ``value`` array removes only the elements
  listed (Entra ID: ``{"op": "Remove", "path": "members", "value": [{"value": "id"}]}``).
- Naming a readOnly attribute (id, meta, groups, manager.displayName, the profile's
  completeness) as a target raises Mutability unless the value given equals the current one
  (§3.5.2.1: "If the target location already contains the value specified, no changes
  SHOULD be made"); readOnly sub-attributes *inside* a value (Okta's ``members[].display``)
  are dropped, as RFC 7644 §3.3 and §3.5.1 say for readOnly values.
- ``null`` means unassigned (RFC 7643 §2.5): ``replace`` with null removes the target.

Values are checked and coerced by :func:`syncsvc.scim.validate.coerce_value` (``"True"`` ->
True, ``manager: "id"`` -> ``{"value": "id"}``, one object for a multi-valued attribute -> a
list), so PATCH accepts exactly what POST and PUT accept.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from syncsvc.errors import InvalidSyntax, InvalidValue, Mutability, NoTarget, ScimError
from syncsvc.scim._filterparse import Filter
from syncsvc.scim._patch_path import PatchPath, equality_constraints, lookup, matches, parse_path
from syncsvc.scim.schema import Attribute, ResourceSchema, SchemaRegistry, load_schemas
from syncsvc.scim.validate import coerce_value

__all__ = [
    "PATCH_OP",
    "MemberDelta",
    "PatchOp",
    "apply_patch",
    "changed_paths",
    "member_delta",
    "parse_patch",
    "touches_members",
]

PATCH_OP: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OpName = Literal["add", "remove", "replace"]
_OPS: Final[tuple[OpName, ...]] = ("add", "remove", "replace")


@dataclass(frozen=True, slots=True)
class PatchOp:
    """One PATCH operation (RFC 7644 §3.5.2): ``op`` lower-cased, ``path`` None when absent."""

    op: OpName
    path: str | None = None
    value: Any = None


def parse_patch(body: Mapping[str, Any]) -> tuple[PatchOp, ...]:
    """The operations of a PatchOp message (RFC 7644 §3.5.2).

    ``schemas`` must list the PatchOp URN and ``Operations`` must be an array of objects, else
    InvalidSyntax ("the request body message structure was invalid", §3.12); an empty array
    is InvalidValue. add and replace need a ``value`` (§3.5.2.1, §3.5.2.3), and add a non-null
    one. Member names are case-insensitive (RFC 7643 §2.1); an empty path counts as none.
    """
    if not isinstance(body, Mapping):
        raise InvalidSyntax("a PATCH body must be a JSON object")
    schemas = lookup(body, "schemas")
    if not isinstance(schemas, list) or PATCH_OP.lower() not in {
        s.lower() for s in schemas if isinstance(s, str)
    }:
        raise InvalidSyntax(f"'schemas' must contain {PATCH_OP} (RFC 7644 §3.5.2)")
    operations = lookup(body, "Operations")
    if not isinstance(operations, list):
        raise InvalidSyntax("'Operations' must be an array of PATCH operations (RFC 7644 §3.5.2)")
    if not operations:
        raise InvalidValue("Operations must not be empty")
    return tuple(_parse_op(index, raw) for index, raw in enumerate(operations, start=1))


def _parse_op(index: int, raw: Any) -> PatchOp:
    where = f"operation {index}"
    if not isinstance(raw, Mapping):
        raise InvalidSyntax(f"{where}: must be an object with 'op', 'path' and 'value'")
    name = lookup(raw, "op")
    op = name.strip().lower() if isinstance(name, str) else None
    if op not in _OPS:
        raise InvalidSyntax(f"{where}: 'op' must be add, remove or replace; got {name!r}")
    path = lookup(raw, "path")
    if path is not None and not isinstance(path, str):
        raise InvalidSyntax(f"{where}: 'path' must be a string")
    if path is not None:
        path = path.strip() or None
    has_value = any(isinstance(k, str) and k.lower() == "value" for k in raw)
    value = lookup(raw, "value")
    if op != "remove" and not has_value:
        raise InvalidValue(f"{where}: {op} needs a 'value' (RFC 7644 §3.5.2)")
    if op == "add" and value is None:
        raise InvalidValue(f"{where}: add needs a non-null 'value' (RFC 7644 §3.5.2.1)")
    return PatchOp(op, path, value)


def apply_patch(
    resource: Mapping[str, Any],
    ops: Sequence[PatchOp],
    resource_type: str,
    *,
    registry: SchemaRegistry | None = None,
) -> dict[str, Any]:
    """Apply ``ops`` in order to a deep copy of ``resource``; the input is never mutated.

    Any failing operation raises its ScimError (detail prefixed with the operation's number)
    and nothing is applied (RFC 7644 §3.5.2). Attribute names are written back in their
    schema's canonical case; extensions live under their URN key, emptied ones are dropped
    and ``schemas`` (when present) lists the core URN's extensions that remain.
    """
    registry = registry or load_schemas()
    schema = registry.resource(resource_type)
    patcher = _Patcher(registry, schema, copy.deepcopy(dict(resource)))
    for index, op in enumerate(ops, start=1):
        try:
            patcher.apply(op)
        except ScimError as exc:
            where = f"operation {index} ({op.op} {op.path or 'without path'})"
            raise type(exc)(f"{where}: {exc.detail}") from exc
    return patcher.finish()


def changed_paths(before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    """Top-level attribute names and extension URNs whose values differ.

    Names compare case-insensitively and are reported as spelled in ``after`` (else
    ``before``). Null, ``[]`` and ``{}`` equal absence (RFC 7643 §2.5). ``schemas`` is not
    reported: it follows from which extension objects are present, and those are reported.
    The HTTP layer refuses a PATCH of a directory-sourced user whose changed paths are not
    all the profile extension's URN.
    """
    spelled: dict[str, str] = {}
    for source in (before, after):
        for key in source:
            spelled[key.lower()] = key
    return {
        key
        for lowered, key in spelled.items()
        if lowered != "schemas" and not _same_json(lookup(before, key), lookup(after, key))
    }


@dataclass(frozen=True, slots=True)
class MemberDelta:
    """The net effect of a PATCH that only adds and removes Group members, by member id."""

    add: tuple[str, ...]
    remove: tuple[str, ...]


def member_delta(
    ops: Sequence[PatchOp], *, registry: SchemaRegistry | None = None
) -> MemberDelta | None:
    """The members a Group PATCH adds and removes, when that is all it does; else None.

    Recognised (the requests Entra ID and Okta send to change membership): ``add`` on path
    ``members`` with a list of ``{"value": id}``, ``remove`` on ``members`` with such a list, and
    ``remove`` on ``members[value eq "id"]``. Read-only or null sub-attributes in the listed
    values (Okta's ``display``, Entra's ``"$ref": null``) are dropped as :func:`apply_patch`
    drops them. Anything else (replace, other paths or filters, a removal that names ``type``
    or ``$ref``, a value :func:`apply_patch` would refuse) gives None, and the caller applies
    the PATCH the general way, which also reports the errors. The operations apply in order:
    the last one naming an id wins. Member ids are minted lower-case and ``members.value`` is
    caseExact=false, so removal ids are folded.
    """
    registry = registry or load_schemas()
    adds: dict[str, None] = {}
    removes: dict[str, None] = {}
    for op in ops:
        ids = _member_ids(registry, op)
        if ids is None:
            return None
        for member in ids:
            if op.op == "add":
                removes.pop(member.lower(), None)
                adds[member] = None
            else:
                for added in [a for a in adds if a.lower() == member.lower()]:
                    del adds[added]
                removes[member.lower()] = None
    return MemberDelta(tuple(adds), tuple(removes))


def _member_ids(registry: SchemaRegistry, op: PatchOp) -> list[str] | None:
    if op.path is None or op.op == "replace":
        return None
    try:
        path = parse_path(registry, "Group", op.path)
        attr = path.attribute
        if attr is None or attr.name != "members" or path.sub is not None:
            return None
        if path.value_filter is not None:
            terms = equality_constraints(path.value_filter, attr)
            only_value = terms is not None and set(terms) == {"value"}
            if op.op == "remove" and op.value is None and terms is not None and only_value:
                value = terms["value"]
                return [value] if isinstance(value, str) and value else None
            return None
        if op.value is None:
            return None  # remove every member: the general way
        elements = coerce_value(attr, op.value) or []
    except ScimError:
        return None
    allowed = {"value"} if op.op == "remove" else {"value", "type", "$ref"}
    ids = []
    for element in elements:
        member = element.get("value") if isinstance(element, dict) else None
        if not isinstance(member, str) or not member or not set(element) <= allowed:
            return None
        ids.append(member)
    return ids


def touches_members(ops: Sequence[PatchOp], *, registry: SchemaRegistry | None = None) -> bool:
    """Whether a Group PATCH may change ``members``; True when unsure (an unparsable path).

    A PATCH that does not lets the caller skip loading the member list (renaming a group of
    50,000 members must not read them).
    """
    registry = registry or load_schemas()

    def names_members(text: str) -> bool:
        try:
            path = parse_path(registry, "Group", text)
        except ScimError:
            return True  # the general way reports it
        return path.attribute is None or path.attribute.name == "members"

    for op in ops:
        if op.path is not None:
            if names_members(op.path):
                return True
        elif not isinstance(op.value, Mapping) or any(
            not isinstance(key, str) or (key.lower() != "schemas" and names_members(key))
            for key in op.value
        ):
            return True
    return False


class _Patcher:
    """Applies operations to one resource (already a private deep copy) in place."""

    def __init__(self, registry: SchemaRegistry, schema: ResourceSchema, resource: dict[str, Any]):
        self.registry = registry
        self.schema = schema
        self.resource = resource

    # -- dispatch -------------------------------------------------------------------------

    def apply(self, op: PatchOp) -> None:
        if op.path is None:
            if op.op == "remove":
                raise NoTarget("remove needs a path (RFC 7644 §3.5.2.2)")
            self.apply_object(op.op, None, op.value)
            return
        path = parse_path(self.registry, self.schema.name, op.path)
        if path.attribute is None:  # a whole extension: "urn:...:enterprise:2.0:User"
            if op.op == "remove":
                self.remove_extension(path.schema)
            else:
                self.apply_object(op.op, path.schema, op.value)
        elif op.op == "remove":
            self.remove(path, op.value)
        else:
            self.write(op.op, path, op.value)

    def apply_object(self, op: OpName, urn: str | None, value: Any) -> None:
        """add/replace of an object of attributes: the resource itself or one extension."""
        if not isinstance(value, Mapping):
            what = "the resource" if urn is None else urn
            raise InvalidValue(f"the value for {what} must be an object of attributes")
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidValue("attribute names must be strings")
            if key.lower() == "schemas":
                # A marker clients echo, at the top or inside an extension object (scim2-models
                # serialises an extension with its own "schemas"); derived from the extensions.
                continue
            path = parse_path(self.registry, self.schema.name, f"{urn}:{key}" if urn else key)
            if path.attribute is None:
                if urn is not None:
                    raise InvalidValue(f"{key!r} cannot be nested in {urn}")
                self.apply_object(op, path.schema, item)
            else:
                self.write(op, path, item)

    # -- add / replace --------------------------------------------------------------------

    def write(self, op: OpName, path: PatchPath, raw: Any) -> None:
        """add or replace at ``path`` (RFC 7644 §3.5.2.1, §3.5.2.3)."""
        if raw is None:  # RFC 7643 §2.5: null is unassigned
            self.remove(path, None)
            return
        attr = _attr(path)
        container = self.container(path.schema)
        current = _get(container, attr.name)
        if path.value_filter is not None:
            self.write_filtered(op, path, container, raw)
        elif path.sub is not None:
            self.write_sub(attr, path.sub, container, current, raw)
        elif _unchanged_read_only(attr, current, raw):
            return
        elif attr.multi_valued:
            new = coerce_value(attr, raw) or []
            if op == "replace":
                elements, primaries = new, [i for i, e in enumerate(new) if _primary(e)]
            else:
                elements, primaries = _merge_elements(attr, _elements(current), new)
            _demote_primaries(attr, elements, primaries)
            _check_immutable(attr, current, elements)
            _put(container, attr.name, elements)
        elif attr.type == "complex":
            new = coerce_value(attr, raw)
            if new is None:  # Entra ID clears the manager with {"value": ""}; see validate.py
                self.remove(path, None)
                return
            merged = dict(current) if isinstance(current, Mapping) else {}
            _merge_into(attr, merged, new)
            _check_immutable(attr, current, merged)
            _put(container, attr.name, merged)
        else:
            value = coerce_value(attr, raw)
            if attr.required and isinstance(value, str) and not value.strip():
                raise InvalidValue(f"{_label(attr)} is required and cannot be empty")
            _check_immutable(attr, current, value)
            _put(container, attr.name, value)

    def write_sub(
        self, attr: Attribute, sub: Attribute, container: dict[str, Any], current: Any, raw: Any
    ) -> None:
        """``name.givenName`` or, on every element of a multi-valued attribute, ``emails.type``."""
        if attr.mutability == "readOnly" or sub.mutability == "readOnly":
            parents = _elements(current) if attr.multi_valued else [current]
            held = [_get(p, sub.name) for p in parents]
            if held and all(_same_json(h, raw) for h in held):
                return
            raise Mutability(f"{_label(attr, sub)} is readOnly (RFC 7643 §2.2)")
        value = coerce_value(sub, raw)
        if attr.multi_valued:
            elements = _elements(current) or [{}]
            if sub.name == "primary" and value is True and len(elements) > 1:
                raise InvalidValue(f"only one {attr.name} value may be primary (RFC 7643 §2.4)")
            for element in elements:
                _check_immutable(sub, _get(element, sub.name), value, _label(attr, sub))
                _put(element, sub.name, value)
            _put(container, attr.name, [e for e in elements if e])
            return
        merged = dict(current) if isinstance(current, Mapping) else {}
        _check_immutable(sub, _get(merged, sub.name), value, _label(attr, sub))
        _put(merged, sub.name, value)
        if sub.name == "value" and value == "":
            merged = {}  # a manager whose id is cleared is no manager (as in validate.py)
        _put(container, attr.name, merged)

    def write_filtered(
        self, op: OpName, path: PatchPath, container: dict[str, Any], raw: Any
    ) -> None:
        """add/replace on ``attr[filter]`` or ``attr[filter].sub``; creates the element if none."""
        attr, sub, value_filter = _attr(path), path.sub, path.value_filter
        assert value_filter is not None
        if attr.mutability == "readOnly" or (sub is not None and sub.mutability == "readOnly"):
            raise Mutability(f"{_label(attr, sub)} is readOnly (RFC 7643 §2.2)")
        elements = _elements(_get(container, attr.name))
        hits = _hits(value_filter, elements, attr)
        if not hits:
            elements.append(self.described_element(path, op, raw))
            hits = [len(elements) - 1]
            primaries = hits if _primary(elements[-1]) else []
        elif attr.type != "complex":
            new = _one_element(attr, raw)
            for i in hits:
                elements[i] = new
            primaries = []
        elif sub is None:
            new = _one_element(attr, raw)
            if not isinstance(new, dict):
                raise InvalidValue(f"the value for {path.text!r} must be an object")
            for i in hits:
                _merge_into(attr, elements[i], new)
            primaries = hits if _primary(new) else []
        else:
            value = coerce_value(sub, raw)
            for i in hits:
                _check_immutable(sub, _get(elements[i], sub.name), value, _label(attr, sub))
                _put(elements[i], sub.name, value)
            primaries = hits if sub.name == "primary" and value is True else []
        if len(primaries) > 1:
            raise InvalidValue(f"only one {attr.name} value may be primary (RFC 7643 §2.4)")
        _demote_primaries(attr, elements, primaries)
        _put(container, attr.name, [e for e in elements if not _unassigned(e)])

    def described_element(self, path: PatchPath, op: OpName, raw: Any) -> Any:
        """The new element for a filter that matched nothing: its ``eq`` terms plus the value."""
        attr = _attr(path)
        assert path.value_filter is not None
        terms = equality_constraints(path.value_filter, attr)
        if terms is None:
            raise NoTarget(
                f"no {attr.name} value matches {path.text!r} and the filter describes no single "
                f"new value to {op} (RFC 7644 §3.5.2.3)"
            )
        if attr.type != "complex":
            return _one_element(attr, raw)
        element = _one_element(attr, terms)
        if path.sub is not None:
            element[path.sub.name] = coerce_value(path.sub, raw)
        else:
            new = _one_element(attr, raw)
            if not isinstance(new, dict):
                raise InvalidValue(f"the value for {path.text!r} must be an object")
            element.update(new)
        return element

    # -- remove ---------------------------------------------------------------------------

    def remove(self, path: PatchPath, value: Any) -> None:
        """remove at ``path`` (RFC 7644 §3.5.2.2); a filter that matches nothing is a no-op."""
        attr, sub, value_filter = _attr(path), path.sub, path.value_filter
        if attr.mutability == "readOnly" or (sub is not None and sub.mutability == "readOnly"):
            raise Mutability(f"{_label(attr, sub)} is readOnly (RFC 7643 §2.2; RFC 7644 §3.5.2.2)")
        container = self.existing_container(path.schema)
        current = _get(container, attr.name) if container is not None else None
        remaining: Any
        if sub is None and value_filter is None:
            if attr.multi_valued and value is not None:
                remaining = _without_listed(attr, _elements(current), value)
            else:
                _check_immutable(attr, current, None)
                remaining = None
        elif value_filter is None:
            assert sub is not None
            if attr.multi_valued:
                elements = _elements(current)
                for element in elements:
                    _check_immutable(sub, _get(element, sub.name), None, _label(attr, sub))
                    _put(element, sub.name, None)
                remaining = [e for e in elements if e]
            else:
                remaining = dict(current) if isinstance(current, Mapping) else {}
                _check_immutable(sub, _get(remaining, sub.name), None, _label(attr, sub))
                _put(remaining, sub.name, None)
        else:
            elements = _elements(current)
            hits = _hits(value_filter, elements, attr)
            if sub is not None:
                for i in hits:
                    _check_immutable(sub, _get(elements[i], sub.name), None, _label(attr, sub))
                    _put(elements[i], sub.name, None)
            else:
                elements = [e for i, e in enumerate(elements) if i not in hits]
            remaining = [e for e in elements if not _unassigned(e)]
        if attr.required and _unassigned(remaining):
            raise Mutability(
                f"{_label(attr)} is required and cannot be removed (RFC 7644 §3.5.2.2)"
            )
        if container is not None:
            _put(container, attr.name, remaining)

    def remove_extension(self, urn: str) -> None:
        """remove with an extension URN as path: every writable attribute of that extension."""
        container = self.existing_container(urn)
        if container is None:
            return
        for key in list(container):
            attr = self.schema.top(urn, key)
            if attr is not None and attr.mutability == "readOnly":
                continue  # server-computed (the profile's completeness); not the client's to drop
            if attr is not None and attr.required:
                raise Mutability(f"{_label(attr)} is required and cannot be removed")
            if attr is not None:
                _check_immutable(attr, container[key], None)
            del container[key]

    # -- containers -----------------------------------------------------------------------

    def container(self, urn: str) -> dict[str, Any]:
        """The dict an attribute of schema ``urn`` lives in: the resource or its URN object.

        An extension object is created when missing (``finish`` drops it if it stays empty)
        and re-keyed under the canonical URN when stored in another case.
        """
        if urn == self.schema.core:
            return self.resource
        key = _key(self.resource, urn)
        found = self.resource[key] if key is not None else None
        if not isinstance(found, dict):
            found = {}
        if key is not None and key != urn:
            del self.resource[key]
        self.resource[urn] = found
        return found

    def existing_container(self, urn: str) -> dict[str, Any] | None:
        """Like :meth:`container`, but None instead of creating a missing extension object."""
        if urn == self.schema.core:
            return self.resource
        key = _key(self.resource, urn)
        return self.container(urn) if key is not None else None

    def finish(self) -> dict[str, Any]:
        """Drop emptied extension objects and make ``schemas`` list the ones present."""
        for urn in self.schema.extensions:
            key = _key(self.resource, urn)
            if key is not None and _unassigned(self.resource[key]):
                del self.resource[key]
        schemas = self.resource.get("schemas")
        if isinstance(schemas, list):
            extensions = {u.lower() for u in self.schema.extensions}
            present = [u for u in self.schema.extensions if _key(self.resource, u) is not None]
            kept = [
                s
                for s in schemas
                if not (isinstance(s, str) and s.lower() in extensions)
                or s.lower() in {p.lower() for p in present}
            ]
            listed = {s.lower() for s in kept if isinstance(s, str)}
            self.resource["schemas"] = kept + [u for u in present if u.lower() not in listed]
        return self.resource


# -- helpers: values ----------------------------------------------------------------------


def _attr(path: PatchPath) -> Attribute:
    assert path.attribute is not None  # whole-extension paths are dispatched before
    return path.attribute


def _label(attr: Attribute, sub: Attribute | None = None) -> str:
    name = f"{attr.name}.{sub.name}" if sub is not None else attr.name
    return f"'{name}'"


def _hits(value_filter: Filter, elements: Sequence[Any], attr: Attribute) -> list[int]:
    """Indices of the elements the value filter selects (complex elements must be objects)."""
    return [
        i
        for i, e in enumerate(elements)
        if (attr.type != "complex" or isinstance(e, Mapping)) and matches(value_filter, e, attr)
    ]


def _one_element(attr: Attribute, raw: Any) -> Any:
    """One element of multi-valued ``attr``, coerced like a one-element array."""
    coerced = coerce_value(attr, [raw])
    if not coerced:
        raise InvalidValue(f"the value for {attr.name!r} is empty")
    return coerced[0]


def _elements(current: Any) -> list[Any]:
    """A fresh list of the elements of a multi-valued attribute's current value."""
    if current is None:
        return []
    return list(current) if isinstance(current, list) else [current]


def _unassigned(value: Any) -> bool:
    """RFC 7643 §2.5: null, an empty array and (for complex values) an empty object."""
    return value is None or value == [] or value == {}


def _primary(element: Any) -> bool:
    return isinstance(element, Mapping) and _get(element, "primary") is True


def _equal(attr: Attribute, left: Any, right: Any) -> bool:
    """Value equality under ``attr``'s caseExact (RFC 7643 §2.2)."""
    if isinstance(left, str) and isinstance(right, str) and not attr.case_exact:
        return left.casefold() == right.casefold()
    return _same_json(left, right)


def _same_element(attr: Attribute, left: Any, right: Any) -> bool:
    """Whether two elements are "the same value" for add's no-duplicates rule.

    Complex values with a ``value`` sub-attribute are the same when their values are equal
    and their types are equal or one is absent: RFC 7643 §2.4 says a (type, value) pair
    SHOULD NOT appear twice. Other values compare whole.
    """
    if attr.type != "complex":
        return _equal(attr, left, right)
    if not isinstance(left, Mapping) or not isinstance(right, Mapping):
        return _same_json(left, right)
    value_sub, type_sub = attr.sub("value"), attr.sub("type")
    if value_sub is not None and _get(left, "value") is not None:
        if not _equal(value_sub, _get(left, "value"), _get(right, "value")):
            return False
        kinds = (_get(left, "type"), _get(right, "type"))
        return type_sub is None or None in kinds or _equal(type_sub, *kinds)
    names = {k.lower() for k in left} | {k.lower() for k in right}
    return all(_equal(attr.sub(n) or attr, _get(left, n), _get(right, n)) for n in names)


def _merge_elements(
    attr: Attribute, elements: list[Any], new: Sequence[Any]
) -> tuple[list[Any], list[int]]:
    """add to a multi-valued attribute: append, or merge into the same existing value.

    Returns the elements and the indices the added values marked primary.
    """
    primaries: list[int] = []
    for item in new:
        index = next((i for i, e in enumerate(elements) if _same_element(attr, e, item)), None)
        if index is None:
            elements.append(item)
            index = len(elements) - 1
        elif isinstance(item, Mapping) and isinstance(elements[index], dict):
            _merge_into(attr, elements[index], item, keep_equal=True)
        if _primary(item):
            primaries.append(index)
    if len(set(primaries)) > 1:
        raise InvalidValue(f"only one {attr.name} value may be primary (RFC 7643 §2.4)")
    return elements, primaries


def _merge_into(
    attr: Attribute, target: dict[str, Any], new: Mapping[str, Any], *, keep_equal: bool = False
) -> None:
    """Set the given sub-attributes of a complex value; the others stay (RFC 7644 §3.5.2.3).

    With ``keep_equal`` (add of a value already present) a sub-attribute equal under its
    caseExact keeps its stored spelling: §3.5.2.1 "no changes SHOULD be made".
    """
    for name, value in new.items():
        sub = attr.sub(name) or attr
        current = _get(target, name)
        if keep_equal and current is not None and _equal(sub, current, value):
            continue
        _check_immutable(sub, current, value, _label(attr, sub))
        _put(target, sub.name if sub is not attr else name, value)


def _demote_primaries(attr: Attribute, elements: list[Any], primaries: Sequence[int]) -> None:
    """RFC 7644 §3.5.2: setting one value primary sets ``primary`` false on the others."""
    if not primaries or attr.type != "complex" or attr.sub("primary") is None:
        return
    keep = primaries[0]
    for index, element in enumerate(elements):
        if index != keep and _primary(element):
            _put(element, "primary", False)


def _without_listed(attr: Attribute, elements: list[Any], listed: Any) -> list[Any]:
    """Entra ID's remove with a value: drop the elements matching any listed value.

    A listed object matches an element when every sub-attribute it gives is equal
    (``{"value": "id", "$ref": null}`` matches on ``value``); a listed value that gives
    nothing matches nothing.
    """
    wanted = coerce_value(attr, listed if isinstance(listed, list) else [listed]) or []

    def listed_match(element: Any) -> bool:
        for item in wanted:
            if attr.type != "complex":
                if _equal(attr, element, item):
                    return True
            elif (
                item
                and isinstance(element, Mapping)
                and all(_equal(attr.sub(k) or attr, _get(element, k), v) for k, v in item.items())
            ):
                return True
        return False

    return [e for e in elements if not listed_match(e)]


def _check_immutable(attr: Attribute, current: Any, new: Any, label: str | None = None) -> None:
    """RFC 7644 §3.5.2: an immutable attribute may only be set while it has no value."""
    if attr.mutability != "immutable" or _unassigned(current) or _equal(attr, current, new):
        return
    raise Mutability(f"{label or _label(attr)} is immutable and already has a value")


def _unchanged_read_only(attr: Attribute, current: Any, raw: Any) -> bool:
    """True for a readOnly target given its current value (a no-op); raise for any other."""
    if attr.mutability != "readOnly":
        return False
    if _same_json(current, raw):
        return True
    raise Mutability(f"{_label(attr)} is readOnly (RFC 7643 §2.2)")


# -- helpers: dicts with case-insensitive keys --------------------------------------------


def _key(container: Mapping[str, Any], name: str) -> str | None:
    """The key spelling ``name`` in any case, or None."""
    if name in container:
        return name
    lowered = name.lower()
    return next((k for k in container if k.lower() == lowered), None)


def _get(container: Any, name: str) -> Any:
    return lookup(container, name) if isinstance(container, Mapping) else None


def _put(container: dict[str, Any], name: str, value: Any) -> None:
    """Set ``name`` (canonical spelling) replacing any other spelling; unassigned deletes."""
    for key in [k for k in container if k.lower() == name.lower() and k != name]:
        del container[key]
    if _unassigned(value):
        container.pop(name, None)
    else:
        container[name] = value


def _same_json(left: Any, right: Any) -> bool:
    # Most attributes a PATCH leaves alone are equal as they are: the canonical texts (two
    # json.dumps each; a PATCH compares every attribute, twice) are for the rest.
    return _identical(left, right) or _canonical_json(left) == _canonical_json(right)


def _identical(left: Any, right: Any) -> bool:
    """Equal with the same types all the way down (so 1 and True, or 1 and 1.0, differ as
    their JSON does): equal texts for :func:`_canonical_json` too."""
    if left is right:
        return True
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_identical(v, right[k]) for k, v in left.items())
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_identical, left, right))
    return bool(left == right)


def _canonical_json(value: Any) -> str:
    """A comparable text of a JSON value: keys folded and sorted, unassigned parts dropped."""
    return json.dumps(_fold(value), sort_keys=True, default=str)


def _fold(value: Any) -> Any:
    if isinstance(value, Mapping):
        folded = {str(k).lower(): _fold(v) for k, v in value.items()}
        return {k: v for k, v in folded.items() if not _unassigned(v)} or None
    if isinstance(value, list):
        items = [_fold(v) for v in value]
        return [v for v in items if not _unassigned(v)] or None
    return value
