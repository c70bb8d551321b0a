"""PATCH paths (RFC 7644 §3.5.2) resolved against the schema, and value filters run in Python.

A PATCH path is ``attrPath`` or ``valuePath [subAttr]``::

    PATH = attrPath / valuePath [subAttr]        ; RFC 7644 §3.5.2, Figure 1

e.g. ``title``, ``name.givenName``, ``emails[type eq "work"].value``, ``members[value eq "x"]``
or ``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value``. The filter
between the brackets is evaluated here, on the element dicts of one multi-valued attribute:
those arrays are small and live inside one resource, so there is nothing to push down to SQL.

The filter text is parsed by :mod:`syncsvc.scim._filterparse`, the grammar the /Users and
/Groups filters use, not by scim2-filter-parser 0.7.0 directly: that parser gives ``and`` and
``or`` the same precedence (``type eq "a" or type eq "b" and primary eq true`` groups as
``(… or …) and …``), reads numbers one digit at a time and drops the difference between
``true`` and ``"true"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncsvc.errors import InvalidFilter, InvalidPath
from syncsvc.scim import _filterparse as fp
from syncsvc.scim.schema import Attribute, SchemaRegistry

__all__ = ["PatchPath", "equality_constraints", "lookup", "matches", "parse_path"]


@dataclass(frozen=True, slots=True)
class PatchPath:
    """A resolved PATCH path.

    ``attribute`` is None when the path names a whole extension schema (its URN); ``sub`` is
    the sub-attribute after ``.`` (``name.givenName``, ``emails[...].value``); ``value_filter``
    is the parsed ``[...]`` selection of a multi-valued attribute's elements.
    """

    text: str
    schema: str
    attribute: Attribute | None
    sub: Attribute | None = None
    value_filter: fp.Filter | None = None


def parse_path(registry: SchemaRegistry, resource_type: str, text: str) -> PatchPath:
    """Resolve ``text`` for ``resource_type``; InvalidPath / InvalidFilter when it cannot be."""
    path = text.strip()
    bracket = path.find("[")
    if bracket < 0:
        resolved = registry.resolve(resource_type, path)
        if resolved is None:
            raise InvalidPath(f"unknown attribute path {text!r}")
        return PatchPath(text, resolved.schema, resolved.attribute, resolved.sub)

    close = _closing_bracket(path, bracket)
    if close < 0:
        raise InvalidPath(f"unbalanced '[' in path {text!r}")
    prefix, inner, rest = path[:bracket], path[bracket + 1 : close], path[close + 1 :]
    resolved = registry.resolve(resource_type, prefix)
    if resolved is None or resolved.attribute is None or resolved.sub is not None:
        raise InvalidPath(f"unknown attribute {prefix!r} in path {text!r}")
    attribute = resolved.attribute
    if not attribute.multi_valued:
        raise InvalidPath(
            f"a value filter needs a multi-valued attribute; {attribute.name!r} is not"
        )
    sub: Attribute | None = None
    if rest:
        if not rest.startswith(".") or attribute.type != "complex":
            raise InvalidPath(f"unexpected {rest!r} after the value filter in {text!r}")
        sub = attribute.sub(rest[1:])
        if sub is None:
            raise InvalidPath(f"{attribute.name!r} has no sub-attribute {rest[1:]!r}")
    value_filter = _parse_filter(inner, text)
    _check_filter_names(value_filter, attribute, text)
    return PatchPath(text, resolved.schema, attribute, sub, value_filter)


def _closing_bracket(path: str, opening: int) -> int:
    """Index of the ``]`` closing ``path[opening]``, skipping quoted strings; -1 if none."""
    quoted = escaped = False
    for index in range(opening + 1, len(path)):
        char = path[index]
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "]" and not quoted:
            return index
    return -1


def _parse_filter(inner: str, text: str) -> fp.Filter:
    try:
        return fp.parse(inner)
    except InvalidFilter as exc:
        raise InvalidFilter(f"bad value filter in path {text!r}: {exc.detail}") from exc


def _check_filter_names(node: fp.Filter, attribute: Attribute, text: str) -> None:
    """Every name in the filter must be a sub-attribute (or ``value`` of a simple array)."""
    match node:
        case fp.And(items=items) | fp.Or(items=items):
            for item in items:
                _check_filter_names(item, attribute, text)
        case fp.Not(item=item):
            _check_filter_names(item, attribute, text)
        case (
            fp.Compare(path=fp.AttrPath(attr=name, sub=None, uri=None))
            | fp.Present(path=fp.AttrPath(attr=name, sub=None, uri=None))
        ):
            if _filter_attribute(attribute, name) is None:
                raise InvalidFilter(f"{attribute.name!r} has no sub-attribute {name!r} ({text!r})")
        case _:
            raise InvalidFilter(
                f"inside [...] name sub-attributes of {attribute.name!r} only ({text!r})"
            )


def _filter_attribute(attribute: Attribute, name: str) -> Attribute | None:
    if attribute.type == "complex":
        return attribute.sub(name)
    # RFC 7644 §3.5.2.2 speaks of filters "comparing a value" on simple multi-valued attributes.
    return attribute if name.lower() == "value" else None


def lookup(container: Mapping[str, Any], name: str) -> Any:
    """``container[name]`` with the name matched case-insensitively (RFC 7643 §2.1); or None."""
    if name in container:
        return container[name]
    lowered = name.lower()
    return next((v for k, v in container.items() if k.lower() == lowered), None)


def matches(node: fp.Filter, element: Any, attribute: Attribute) -> bool:
    """Whether one element of multi-valued ``attribute`` satisfies the value filter."""
    match node:
        case fp.And(items=items):
            return all(matches(item, element, attribute) for item in items)
        case fp.Or(items=items):
            return any(matches(item, element, attribute) for item in items)
        case fp.Not(item=item):
            return not matches(item, element, attribute)
        case fp.Present(path=path):
            return _assigned(_element_value(element, attribute, path.attr))
        case fp.Compare(path=path, op=op, value=literal):
            sub = _filter_attribute(attribute, path.attr)
            if sub is None:  # pragma: no cover - parse_path checked every name
                raise InvalidFilter(f"{attribute.name!r} has no sub-attribute {path.attr!r}")
            return _compare(op, _element_value(element, attribute, path.attr), literal, sub)
    raise InvalidFilter("value filters cannot be nested")  # pragma: no cover - checked


def _element_value(element: Any, attribute: Attribute, name: str) -> Any:
    if attribute.type != "complex":
        return element
    return lookup(element, name) if isinstance(element, Mapping) else None


def _assigned(value: Any) -> bool:
    return value not in (None, [], {})


def _compare(op: str, actual: Any, literal: fp.Value, sub: Attribute) -> bool:
    """RFC 7644 §3.4.2.2 attribute operators on one value.

    Strings compare case-insensitively unless the sub-attribute is caseExact (RFC 7643 §2.2).
    ``eq null`` matches an unassigned value (RFC 7643 §2.5). A boolean stored as Entra's
    ``"True"`` still compares as a boolean.
    """
    if literal is None:
        return {"eq": not _assigned(actual), "ne": _assigned(actual)}.get(op, False)
    if actual is None:
        return op == "ne"
    if isinstance(literal, bool) or sub.type == "boolean":
        have = _as_bool(actual)
        want = _as_bool(literal)
        if have is None or want is None:
            return op == "ne"
        return {"eq": have == want, "ne": have != want}.get(op, False)
    if isinstance(literal, int | float):
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return op == "ne"
        return _ordered(op, actual, literal)
    left, right = str(actual), literal
    if not sub.case_exact:
        left, right = left.casefold(), right.casefold()
    if op == "co":
        return right in left
    if op == "sw":
        return left.startswith(right)
    if op == "ew":
        return left.endswith(right)
    return _ordered(op, left, right)


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _ordered(op: str, left: Any, right: Any) -> bool:
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if op == "gt":
        return bool(left > right)
    if op == "ge":
        return bool(left >= right)
    if op == "lt":
        return bool(left < right)
    if op == "le":
        return bool(left <= right)
    raise InvalidFilter(f"the operator {op!r} is not supported on this value")


def equality_constraints(node: fp.Filter, attribute: Attribute) -> dict[str, fp.Value] | None:
    """The ``name eq literal`` terms of a pure conjunction: canonical names -> literals.

    Used to build the element a filter describes (``emails[type eq "work"]`` ->
    ``{"type": "work"}``) when none exists yet; None when the filter is anything else
    (``or``, ``not``, other operators, ``eq null``), which describes no single element.
    """
    terms: dict[str, fp.Value] = {}
    items = node.items if isinstance(node, fp.And) else (node,)
    for item in items:
        if not isinstance(item, fp.Compare) or item.op != "eq" or item.value is None:
            return None
        sub = _filter_attribute(attribute, item.path.attr)
        if sub is None:
            return None
        terms[sub.name if attribute.type == "complex" else "value"] = item.value
    return terms
